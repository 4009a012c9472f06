import { appendFileSync, readdirSync, readlinkSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
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

const base = (ws: ReturnType<typeof shipperWorkspace>) => ({
  host: { name: "test-host" },
  checkpointDir: ws.checkpointDir,
  topicPrefix: ws.prefix,
  reconcileIntervalMs: 500,
  checkpointIntervalMs: 200,
});

/** Per file: after dropping re-sent records (same event.id), every sequence number once, ascending. */
function expectCompleteAfterDedup(records: ConsumedRecord[], expectedPerWriter: Map<string, number>) {
  const firstById = new Map<string, ConsumedRecord>();
  const idsBySeq = new Map<string, Set<string>>();
  for (const record of records) {
    const id = (record.value.event as { id: string }).id;
    if (!firstById.has(id)) firstById.set(id, record);
    const writer = /writer=(\w+)/.exec(String(record.value.message))?.[1] ?? "?";
    const seqKey = `${writer}/${seqOf(record.value.message)}`;
    idsBySeq.set(seqKey, (idsBySeq.get(seqKey) ?? new Set()).add(id));
  }
  // A re-sent line carries the same event id: the index stays exact.
  for (const [seqKey, ids] of idsBySeq) expect(ids.size, `${seqKey} sent under several ids`).toBe(1);
  const perWriter = new Map<string, number[]>();
  for (const record of firstById.values()) {
    const writer = /writer=(\w+)/.exec(String(record.value.message))?.[1] ?? "?";
    perWriter.set(writer, [...(perWriter.get(writer) ?? []), seqOf(record.value.message)]);
  }
  for (const [writer, expected] of expectedPerWriter) {
    const seqs = perWriter.get(writer) ?? [];
    expect(seqs.length, `${writer} count`).toBe(expected);
    expect(seqs, `${writer} order`).toEqual(Array.from({ length: expected }, (_, i) => i));
  }
}

describe("shipper: faults, counted record by record", () => {
  const running: ShipperUnderTest[] = [];
  afterEach(async () => {
    for (const shipper of running.splice(0)) await shipper.stop("SIGKILL");
  });
  const launch = (config: string) => {
    const shipper = startShipper(config);
    running.push(shipper);
    return shipper;
  };

  it("SIGKILL mid-stream and restart: nothing lost, re-sent lines keep their event ids", async () => {
    const ws = shipperWorkspace("kill9");
    const writers = ["a", "b", "c"].map((name) => new SequenceWriter(join(ws.logs, `${name}.log`), name));
    const config = writeShipperConfig(ws.dir, {
      ...base(ws),
      inputs: [{ name: "app", paths: [join(ws.logs, "*.log")] }],
    });
    const reader = await new TopicReader(testKafka(), topicNames(ws.prefix).logs).start();
    try {
      const first = launch(config);
      await first.started;
      for (const writer of writers) await writer.write(10_000);
      await reader.waitFor((r) => r.length > 5_000);
      first.process.kill("SIGKILL");
      await first.exited;
      for (const writer of writers) await writer.write(5_000); // written while no shipper runs
      const second = launch(config);
      await second.started;
      for (const writer of writers) await writer.write(10_000);
      for (const writer of writers) writer.close();
      const expected = new Map(["a", "b", "c"].map((name, i) => [name, writers[i]?.next ?? 0] as const));
      const total = [...expected.values()].reduce((a, b) => a + b, 0);
      await reader.waitFor(
        (r) => new Set(r.map((x) => (x.value.event as { id: string }).id)).size >= total,
        90_000,
      );
      expectCompleteAfterDedup(reader.records, expected);
    } finally {
      await reader.stop();
    }
  });

  it("1,000 files at once: every line of every file, once", async () => {
    const ws = shipperWorkspace("thousand");
    const perFile = 50;
    for (let f = 0; f < 1_000; f++) {
      let text = "";
      for (let i = 0; i < perFile; i++) text += `seq=${i} writer=f${f} pad=xxxxxxxx\n`;
      writeFileSync(join(ws.logs, `f${f}.log`), text);
    }
    const config = writeShipperConfig(ws.dir, {
      ...base(ws),
      inputs: [{ name: "many", paths: [join(ws.logs, "*.log")] }],
    });
    const shipper = launch(config);
    await shipper.started;
    const records = await consumeUntil(
      testKafka(),
      topicNames(ws.prefix).logs,
      (r) => r.length >= 1_000 * perFile,
      90_000,
    );
    const expected = new Map(Array.from({ length: 1_000 }, (_, f) => [`f${f}`, perFile] as const));
    expect(records).toHaveLength(1_000 * perFile);
    expectCompleteAfterDedup(records, expected);
  });

  it("a file deleted while being read is read to its end, then its handle is released", async () => {
    const ws = shipperWorkspace("deleted");
    const path = join(ws.logs, "gone.log");
    const writer = new SequenceWriter(path, "gone");
    await writer.write(40_000);
    writer.close();
    const config = writeShipperConfig(ws.dir, {
      ...base(ws),
      limits: { inflightBytes: 256 * 1024 },
      inputs: [{ name: "gone", paths: [path] }],
    });
    const reader = await new TopicReader(testKafka(), topicNames(ws.prefix).logs).start();
    try {
      const shipper = launch(config);
      await shipper.started;
      await reader.waitFor((r) => r.length > 100);
      unlinkSync(path);
      const records = await reader.waitFor((r) => r.length >= 40_000);
      expectCompleteAfterDedup(records, new Map([["gone", 40_000]]));
      // The disk space comes back only when the handle is closed: wait for it to go from the process's fds.
      const pid = shipper.process.pid as number;
      const holdsDeleted = () =>
        readdirSync(`/proc/${pid}/fd`).some((fd) => {
          try {
            return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(path);
          } catch {
            return false;
          }
        });
      const deadline = Date.now() + 20_000;
      while (holdsDeleted() && Date.now() < deadline) await delay(200);
      expect(holdsDeleted()).toBe(false);
    } finally {
      await reader.stop();
    }
  });

  it("a 10 MB line, invalid UTF-8 and a binary file are flagged or skipped, and the other files still flow", async () => {
    const ws = shipperWorkspace("badinput");
    writeFileSync(join(ws.logs, "huge.log"), `before\n${"y".repeat(10 * 1024 * 1024)}\nafter\n`);
    writeFileSync(
      join(ws.logs, "latin1.log"),
      Buffer.concat([Buffer.from("caf"), Buffer.from([0xe9]), Buffer.from(" au lait\nvalid\n")]),
    );
    writeFileSync(
      join(ws.logs, "core.log"),
      Buffer.concat([Buffer.from("ELF"), Buffer.alloc(64), Buffer.from("\nx\n")]),
    );
    writeFileSync(join(ws.logs, "normal.log"), "one\ntwo\n");
    const config = writeShipperConfig(ws.dir, {
      ...base(ws),
      inputs: [{ name: "bad", paths: [join(ws.logs, "*.log")], maxLineBytes: 64 * 1024 }],
    });
    const shipper = launch(config);
    await shipper.started;
    const records = await consumeUntil(testKafka(), topicNames(ws.prefix).logs, (r) => r.length >= 7, 60_000);
    const byFile = (name: string) =>
      records.filter((r) => (r.value.log as { file: { path: string } }).file.path.endsWith(name));
    expect(byFile("huge.log").map((r) => String(r.value.message).length)).toEqual([6, 64 * 1024, 5]);
    expect((byFile("huge.log")[1]?.value.log as { flags?: string[] } | undefined)?.flags).toEqual([
      "truncated",
    ]);
    expect(byFile("latin1.log").map((r) => r.value.message)).toEqual(["caf\uFFFD au lait", "valid"]);
    expect((byFile("latin1.log")[0]?.value.log as { flags?: string[] } | undefined)?.flags).toEqual([
      "invalid_utf8",
    ]);
    expect(byFile("core.log")).toHaveLength(0);
    expect(byFile("normal.log").map((r) => r.value.message)).toEqual(["one", "two"]);
    expect(records).toHaveLength(7);
    expect(shipper.output()).toContain("binary file skipped");
    expect(shipper.process.exitCode).toBeNull();
  });

  it("multiline: a stack trace stays one record across a flush timeout mid-line and across a rotation", async () => {
    const ws = shipperWorkspace("multiline");
    const path = join(ws.logs, "java.log");
    const config = writeShipperConfig(ws.dir, {
      ...base(ws),
      inputs: [{ name: "java", paths: [path], multiline: { preset: "java", timeoutMs: 300 } }],
    });
    writeFileSync(path, "");
    const shipper = launch(config);
    await shipper.started;
    appendFileSync(
      path,
      "2026-11-27 ERROR request failed\njava.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.ja",
    );
    const reader = await new TopicReader(testKafka(), topicNames(ws.prefix).logs).start();
    try {
      // Longer than the timeout, with a half-written line: the record must wait for it.
      await delay(1_000);
      appendFileSync(
        path,
        "va:2)\nCaused by: java.io.IOException: disk\n\t... 3 more\n2026-11-27 INFO next\n",
      );
      // A second trace, cut by a rename rotation: its tail goes into the renamed file before the app reopens.
      appendFileSync(path, "2026-11-27 ERROR again\n\tat x.Y.z(Y.java:9)\n");
      renameSync(path, `${path}.1`);
      appendFileSync(`${path}.1`, "\tat x.Y.w(Y.java:10)\n");
      writeFileSync(path, "2026-11-27 INFO after rotation\n");
      const records = await reader.waitFor((r) => r.length >= 4, 30_000);
      // Two files, two Kafka keys, maybe two partitions: whole records, each once; order only within a file.
      expect(records.map((r) => String(r.value.message)).sort()).toEqual(
        [
          "2026-11-27 ERROR request failed\njava.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\nCaused by: java.io.IOException: disk\n\t... 3 more",
          "2026-11-27 INFO next",
          "2026-11-27 ERROR again\n\tat x.Y.z(Y.java:9)\n\tat x.Y.w(Y.java:10)",
          "2026-11-27 INFO after rotation",
        ].sort(),
      );
      expect((records[0]?.value.log as { flags?: string[] } | undefined)?.flags).toEqual(["multiline"]);
    } finally {
      await reader.stop();
    }
  });
});
