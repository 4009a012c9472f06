import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { context, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterEach, describe, expect, it } from "vitest";
import { topicNames } from "../../core/topics.ts";
import { startCollector } from "../helpers/collector.ts";
import { kcatConsume } from "../helpers/kcat.ts";
import { testKafka } from "../helpers/services.ts";
import {
  type ShipperUnderTest,
  shipperWorkspace,
  startShipper,
  TopicReader,
  writeShipperConfig,
} from "../helpers/shipper.ts";

const LINES = 2_000;

/** A file of LINES JSON log lines, shipped by the real shipper with this recordFormat; what kcat reads back. */
async function shipAndRead(recordFormat: "packed" | "single" | undefined, running: ShipperUnderTest[]) {
  const ws = shipperWorkspace(`format-${recordFormat ?? "default"}`);
  const path = join(ws.logs, "app.log");
  writeFileSync(
    path,
    Array.from(
      { length: LINES },
      (_, i) => `${JSON.stringify({ level: "info", msg: `line ${i}`, i })}\n`,
    ).join(""),
  );
  const shipper = startShipper(
    writeShipperConfig(ws.dir, {
      host: { name: "format-host" },
      checkpointDir: ws.checkpointDir,
      topicPrefix: ws.prefix,
      inputs: [{ name: "app", paths: [path] }],
      ...(recordFormat ? { recordFormat } : {}),
    }),
  );
  running.push(shipper);
  await shipper.started;
  const topic = topicNames(ws.prefix).logs;
  const reader = await new TopicReader(testKafka(), topic).start();
  try {
    await reader.waitFor((r) => r.length >= LINES);
  } finally {
    await reader.stop();
  }
  return kcatConsume(topic);
}

// Outside consumers (Logstash's json codec, Kafka Connect, ksqlDB, kcat scripts) expect one event per record.
describe("shipper recordFormat, read by kcat (librdkafka), not by Lifeline", () => {
  const running: ShipperUnderTest[] = [];
  afterEach(async () => {
    for (const shipper of running.splice(0)) await shipper.stop("SIGKILL");
  });

  it("single: one JSON document per Kafka record, every line once, in order", async () => {
    const records = await shipAndRead("single", running);
    expect(records).toHaveLength(LINES);
    const documents = records.map((value) => JSON.parse(value) as { message: string });
    expect(documents.map((d) => d.message)).toEqual(Array.from({ length: LINES }, (_, i) => `line ${i}`));
  });

  it("the collector with single: each span the official OTLP exporter sent is one Kafka record", async () => {
    const ws = shipperWorkspace("format-collector");
    const collector = await startCollector(ws.dir, { topicPrefix: ws.prefix, recordFormat: "single" });
    running.push(collector);
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ "service.name": "format-test" }),
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${collector.url}/v1/traces` }))],
    });
    const tracer = provider.getTracer("record-format");
    // One trace: its spans share a Kafka key, so packed they would travel together in one or two records.
    const root = tracer.startSpan("request");
    const inRoot = trace.setSpan(context.active(), root);
    const sent = Array.from({ length: 29 }, (_, i) => {
      const span = tracer.startSpan(`work ${i}`, {}, inRoot);
      span.end();
      return span.spanContext().spanId;
    });
    root.end();
    sent.push(root.spanContext().spanId);
    await provider.forceFlush();
    await provider.shutdown();
    const topic = topicNames(ws.prefix).spans;
    const reader = await new TopicReader(testKafka(), topic).start();
    try {
      await reader.waitFor((r) => r.length >= sent.length);
    } finally {
      await reader.stop();
    }
    const records = await kcatConsume(topic);
    expect(records).toHaveLength(sent.length);
    const ids = records.map((value) => (JSON.parse(value) as { span: { id: string } }).span.id);
    expect(ids.sort()).toEqual([...sent].sort());
  });

  it("packed (the default): fewer records, each newline-separated documents; split on newlines, every line once", async () => {
    const records = await shipAndRead(undefined, running);
    expect(records.length).toBeLessThan(LINES / 10);
    const documents = records.flatMap((value) => value.split("\n")).map((text) => JSON.parse(text));
    expect(documents.map((d: { message: string }) => d.message)).toEqual(
      Array.from({ length: LINES }, (_, i) => `line ${i}`),
    );
  });
});
