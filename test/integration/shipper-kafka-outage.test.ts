import { statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { createKafka } from "../../core/kafka/client.ts";
import { topicNames } from "../../core/topics.ts";
import { privateKafka } from "../helpers/private-kafka.ts";
import { SequenceWriter, seqOf } from "../helpers/sequence-writer.ts";
import {
  inputCounters,
  metricsPort,
  type ShipperUnderTest,
  shipperWorkspace,
  startShipper,
  TopicReader,
  writeShipperConfig,
} from "../helpers/shipper.ts";

const external = Boolean(process.env.LIFELINE_KAFKA_BROKERS);

describe.skipIf(external)("shipper: Kafka stopped for 30 s mid-stream", () => {
  const broker = privateKafka(29692);
  const brokers = broker.brokers;
  let shipper: ShipperUnderTest | undefined;
  afterAll(async () => {
    await shipper?.stop("SIGKILL");
    await broker.stop();
  });

  it("pauses reading while Kafka is away, reports unhealthy, resumes by itself, loses nothing", async () => {
    await broker.start();
    const kafka = createKafka({
      brokers,
      clientId: "outage-test",
      connectionTimeoutMs: 3_000,
      requestTimeoutMs: 30_000,
    });
    const ws = shipperWorkspace("outage");
    const writer = new SequenceWriter(join(ws.logs, "app.log"), "app");
    const config = writeShipperConfig(ws.dir, {
      host: { name: "test-host" },
      checkpointDir: ws.checkpointDir,
      topicPrefix: ws.prefix,
      reconcileIntervalMs: 500,
      limits: { inflightBytes: 1 << 20 },
      http: { port: 0 },
      kafka: { brokers },
      inputs: [{ name: "app", paths: [join(ws.logs, "*.log")] }],
    });
    shipper = startShipper(config);
    await shipper.started;
    const port = metricsPort(shipper);
    const health = async () => (await fetch(`http://127.0.0.1:${port}/health`)).status;
    expect(await health()).toBe(200);

    await writer.write(20_000);
    const before = await new TopicReader(kafka, topicNames(ws.prefix).logs).start();
    await before.waitFor((r) => r.length >= 2_000);
    await before.stop();

    const logFile = join(ws.logs, "app.log");
    await broker.stop();
    const downAt = Date.now();
    const sizeWhenStopped = statSync(logFile).size;
    await writer.write(20_000); // written while Kafka is away: the files are the buffer
    const unhealthyDeadline = Date.now() + 30_000;
    while ((await health()) !== 503 && Date.now() < unhealthyDeadline) await delay(250);
    expect(await health()).toBe(503);
    // Reading has paused; what is written now piles up, and the bytes-behind gauge must say so (it looks at the file,
    // not at what the last read saw).
    await writer.write(5_000);
    const behindNow = async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const line = text
        .split("\n")
        .find((l) => l.startsWith("lifeline_shipper_behind_bytes{") && l.includes(logFile));
      return Number(line?.split(" ").pop());
    };
    const piledUp = statSync(logFile).size - sizeWhenStopped;
    const behindDeadline = Date.now() + 5_000;
    while (!((await behindNow()) >= piledUp) && Date.now() < behindDeadline) await delay(100);
    expect(await behindNow()).toBeGreaterThanOrEqual(piledUp);
    // The scenario is "Kafka away for 30 s"; this wait is its length, not a guess at an event.
    await delay(Math.max(0, 30_000 - (Date.now() - downAt)));
    expect(shipper.process.exitCode).toBeNull();

    await broker.start();
    await writer.write(10_000);
    writer.close();
    const total = writer.next;
    const after = await new TopicReader(kafka, topicNames(ws.prefix).logs).start();
    try {
      const records = await after.waitFor(
        (r) => new Set(r.map((x) => (x.value.event as { id: string }).id)).size >= total,
        120_000,
      );
      const firstById = new Map<string, number>();
      for (const record of records) {
        const id = (record.value.event as { id: string }).id;
        if (!firstById.has(id)) firstById.set(id, seqOf(record.value.message));
      }
      expect([...firstById.values()]).toEqual(Array.from({ length: total }, (_, i) => i));
      expect(await health()).toBe(200);
      // Read once each, through the outage: the counters (reported each tick) reach the file's lines and bytes.
      const counted = async () => {
        const value = await inputCounters(port, "app");
        return {
          records: value("lifeline_shipper_records_read_total"),
          bytes: value("lifeline_shipper_bytes_read_total"),
        };
      };
      const fileBytes = statSync(logFile).size;
      const countDeadline = Date.now() + 10_000;
      while ((await counted()).records < total && Date.now() < countDeadline) await delay(100);
      expect(await counted()).toEqual({ records: total, bytes: fileBytes });
    } finally {
      await after.stop();
    }
  });
});
