import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
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
  const topic = `${ws.prefix}.logs`;
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

  it("packed (the default): fewer records, each newline-separated documents; split on newlines, every line once", async () => {
    const records = await shipAndRead(undefined, running);
    expect(records.length).toBeLessThan(LINES / 10);
    const documents = records.flatMap((value) => value.split("\n")).map((text) => JSON.parse(text));
    expect(documents.map((d: { message: string }) => d.message)).toEqual(
      Array.from({ length: LINES }, (_, i) => `line ${i}`),
    );
  });
});
