import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import type { Launcher } from "../core/entry.ts";
import type { KafkaPort as Kafka } from "../core/kafka/port.ts";
import { runningElasticPid } from "../local-services/elasticsearch.ts";
import { kafkaPaths, runningKafkaPid } from "../local-services/kafka.ts";
import { localServicesSettings } from "../local-services/settings.ts";

/** GNU time's arguments to run `command` and write its CPU and peak RSS to `timeFile` (read with timeMeasured). */
export function underTime(timeFile: string, command: string[]): string[] {
  return ["-f", "%U %S %M", "-o", timeFile, ...command];
}

/** What GNU time wrote for a process that exited: its CPU seconds (user + system) and peak RSS. */
export function timeMeasured(timeFile: string): { cpuSeconds: number; peakRssMiB: number } {
  const [user, system, rssKb] =
    readFileSync(timeFile, "utf8").trim().split("\n").pop()?.split(" ").map(Number) ?? [];
  return { cpuSeconds: (user ?? 0) + (system ?? 0), peakRssMiB: (rssKb ?? 0) / 1024 };
}

/** CPU seconds (user + system) a live process used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  // utime and stime are the 12th and 13th fields after the command name, in clock ticks (100 per second).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** One memory field of a live process's /proc/<pid>/status, in MiB (NaN if absent). */
function statusMiB(pid: number, field: "VmHWM" | "RssAnon"): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** Peak resident memory of a live process, in MiB. */
export function peakRssMiB(pid: number): number {
  return statusMiB(pid, "VmHWM");
}

/**
 * A process's own resident memory now, in MiB: anonymous pages (heaps, stacks, buffers), without the pages of its
 * executable and libraries (RssFile), which every process running the same binary shares and the kernel can drop
 * and read again. Sampled, so a peak between two samples can be missed.
 */
export function anonRssMiB(pid: number): number {
  return statusMiB(pid, "RssAnon");
}

/**
 * CPU seconds the local Elasticsearch and Kafka have used so far (NaN when they are external): on two shared cores
 * the servers' CPU in a timed window shows what the system under test leaves them.
 */
export function serverCpu(): { elastic: number; kafka: number } {
  const settings = localServicesSettings();
  const of = (pid: number | undefined) => (pid ? cpuSeconds(pid) : Number.NaN);
  return { elastic: of(runningElasticPid(settings)), kafka: of(runningKafkaPid(settings)) };
}

/** The servers' CPU since `before`, as row columns. */
export function serverCpuColumns(before: { elastic: number; kafka: number }): Record<string, number> {
  const after = serverCpu();
  const round2 = (n: number) => Math.round(n * 100) / 100;
  return {
    "es cpu s": round2(after.elastic - before.elastic),
    "kafka cpu s": round2(after.kafka - before.kafka),
  };
}

/**
 * Waits until the local Kafka has no deleted topic's files left to remove and has used under `cores` of a core
 * over a whole second, up to `timeoutMs`, and says which it was (quiet, or still busy and why) and how long.
 * Kafka works on its own after a bench's set-up: it settles new partitions, and removes a deleted topic's files a
 * minute later (file.delete.delay.ms), each partition logged. Measured while it did, the same controller build
 * took 3.7 s with Kafka at 1.0 CPU s and 9.2 s with Kafka at 7.4.
 */
export async function kafkaQuiet(cores = 0.1, timeoutMs = 180_000): Promise<string> {
  const settings = localServicesSettings();
  const pid = runningKafkaPid(settings);
  if (!pid) return "Kafka external, not waited for";
  const { data } = kafkaPaths(settings);
  const deleting = () => readdirSync(data).some((entry) => entry.endsWith("-delete"));
  const began = performance.now();
  const waited = () => Math.round((performance.now() - began) / 100) / 10;
  let before = cpuSeconds(pid);
  while (performance.now() - began < timeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const now = cpuSeconds(pid);
    if (now - before < cores && !deleting()) return `Kafka quiet after ${waited()} s`;
    before = now;
  }
  return `Kafka still busy after ${waited()} s (${deleting() ? "removing deleted topics' files" : "above the CPU threshold"}), measuring anyway`;
}

/** A topic's end offsets, partition by partition. */
export async function topicEnds(kafka: Kafka, topic: string) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await admin.fetchTopicOffsets(topic);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Deletes the topics and consumer groups whose names `match` (a run's own once measured, or what earlier runs
 * left), so runs don't pile partitions and groups on the broker: a single broker holding thousands of leftover
 * partitions is slower at everything the next run measures. A group that can't be deleted (members still in it)
 * is reported, not thrown: the measurement it followed stands.
 */
export async function removeTopicsAndGroups(
  kafka: Kafka,
  matches: (name: string) => boolean,
): Promise<{ topics: number; groups: number }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter(matches);
    const groups = (await admin.listGroups()).filter(matches);
    for (let i = 0; i < topics.length; i += 200)
      // A topic already being deleted answers "unknown topic": the outcome wanted.
      await admin.deleteTopics({ topics: topics.slice(i, i + 200), timeout: 60_000 }).catch(() => {});
    for (let i = 0; i < groups.length; i += 200)
      await admin
        .deleteGroups(groups.slice(i, i + 200))
        .catch((error: Error) => process.stderr.write(`consumer groups not deleted: ${error.message}\n`));
    return { topics: topics.length, groups: groups.length };
  } finally {
    await admin.disconnect();
  }
}

/** Sum of a topic's end offsets: how many records Kafka holds (acknowledged). */
export async function topicRecordCount(kafka: Kafka, topic: string): Promise<number> {
  return (await topicEnds(kafka, topic)).reduce((sum, partition) => sum + Number(partition.high), 0);
}

/** Polls the topic until it holds `expected` records; returns the seconds since `since` when it did. */
export async function waitForRecords(
  kafka: Kafka,
  topic: string,
  expected: number,
  since: number,
  timeoutMs = 600_000,
) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (;;) {
      const offsets = await admin.fetchTopicOffsets(topic).catch(() => []);
      const count = offsets.reduce((sum, partition) => sum + Number(partition.high), 0);
      if (count >= expected) return (performance.now() - since) / 1000;
      if (performance.now() - since > timeoutMs)
        throw new Error(`${topic}: ${count} of ${expected} records after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await admin.disconnect();
  }
}

export interface BenchRow {
  scenario: string;
  system: string;
  [metric: string]: string | number;
}

export function printTable(rows: BenchRow[]): void {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cell = (value: unknown) =>
    typeof value === "number"
      ? Number.isInteger(value)
        ? String(value)
        : value.toFixed(2)
      : String(value ?? "");
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((row) => cell(row[c]).length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i] ?? 0)).join("  ");
  console.log(line(columns));
  for (const row of rows) console.log(line(columns.map((c) => cell(row[c]))));
}

export function writeResults(name: string, rows: BenchRow[], notes: Record<string, unknown> = {}): string {
  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}${name}.json`;
  writeFileSync(
    file,
    `${JSON.stringify({ name, date: new Date().toISOString(), cores: cpus().length, cpu: cpus()[0]?.model, node: process.version, notes, rows }, null, 2)}\n`,
  );
  return file;
}

/**
 * A component as its deployment runs it (`deployed`, from core/entry.ts: compiled, built here first), or as the
 * environment says: BENCH_NODE_ARGS (Node flags instead of the launcher's), BENCH_SOURCE=1 (the TypeScript entry),
 * BENCH_NO_ENV=1 (without the launcher's environment). `how` names it in result rows.
 */
export function benchLauncher(deployed: () => Launcher): {
  nodeArgs: string[];
  entry: string;
  env: Record<string, string>;
  how: string;
} {
  if (!process.env.BENCH_SOURCE)
    execFileSync(process.execPath, [fileURLToPath(new URL("../bin/build.ts", import.meta.url))], {
      stdio: "inherit",
    });
  const launcher = deployed();
  const entry = process.env.BENCH_SOURCE
    ? fileURLToPath(new URL("../bin/lifeline.ts", import.meta.url))
    : launcher.entry;
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? launcher.nodeArgs;
  const env = process.env.BENCH_NO_ENV ? {} : (launcher.env ?? {});
  const how = [
    entry.endsWith(".js") ? "compiled" : "TypeScript sources",
    ...nodeArgs,
    ...Object.entries(env).map(([name, value]) => `${name}=${value}`),
  ].join(", ");
  return { nodeArgs, entry, env, how };
}
