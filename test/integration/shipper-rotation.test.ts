import {
  copyFileSync,
  existsSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { topicNames } from "../../core/topics.ts";
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

/**
 * Every sequence number 0..total-1 exactly once, ascending within each file's content in its partition. Files share
 * Kafka messages (packed by partition), so a message's key does not name one file: the event id does, its first 27
 * characters being the file id (a copy of a truncated file keeps its original's; new content after a truncation
 * gets a new one). The original and its copy may sit in two partitions, whose order against each other Kafka does
 * not keep: the order is checked per file id and partition.
 */
function expectExactlyOnceInOrder(records: ConsumedRecord[], total: number) {
  const seqs = records.map((r) => seqOf(r.value.message));
  const unique = new Set(seqs);
  expect(seqs.length - unique.size, "duplicates").toBe(0);
  expect(unique.size).toBe(total);
  for (let i = 0; i < total; i++) if (!unique.has(i)) throw new Error(`sequence ${i} missing`);
  const byFile = new Map<string, number[]>();
  for (const record of records) {
    const file = `${String((record.value.event as { id: string }).id).slice(0, 27)} in partition ${record.partition}`;
    byFile.set(file, [...(byFile.get(file) ?? []), seqOf(record.value.message)]);
  }
  for (const [file, list] of byFile) {
    expect(list, `order within ${file}`).toEqual([...list].sort((a, b) => a - b));
  }
}

const COPY_SEEN = "a copy of a file already read";

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
    const records = await consumeUntil(testKafka(), topicNames(ws.prefix).logs, (r) => r.length >= total);
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
    const reader = await new TopicReader(testKafka(), topicNames(ws.prefix).logs).start();
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

  it("copytruncate with a glob that matches the copies (app.log*, *.gz excluded): each line once, copies compressed away too", async () => {
    const ws = shipperWorkspace("copytruncate-glob");
    const path = join(ws.logs, "app.log");
    const writer = new SequenceWriter(path, "app");
    const config = writeShipperConfig(ws.dir, {
      host: { name: "test-host" },
      checkpointDir: ws.checkpointDir,
      topicPrefix: ws.prefix,
      reconcileIntervalMs: 500,
      // What the example config suggests for rotated files.
      inputs: [{ name: "app", paths: [`${path}*`], exclude: ["*.gz"] }],
    });
    shipper = startShipper(config);
    await shipper.started;
    const reader = await new TopicReader(testKafka(), topicNames(ws.prefix).logs).start();
    try {
      for (let round = 1; round <= 4; round++) {
        const before = writer.next;
        await writer.write(15_000);
        await reader.waitFor((r) => r.length > before + 1_000);
        // logrotate copytruncate, older copies shifted up first (renamed: same files, new names).
        for (let n = round - 1; n >= 1; n--) {
          if (existsSync(`${path}.${n}`)) renameSync(`${path}.${n}`, `${path}.${n + 1}`);
        }
        copyFileSync(path, `${path}.1`);
        truncateSync(path, 0);
        if (round === 3) {
          // compress without delaycompress: the copy becomes .gz (excluded) and is deleted, once the shipper has
          // seen it (a copy deleted before any reader saw it is gone for every tailer). Awaited by its inode: the
          // previous round's copy, which holds nothing unread, may be recognised only now (CI of 9220896 took
          // that line for this copy's, deleted it unseen, and the shipper rightly reported 2,808 lines missed).
          const { ino } = statSync(`${path}.1`);
          await shipper.waitForOutput(new RegExp(`"inode":${ino},[^\n]*${COPY_SEEN}`));
          writeFileSync(`${path}.1.gz`, gzipSync(readFileSync(`${path}.1`)));
          rmSync(`${path}.1`);
        }
      }
      await writer.write(10_000);
      writer.close();

      const total = writer.next;
      // This test once lost 2,808 of 70,000 lines in CI (issue 19): a failure carries the shipper's own account.
      await reader
        .waitFor((r) => r.length >= total)
        .catch((error: Error) => {
          const warnings = (shipper?.output() ?? "")
            .split("\n")
            .filter((line) => /"level":(40|50)/.test(line) || /copy|truncat|renamed/.test(line));
          throw new Error(
            `${error.message}\nshipper's account of copies and truncations:\n${warnings.slice(-60).join("\n")}`,
          );
        });
      // Stopped, then the topic read to its end: a copy read from its start would show as tens of thousands more.
      const output = shipper.output();
      expect(await shipper.stop()).toBe(0);
      shipper = undefined;
      expectExactlyOnceInOrder(await reader.readToEnd(), total);
      // Each of the four copytruncates was noticed. (How many copies are logged as recognised depends on timing:
      // a copy that holds nothing unread, found after the truncation, may not be seen by the glob before the stop;
      // CI of ce7aadf and 3d15b4c: 3 of 4, every line once.)
      const copyLines = output.split("\n").filter((l) => /copy|truncat/.test(l));
      expect(
        copyLines.filter((l) => l.includes("file truncated (copytruncate?)")).length,
        copyLines.join("\n"),
      ).toBe(4);
      expect(output.split(COPY_SEEN).length - 1, copyLines.join("\n")).toBeGreaterThanOrEqual(3);
    } finally {
      await reader.stop();
    }
  });
});
