import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { createKafka } from "../../core/kafka/client.ts";
import { runningKafkaPid, startKafka, waitForKafka } from "../../local-services/kafka.ts";
import { stopProcess } from "../../local-services/process.ts";
import { localServicesSettings } from "../../local-services/settings.ts";
import { SequenceWriter, seqOf } from "../helpers/sequence-writer.ts";
import {
  type ShipperUnderTest,
  shipperWorkspace,
  startShipper,
  TopicReader,
  writeShipperConfig,
} from "../helpers/shipper.ts";

const external = Boolean(process.env.LIFELINE_KAFKA_BROKERS);

/** A broker of this test's own (same code as `lifeline services up`), so stopping it disturbs no other test. */
function privateKafkaSettings() {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-outage-"));
  chmodSync(dir, 0o755);
  return localServicesSettings({
    ...process.env,
    LIFELINE_SERVICES_DIR: dir,
    LIFELINE_SERVICES_KAFKA_PORT: "29692",
    LIFELINE_SERVICES_KAFKA_CONTROLLER_PORT: "29693",
    LIFELINE_SERVICES_KAFKA_SASL_PORT: "29694",
    LIFELINE_SERVICES_KAFKA_HEAP_MB: "256",
  });
}

describe.skipIf(external)("shipper: Kafka stopped for 30 s mid-stream", () => {
  const settings = privateKafkaSettings();
  const credentials = { username: "lifeline", password: "outage-test" };
  const brokers = [`127.0.0.1:${settings.kafka.port}`];
  let shipper: ShipperUnderTest | undefined;
  afterAll(async () => {
    await shipper?.stop("SIGKILL");
    const pid = runningKafkaPid(settings);
    if (pid) await stopProcess(pid, 10_000);
  });

  it("pauses reading while Kafka is away, reports unhealthy, resumes by itself, loses nothing", async () => {
    await startKafka(settings, credentials, () => {});
    await waitForKafka(settings, 120_000);
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
    const port = Number(
      /"port":(\d+),"msg":"metrics and health endpoint listening"/.exec(shipper.output())?.[1],
    );
    const health = async () => (await fetch(`http://127.0.0.1:${port}/health`)).status;
    expect(await health()).toBe(200);

    await writer.write(20_000);
    const before = await new TopicReader(kafka, `${ws.prefix}.logs`).start();
    await before.waitFor((r) => r.length >= 2_000);
    await before.stop();

    const pid = runningKafkaPid(settings);
    expect(pid).toBeDefined();
    await stopProcess(pid as number, 30_000);
    const downAt = Date.now();
    await writer.write(20_000); // written while Kafka is away: the files are the buffer
    const unhealthyDeadline = Date.now() + 30_000;
    while ((await health()) !== 503 && Date.now() < unhealthyDeadline) await delay(250);
    expect(await health()).toBe(503);
    // The scenario is "Kafka away for 30 s"; this wait is its length, not a guess at an event.
    await delay(Math.max(0, 30_000 - (Date.now() - downAt)));
    expect(shipper.process.exitCode).toBeNull();

    await startKafka(settings, credentials, () => {});
    await waitForKafka(settings, 120_000);
    await writer.write(10_000);
    writer.close();
    const total = writer.next;
    const after = await new TopicReader(kafka, `${ws.prefix}.logs`).start();
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
    } finally {
      await after.stop();
    }
  });
});
