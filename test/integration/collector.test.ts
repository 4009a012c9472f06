import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { context, type Span, trace } from "@opentelemetry/api";
import { OTLPLogExporter as OTLPLogExporterJson } from "@opentelemetry/exporter-logs-otlp-http";
import { OTLPLogExporter as OTLPLogExporterProto } from "@opentelemetry/exporter-logs-otlp-proto";
import { OTLPTraceExporter as OTLPTraceExporterJson } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OTLPTraceExporterProto } from "@opentelemetry/exporter-trace-otlp-proto";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { otlpTypes } from "../../collector/otlp-schema.ts";
import { type CollectorUnderTest, healthUrl, sendTraces, startCollector } from "../helpers/collector.ts";
import { type ProcessUnderTest, startLifeline, waitForCount } from "../helpers/indexer.ts";
import { privateKafka } from "../helpers/private-kafka.ts";
import { testElastic, uniqueName } from "../helpers/services.ts";
import { shipperWorkspace } from "../helpers/shipper.ts";

const external = Boolean(process.env.LIFELINE_KAFKA_BROKERS);

function workspace(name: string) {
  const ws = shipperWorkspace(name);
  const namespace = uniqueName(name).replaceAll("-", "_");
  return {
    ...ws,
    namespace,
    spans: `lifeline-traces-${namespace}`,
    logs: `lifeline-logs-${namespace}`,
  };
}

describe("collector: OTLP/HTTP from the official exporters into Kafka and Elasticsearch", () => {
  const elastic = testElastic();
  const running: ProcessUnderTest[] = [];
  afterEach(async () => {
    for (const child of running.splice(0)) await child.stop("SIGKILL");
  });
  afterAll(async () => {
    await elastic.close();
  });
  const launchIndexer = async (ws: ReturnType<typeof workspace>, kafka?: Record<string, unknown>) => {
    const file = join(ws.dir, "indexer.yaml");
    writeFileSync(
      file,
      stringify({
        topicPrefix: ws.prefix,
        groupId: uniqueName("collector-indexer"),
        namespace: ws.namespace,
        indices: { replicas: 0, mode: "indices" },
        ...(kafka ? { kafka } : {}),
      }),
    );
    const indexer = startLifeline(["indexer", "--config", file], "indexer started");
    running.push(indexer);
    await indexer.started;
  };

  it("spans and log records from the protobuf and JSON exporters come out of Elasticsearch with their ids", async () => {
    const ws = workspace("otlp");
    const collector = await startCollector(ws.dir, { topicPrefix: ws.prefix });
    running.push(collector);
    const sent = [
      ...(await sendTraces(
        new OTLPTraceExporterProto({ url: `${collector.url}/v1/traces` }),
        "checkout",
        40,
      )),
      ...(await sendTraces(new OTLPTraceExporterJson({ url: `${collector.url}/v1/traces` }), "payments", 40)),
    ];
    expect(sent).toHaveLength(240);

    const logTraceId = sent[0]?.spanContext().traceId as string;
    const logSpan = trace.wrapSpanContext((sent[0] as ReadableSpan).spanContext());
    for (const [index, exporter] of [
      new OTLPLogExporterProto({ url: `${collector.url}/v1/logs` }),
      new OTLPLogExporterJson({ url: `${collector.url}/v1/logs` }),
    ].entries()) {
      const provider = new LoggerProvider({
        resource: resourceFromAttributes({ "service.name": "checkout" }),
        processors: [new BatchLogRecordProcessor({ exporter, maxExportBatchSize: 20 })],
      });
      const logger = provider.getLogger("collector-test");
      for (let i = 0; i < 25; i++) {
        logger.emit({
          body: `exporter ${index} record ${i}`,
          severityNumber: 17,
          severityText: "ERROR",
          attributes: { "order.id": i },
          context: trace.setSpan(context.active(), logSpan as Span),
        });
      }
      await provider.forceFlush();
      await provider.shutdown();
    }

    await launchIndexer(ws);
    await waitForCount(elastic, ws.spans, 240);
    await waitForCount(elastic, ws.logs, 50);
    const spans = await elastic.search<{
      span: { id: string; name: string };
      parent?: { id: string };
      trace: { id: string };
      event: { outcome: string; duration: number };
      service: { name: string };
    }>({ index: ws.spans, size: 1000 });
    expect(spans.hits.hits).toHaveLength(240);
    const byId = new Map(spans.hits.hits.map((hit) => [hit._source?.span.id, hit._source]));
    for (const span of sent) {
      const stored = byId.get(span.spanContext().spanId);
      expect(stored?.trace.id).toBe(span.spanContext().traceId);
      expect(stored?.span.name).toBe(span.name);
      expect(stored?.parent?.id).toBe(span.parentSpanContext?.spanId);
      expect(stored?.event.outcome).toBe(span.status.code === 2 ? "failure" : "unknown");
      expect(stored?.event.duration).toBeGreaterThanOrEqual(0);
    }
    const services = new Set(spans.hits.hits.map((hit) => hit._source?.service.name));
    expect(services).toEqual(new Set(["checkout", "payments"]));

    const logs = await elastic.search<{ message: string; trace: { id: string }; log: { level: string } }>({
      index: ws.logs,
      size: 100,
      query: { term: { "trace.id": logTraceId } },
    });
    expect(logs.hits.hits).toHaveLength(50);
    expect(new Set(logs.hits.hits.map((hit) => hit._source?.log.level))).toEqual(new Set(["error"]));
    expect(logs.hits.hits.map((hit) => hit._source?.message).sort()).toEqual(
      [0, 1].flatMap((e) => Array.from({ length: 25 }, (_, i) => `exporter ${e} record ${i}`)).sort(),
    );
    expect(collector.process.exitCode).toBeNull();
  });

  it("bad input gets the right 4xx with a clear message and the collector keeps serving", async () => {
    const ws = workspace("otlpbad");
    const collector = await startCollector(ws.dir, {
      topicPrefix: ws.prefix,
      limits: { maxRequestBytes: 1 << 20, maxDecompressedBytes: 4 << 20 },
    });
    running.push(collector);
    const post = (path: string, body: Buffer | string, headers: Record<string, string>) =>
      fetch(`${collector.url}${path}`, { method: "POST", body, headers });
    const protobuf = { "content-type": "application/x-protobuf" };
    const json = { "content-type": "application/json" };
    const expectRefusal = async (response: Response, status: number, message: RegExp) => {
      expect(response.status).toBe(status);
      const body = response.headers.get("content-type")?.includes("json")
        ? ((await response.json()) as { message: string })
        : (otlpTypes.status.toObject(otlpTypes.status.decode(Buffer.from(await response.arrayBuffer()))) as {
            message: string;
          });
      expect(body.message).toMatch(message);
    };
    await expectRefusal(
      await post("/v1/traces", "{}", { "content-type": "text/plain" }),
      415,
      /content type "text\/plain"/,
    );
    await expectRefusal(
      await post("/v1/traces", Buffer.from([0x0a, 0xff, 0xff, 0xff]), protobuf),
      400,
      /not an OTLP protobuf/,
    );
    await expectRefusal(await post("/v1/logs", "{not json", json), 400, /not JSON/);
    await expectRefusal(
      await post("/v1/traces", Buffer.alloc(2 << 20), protobuf),
      413,
      /larger than 1048576 bytes/,
    );
    const bomb = gzipSync(Buffer.alloc(16 << 20, 0x20));
    await expectRefusal(
      await post("/v1/logs", bomb, { ...json, "content-encoding": "gzip" }),
      413,
      /once decompressed/,
    );
    await expectRefusal(
      await post("/v1/logs", "x", { ...json, "content-encoding": "gzip" }),
      400,
      /not valid gzip/,
    );
    await expectRefusal(await post("/v1/profiles", "{}", json), 404, /no OTLP endpoint/);
    const get = await fetch(`${collector.url}/v1/traces`);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");

    // One span with a broken trace id among good ones: partial success, the good ones kept.
    const good = (i: number) => ({
      traceId: "5b8efff798038103d269b633813fc60c",
      spanId: `eee19b7ec3c1b17${i}`,
      name: `good ${i}`,
      kind: 2,
      startTimeUnixNano: "1795756800000000000",
      endTimeUnixNano: "1795756800250000000",
    });
    const request = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: "service.name", value: { stringValue: "api" } }] },
          scopeSpans: [{ spans: [good(1), { ...good(2), traceId: "not-hex" }, good(3)] }],
        },
      ],
    };
    const partial = await post("/v1/traces", gzipSync(JSON.stringify(request)), {
      ...json,
      "content-encoding": "gzip",
    });
    expect(partial.status).toBe(200);
    expect(await partial.json()).toEqual({
      partialSuccess: { rejectedSpans: 1, errorMessage: 'span "good 2" has an invalid trace or span id' },
    });
    await launchIndexer(ws);
    await waitForCount(elastic, ws.spans, 2);
    const stored = await elastic.search<{ span: { name: string } }>({ index: ws.spans });
    expect(stored.hits.hits.map((hit) => hit._source?.span.name).sort()).toEqual(["good 1", "good 3"]);
    expect(collector.process.exitCode).toBeNull();
  });

  describe.skipIf(external)("with Kafka stopped during ingest", () => {
    const broker = privateKafka(29792);

    it("clients get 503 with Retry-After; after Kafka returns every span is in Elasticsearch exactly once", async ({
      onTestFinished,
    }) => {
      onTestFinished(() => broker.stop());
      await broker.start();
      const ws = workspace("otlpoutage");
      const collector: CollectorUnderTest = await startCollector(ws.dir, {
        topicPrefix: ws.prefix,
        kafka: { brokers: broker.brokers },
        limits: { ackTimeoutMs: 3_000 },
      });
      running.push(collector);
      // Real SDK spans, serialized by the official OTLP serializer; the client retries what is refused
      // after Retry-After, as the OTLP specification asks.
      const spans = await sendTraces(new InMemorySpanExporter(), "checkout", 400);
      expect(spans).toHaveLength(1_200);
      const batches: ReadableSpan[][] = [];
      for (let i = 0; i < spans.length; i += 60) batches.push(spans.slice(i, i + 60));
      const refusals: number[] = [];
      const send = async (batch: ReadableSpan[]) => {
        const body = ProtobufTraceSerializer.serializeRequest(batch) as Uint8Array;
        for (;;) {
          const response = await fetch(`${collector.url}/v1/traces`, {
            method: "POST",
            body: Buffer.from(body),
            headers: { "content-type": "application/x-protobuf" },
          });
          await response.arrayBuffer();
          if (response.status === 200) return;
          expect([429, 503]).toContain(response.status);
          refusals.push(response.status);
          const retryAfter = Number(response.headers.get("retry-after"));
          expect(retryAfter).toBeGreaterThan(0);
          await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
        }
      };
      const half = Math.floor(batches.length / 2);
      for (const batch of batches.slice(0, half)) await send(batch);
      expect(refusals).toHaveLength(0);

      await broker.stop();
      const during = Promise.all(batches.slice(half).map(send));
      const health = healthUrl(collector);
      // The outage lasts until the collector has refused data and says it is unhealthy.
      const outageDeadline = Date.now() + 60_000;
      while (!(refusals.length > 0 && (await fetch(health)).status === 503)) {
        if (Date.now() > outageDeadline) throw new Error(`no refusal while Kafka was down: ${refusals}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      await broker.start();
      await during;
      expect(refusals.length).toBeGreaterThan(0);

      await launchIndexer(ws, { brokers: broker.brokers });
      await waitForCount(elastic, ws.spans, spans.length);
      await elastic.indices.refresh({ index: ws.spans });
      // Exactly once, compared id by id (a cardinality aggregation is an estimate).
      const stored = await elastic.search<{ span: { id: string } }>({
        index: ws.spans,
        size: 10_000,
        _source: ["span.id"],
        track_total_hits: true,
      });
      expect((stored.hits.total as { value: number }).value).toBe(spans.length);
      const storedIds = stored.hits.hits.map((hit) => hit._source?.span.id as string).sort();
      expect(storedIds).toEqual(spans.map((span) => span.spanContext().spanId).sort());
      expect(collector.process.exitCode).toBeNull();
    }, 300_000);
  });
});
