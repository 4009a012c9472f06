import { copyFileSync, renameSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SequenceWriter, seqOf } from "../helpers/sequence-writer.ts";
import { testKafka } from "../helpers/services.ts";
import {
  type ConsumedRecord,
  consumeUntil,
  type ShipperUnderTest,
  shipperWorkspace,
  startShipper,
  TopicReader,
  writeShipperConfig,
} from "../helpers/shipper.ts";

/** Every sequence number 0..total-1 exactly once, ascending within each file (Kafka key). */
function expectExactlyOnceInOrder(records: ConsumedRecord[], total: number) {
  const seqs = records.map((r) => seqOf(r.value.message));
  const unique = new Set(seqs);
  expect(seqs.length - unique.size, "duplicates").toBe(0);
  expect(unique.size).toBe(total);
  for (let i = 0; i < total; i++) if (!unique.has(i)) throw new Error(`sequence ${i} missing`);
  const byKey = new Map<string, number[]>();
  for (const record of records)
    byKey.set(record.key, [...(byKey.get(record.key) ?? []), seqOf(record.value.message)]);
  for (const [key, list] of byKey) {
    expect(list, `order within ${key}`).toEqual([...list].sort((a, b) => a - b));
  }
}

describe("shipper: rotation during heavy writes, counted line by line", () => {
  let shipper: ShipperUnderTest | undefined;
  afterEach(async () => {
    await shipper?.stop("SIGKILL");
  });

  it("rename + create rotation: the old file is read to its end, the new one from its start", async () => {
    const ws = shipperWorkspace("rename");
    const path = join(ws.logs, "app.log");
    const writer = new SequenceWriter(path, "app");
    await writer.write(5_000);
    const config = writeShipperConfig(ws.dir, {
      host: { name: "test-host" },
      checkpointDir: ws.checkpointDir,
      topicPrefix: ws.prefix,
      reconcileIntervalMs: 500,
      inputs: [{ name: "app", paths: [join(ws.logs, "app.log")], service: { name: "app" } }],
    });
    shipper = startShipper(config);
    await shipper.started;
    await writer.write(20_000);
    renameSync(path, `${path}.1`); // logrotate's "create" mode: rename, then the app reopens
    await writer.write(1_000); // still into the renamed file: the app has not reopened yet
    writer.reopen();
    await writer.write(20_000);
    writer.close();

    const total = writer.next;
    const records = await consumeUntil(testKafka(), `${ws.prefix}.logs`, (r) => r.length >= total);
    expectExactlyOnceInOrder(records, total);
    // Lines from both files, as the reader saw them: the old file under its new name once it was renamed.
    const paths = new Set(records.map((r) => (r.value.log as { file: { path: string } }).file.path));
    expect([...paths].every((p) => p === path || p === `${path}.1`)).toBe(true);
  });

  it("copytruncate: truncation is detected, lines only the copy holds are read from it, nothing twice", async () => {
    const ws = shipperWorkspace("copytruncate");
    const path = join(ws.logs, "ct.log");
    const writer = new SequenceWriter(path, "ct");
    const config = writeShipperConfig(ws.dir, {
      host: { name: "test-host" },
      checkpointDir: ws.checkpointDir,
      topicPrefix: ws.prefix,
      reconcileIntervalMs: 500,
      inputs: [{ name: "ct", paths: [path] }],
    });
    shipper = startShipper(config);
    await shipper.started;
    const reader = await new TopicReader(testKafka(), `${ws.prefix}.logs`).start();
    try {
      for (let round = 0; round < 3; round++) {
        const before = writer.next;
        await writer.write(15_000);
        // Rotate while the shipper is part-way through this round (as logrotate does at any moment), but
        // not several times between two of its looks: then a copy would be the only place some lines are.
        await reader.waitFor((r) => r.length > before + 1_000);
        copyFileSync(path, `${path}.${round + 1}`); // logrotate copytruncate: copy, then truncate in place
        truncateSync(path, 0);
      }
      await writer.write(10_000);
      writer.close();

      const total = writer.next;
      const records = await reader.waitFor((r) => r.length >= total);
      expectExactlyOnceInOrder(records, total);
      expect(shipper.output()).toContain("file truncated");
    } finally {
      await reader.stop();
    }
  });
});
