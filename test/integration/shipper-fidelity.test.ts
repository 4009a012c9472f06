import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { topicNames } from "../../core/topics.ts";
import { testKafka } from "../helpers/services.ts";
import {
  type ConsumedRecord,
  inputCounters,
  metricsPort,
  type ShipperUnderTest,
  shipperWorkspace,
  startShipper,
  TopicReader,
  writeShipperConfig,
} from "../helpers/shipper.ts";

/** Reads every record the shipper sent, after stopping it: the counts are final. */
async function shipAndStop(
  shipper: ShipperUnderTest,
  reader: TopicReader,
  done: (records: ConsumedRecord[]) => boolean,
): Promise<ConsumedRecord[]> {
  await reader.waitFor(done);
  expect(await shipper.stop()).toBe(0);
  return [...(await reader.readToEnd())];
}

const messages = (records: ConsumedRecord[], path?: string) =>
  records
    .filter((r) => !path || (r.value.log as { file: { path: string } }).file.path === path)
    .map((r) => r.value.message as string);

describe("shipper: every line as it was written", () => {
  let shipper: ShipperUnderTest | undefined;
  let reader: TopicReader | undefined;
  afterEach(async () => {
    await shipper?.stop("SIGKILL");
    await reader?.stop();
    shipper = undefined;
    reader = undefined;
  });

  it("plain-text lines are dated by their own timestamp, in the input's zone; the read time is event.created", async () => {
    const ws = shipperWorkspace("timestamps");
    const path = join(ws.logs, "app.log");
    const lines = [
      "2026-12-04 10:11:12,123 INFO  [main] com.example.App - log4j, no zone: Europe/Berlin",
      "2026-12-04T10:11:12.5Z iso with Z",
      "2026/12/04 10:11:13.250000 go log",
      "Dec  4 10:11:14 host sshd[42]: syslog",
      "no timestamp at all",
    ];
    writeFileSync(path, `${lines.join("\n")}\n`);
    const config = writeShipperConfig(ws.dir, {
      host: { name: "test-host" },
      checkpointDir: ws.checkpointDir,
      topicPrefix: ws.prefix,
      inputs: [{ name: "app", paths: [path], timestamp: { timeZone: "Europe/Berlin" } }],
    });
    const startedAt = Date.now();
    shipper = startShipper(config);
    reader = await new TopicReader(testKafka(), topicNames(ws.prefix).logs).start();
    const running = shipper;
    const records = await shipAndStop(shipper, reader, (r) => r.length >= lines.length);
    shipper = undefined;
    expect(messages(records)).toEqual(lines);
    // Nothing a user cannot act on: kafkajs's EoS notice does not apply to Lifeline's producer (core/kafka/client.ts).
    expect(running.output()).not.toContain("Limiting retries");
    const times = records.map((r) => r.value["@timestamp"]);
    expect(times.slice(0, 3)).toEqual([
      "2026-12-04T09:11:12.123Z",
      "2026-12-04T10:11:12.500Z",
      "2026-12-04T09:11:13.250Z",
    ]);
    // syslog has no year: the one that puts it closest before now.
    expect(times[3]).toMatch(/^\d{4}-12-04T09:11:14\.000Z$/);
    for (const record of records.slice(0, 4)) {
      const created = Date.parse((record.value.event as { created: string }).created);
      expect(created).toBeGreaterThanOrEqual(startedAt - 1);
    }
    // No time of its own: dated when read, and nothing claims otherwise.
    expect(Date.parse(times[4] as string)).toBeGreaterThanOrEqual(startedAt - 1);
    expect((records[4]?.value.event as { created?: string } | undefined)?.created).toBeUndefined();
    expect(records[4]?.value.event).toBeDefined();
  });

  it("UTF-16 (by its byte order mark), a UTF-8 mark and windows-1252: each line's text exact, nothing skipped", async () => {
    const ws = shipperWorkspace("encodings");
    const text = ["service started Ċ ok", "naïve café ☕ 𝄞", "stopping"];
    const utf16 = join(ws.logs, "windows-service.log");
    writeFileSync(
      utf16,
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`${text.join("\r\n")}\r\n`, "utf16le")]),
    );
    const bom = join(ws.logs, "notepad.log");
    writeFileSync(bom, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${text.join("\n")}\n`)]));
    const legacy = join(ws.dir, "legacy.log");
    writeFileSync(
      legacy,
      Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x80, 0x0d, 0x0a, 0x6f, 0x6b, 0x0d, 0x0a]),
    );
    const config = writeShipperConfig(ws.dir, {
      host: { name: "test-host" },
      checkpointDir: ws.checkpointDir,
      topicPrefix: ws.prefix,
      inputs: [
        { name: "default", paths: [join(ws.logs, "*.log")] },
        { name: "legacy", paths: [legacy], encoding: "windows-1252" },
      ],
    });
    shipper = startShipper(config);
    reader = await new TopicReader(testKafka(), topicNames(ws.prefix).logs).start();
    const records = await shipAndStop(shipper, reader, (r) => r.length >= 8);
    shipper = undefined;
    expect(records).toHaveLength(8);
    expect(messages(records, utf16)).toEqual(text);
    expect(messages(records, bom)).toEqual(text);
    expect(messages(records, legacy)).toEqual(["café €", "ok"]);
    expect(records.every((r) => !(r.value.log as { flags?: string[] }).flags)).toBe(true);
    const first = records.find((r) => (r.value.log as { file: { path: string } }).file.path === bom);
    expect((first?.value.log as { offset: number } | undefined)?.offset).toBe(3);
  });

  it("includeLines / excludeLines: only the kept lines, each once; the checkpoint moves past lines left out", async () => {
    const ws = shipperWorkspace("filter");
    const path = join(ws.logs, "app.log");
    const all: string[] = [];
    for (let i = 0; i < 3_000; i++) {
      const level = i % 3 === 0 ? "DEBUG" : i % 3 === 1 ? "INFO" : "ERROR";
      all.push(i % 100 === 99 ? `healthcheck ok ${i}` : `${level} seq=${i} something happened`);
    }
    all.push("DEBUG the very last line is left out");
    writeFileSync(path, `${all.join("\n")}\n`);
    const config = writeShipperConfig(ws.dir, {
      host: { name: "test-host" },
      checkpointDir: ws.checkpointDir,
      topicPrefix: ws.prefix,
      inputs: [{ name: "app", paths: [path], includeLines: ["seq="], excludeLines: ["^DEBUG"] }],
      http: { port: 0 },
    });
    shipper = startShipper(config);
    reader = await new TopicReader(testKafka(), topicNames(ws.prefix).logs).start();
    const kept = all.filter((line) => line.includes("seq=") && !line.startsWith("DEBUG"));
    const records = await shipAndStop(shipper, reader, (r) => r.length >= kept.length);
    shipper = undefined;
    expect(messages(records)).toEqual(kept);
    const checkpoint = JSON.parse(
      readFileSync(join(ws.checkpointDir, "shipper.checkpoint.json"), "utf8"),
    ) as {
      files: Array<{ offset: number; size: number }>;
    };
    expect(checkpoint.files[0]?.offset).toBe(readFileSync(path).length);
  });

  it("limits.openFiles and closeInactiveMs: files wait for a slot, inactive ones close and reopen on growth, each line once", async () => {
    const ws = shipperWorkspace("open-files");
    const paths = Array.from({ length: 6 }, (_, i) => join(ws.logs, `app-${i}.log`));
    const line = (file: number, n: number) => `file=${file} n=${n} some text`;
    for (const [i, path] of paths.entries()) {
      writeFileSync(path, `${Array.from({ length: 500 }, (_, n) => line(i, n)).join("\n")}\n`);
    }
    const config = writeShipperConfig(ws.dir, {
      host: { name: "test-host" },
      checkpointDir: ws.checkpointDir,
      topicPrefix: ws.prefix,
      reconcileIntervalMs: 200,
      closeInactiveMs: 300,
      limits: { openFiles: 2 },
      inputs: [{ name: "app", paths: [join(ws.logs, "*.log")] }],
    });
    // Debug: the shipper says when it closes an inactive file.
    shipper = startShipper(config, { ...process.env, LIFELINE_LOG_LEVEL: "debug" });
    reader = await new TopicReader(testKafka(), topicNames(ws.prefix).logs).start();
    await reader.waitFor((r) => r.length >= 6 * 500);
    await shipper.waitForOutput("limits.openFiles files are open");
    // Every file closed while inactive; these lines reopen them.
    await shipper.waitForOutput("file inactive: closed until it grows", 6);
    for (const [i, path] of paths.entries()) appendFileSync(path, `${line(i, 500)}\n${line(i, 501)}\n`);
    const records = await shipAndStop(shipper, reader, (r) => r.length >= 6 * 502);
    shipper = undefined;
    expect(records).toHaveLength(6 * 502);
    for (const [i, path] of paths.entries()) {
      expect(messages(records, path)).toEqual(Array.from({ length: 502 }, (_, n) => line(i, n)));
    }
    // Reopened files keep their file id: event ids go on from the same base.
    const ids = new Set(records.map((r) => (r.value.event as { id: string }).id));
    expect(ids.size).toBe(records.length);
  });

  it("limits.readDelayMs: writes within the delay are read together, after it, then sent without the linger; each line once, in order", async () => {
    const ws = shipperWorkspace("read-delay");
    const path = join(ws.logs, "app.log");
    writeFileSync(path, "");
    const config = writeShipperConfig(ws.dir, {
      host: { name: "test-host" },
      checkpointDir: ws.checkpointDir,
      topicPrefix: ws.prefix,
      // No reconcile pass (it reads every file) during the test: only the folder watch's events lead to reads.
      reconcileIntervalMs: 600_000,
      // A linger far longer than the test: the lines of a pass over changed files must not wait for it.
      limits: { readDelayMs: 2_000, lingerMs: 60_000 },
      http: { port: 0 },
      inputs: [{ name: "app", paths: [join(ws.logs, "*.log")] }],
    });
    shipper = startShipper(config);
    await shipper.started;
    const port = metricsPort(shipper);
    reader = await new TopicReader(testKafka(), topicNames(ws.prefix).logs).start();
    // Twenty writes, each its own write(2) and its own change event, 5 ms apart: well within the delay.
    const firstWriteAt = Date.now();
    for (let n = 0; n < 20; n++) {
      appendFileSync(path, `line ${n} of twenty\n`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const records = await reader.waitFor((r) => r.length >= 20);
    const arrivedAt = Date.now();
    expect(messages(records)).toEqual(Array.from({ length: 20 }, (_, n) => `line ${n} of twenty`));
    // Plain lines without a time of their own are dated when read: not before the delay had passed.
    const readAt = records.map((r) => Date.parse(r.value["@timestamp"] as string));
    expect(Math.min(...readAt)).toBeGreaterThanOrEqual(firstWriteAt + 2_000 - 1);
    expect(arrivedAt - Math.max(...readAt)).toBeLessThan(30_000);
    const counters = async () => {
      const value = await inputCounters(port, "app");
      return {
        records: value("lifeline_shipper_records_read_total"),
        reads: value("lifeline_shipper_reads_total"),
      };
    };
    // The counters are brought up to date when scraped; polled all the same, in case a scrape came first.
    const deadline = Date.now() + 5_000;
    while ((await counters()).records !== 20 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(await counters()).toEqual({ records: 20, reads: 1 });
    // Stopped at once, though the linger is a minute long: its timer ends when the producer stops.
    const stopAsked = Date.now();
    const all = await shipAndStop(shipper, reader, (r) => r.length >= 20);
    expect(Date.now() - stopAsked).toBeLessThan(30_000);
    shipper = undefined;
    expect(all).toHaveLength(20);
  });

  it("a file past its first KiB read a few lines at a time, half-written lines too: each line once, in order", async () => {
    // What a live file is: past its first KiB (its fingerprint known, checked again by each read), growing by a
    // line or two, or by half a line and then the rest, each growth read before the next.
    const ws = shipperWorkspace("small-reads");
    const path = join(ws.logs, "app.log");
    const line = (n: number) => `line ${n} of a file that keeps growing, padded to make a KiB soon`;
    const first = 40;
    writeFileSync(path, Array.from({ length: first }, (_, n) => `${line(n)}\n`).join(""));
    const config = writeShipperConfig(ws.dir, {
      host: { name: "test-host" },
      checkpointDir: ws.checkpointDir,
      topicPrefix: ws.prefix,
      reconcileIntervalMs: 600_000,
      limits: { readDelayMs: 10 },
      http: { port: 0 },
      inputs: [{ name: "app", paths: [join(ws.logs, "*.log")] }],
    });
    shipper = startShipper(config);
    await shipper.started;
    const port = metricsPort(shipper);
    reader = await new TopicReader(testKafka(), topicNames(ws.prefix).logs).start();
    // A counter with no series yet is 0.
    const count = async (name: string) => (await inputCounters(port, "app"))(name) || 0;
    const readSoFar = () => count("lifeline_shipper_records_read_total");
    const readsNow = () => count("lifeline_shipper_reads_total");
    const readUpTo = async (records: number) => {
      const deadline = Date.now() + 10_000;
      while ((await readSoFar()) < records && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      expect(await readSoFar()).toBe(records);
    };
    await readUpTo(first);
    const readsBefore = await readsNow();
    let next = first;
    // Sixty growths, each read before the next: one or two whole lines, or a line's first half (no record yet)
    // and then its second half with the newline.
    for (let growth = 0; growth < 60; growth++) {
      if (growth % 3 === 2) {
        const text = line(next);
        // A half line makes no record: the read that took it is what is waited for.
        const before = await readsNow();
        appendFileSync(path, text.slice(0, 20));
        const deadline = Date.now() + 10_000;
        while ((await readsNow()) === before && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 10));
        expect(await readsNow()).toBe(before + 1);
        appendFileSync(path, `${text.slice(20)}\n`);
        next++;
      } else {
        const lines = 1 + (growth % 2);
        appendFileSync(path, Array.from({ length: lines }, (_, i) => `${line(next + i)}\n`).join(""));
        next += lines;
      }
      await readUpTo(next);
    }
    const records = await reader.waitFor((r) => r.length >= next);
    expect(messages(records)).toEqual(Array.from({ length: next }, (_, n) => line(n)));
    // Every growth was a read of its own (the half lines two).
    expect((await readsNow()) - readsBefore).toBe(80);
    const all = await shipAndStop(shipper, reader, (r) => r.length >= next);
    shipper = undefined;
    expect(all).toHaveLength(next);
  });
});
