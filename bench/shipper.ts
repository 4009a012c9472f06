/**
 * Shipper throughput and memory, side by side in one run with two baselines reading the same files into the
 * same local Kafka: kcat (librdkafka, one message per line: the raw ceiling) and rsyslog imfile + omkafka
 * (a C shipper). Each system writes to a fresh topic; "done" is when the topic holds every line.
 *   npm run bench:shipper            (BENCH_LINES=1000000 by default; BENCH_SCENARIOS="1 file;..." runs some, and
 *                                     writes no results file; BENCH_RECORD_FORMAT=single for one line per record;
 *                                     BENCH_BASELINES=none runs Lifeline alone, to compare two of its builds)
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { resolveKafka } from "../core/connections.ts";
import { shipperLauncher } from "../core/entry.ts";
import { createKafka } from "../core/kafka/client.ts";
import type { KafkaPort as Kafka } from "../core/kafka/port.ts";
import { readSince } from "../core/kafka/read-since.ts";
import { ensureTopics } from "../core/kafka/topics.ts";
import { topicNames } from "../core/topics.ts";
import { servicesUp } from "../local-services/manager.ts";
import { localServicesSettings } from "../local-services/settings.ts";
import {
  anonRssMiB,
  type BenchRow,
  cpuSeconds,
  printTable,
  timeMeasured,
  underTime,
  waitForRecords,
  writeResults,
} from "./lib.ts";

const LINES = Number(process.env.BENCH_LINES ?? 1_000_000);
/** The shipper's recordFormat (BENCH_RECORD_FORMAT=single: one document per Kafka record). */
const RECORD_FORMAT = process.env.BENCH_RECORD_FORMAT === "single" ? "single" : "packed";
const root = "/tmp/lifeline-bench-shipper";

/** A line; a live one ends with the time it was written (`w=<epoch ms>`), for the written → in Kafka latency. */
function logLine(i: number, file: number, writtenMs?: number): string {
  const trace = (i * 2654435761 + file).toString(16).padStart(32, "0").slice(-32);
  const written = writtenMs === undefined ? "" : ` w=${writtenMs}`;
  return `2026-11-27T05:00:${String(i % 60).padStart(2, "0")}.${String(i % 1000).padStart(3, "0")}Z INFO [worker-${file}] GET /api/items/${i} 200 ${i % 97}ms trace_id=${trace} seq=${i}${written}\n`;
}

function writeFiles(dir: string, files: number, linesPerFile: number): number {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let bytes = 0;
  for (let f = 0; f < files; f++) {
    const parts: string[] = [];
    for (let i = 0; i < linesPerFile; i++) parts.push(logLine(i, f));
    const text = parts.join("");
    bytes += Buffer.byteLength(text);
    writeFileSync(join(dir, `app-${f}.log`), text);
  }
  return bytes;
}

function benchRow(scenario: string, lines: number, bytes: number, system: string, m: Measured): BenchRow {
  return {
    scenario,
    system,
    lines,
    "lines/s": Math.round(lines / m.seconds),
    "MB/s": bytes / 1e6 / m.seconds,
    "cpu s/M lines": m.cpuSeconds / (lines / 1e6),
    "peak RSS MiB": m.peakRssMiB,
    "peak anon MiB": m.peakAnonMiB,
    // What a host pays all the time for the live scenarios (a share of one core over the run).
    "CPU % of a core": (100 * m.cpuSeconds) / m.seconds,
    ...(m.steady
      ? {
          "steady CPU %": (100 * m.steady.cpuSeconds) / m.steady.seconds,
          "steady cpu s/M lines": m.steady.cpuSeconds / (m.steady.lines / 1e6),
        }
      : {}),
    ...(m.latency
      ? { "written→in Kafka p50 ms": m.latency.p50, "p99 ms": m.latency.p99, "max ms": m.latency.max }
      : {}),
    seconds: m.seconds,
  };
}

/**
 * Appends `perTick` lines to every file every 100 ms while it is tailed: the everyday load, where memory with many
 * files open matters more than speed. Returns the bytes written.
 */
async function writeSteadily(
  files: string[],
  perTick: number,
  ticks: number,
  cpu: () => number,
): Promise<{ bytes: number; steady: Measured["steady"] }> {
  const handles = files.map((file) => openSync(file, "a"));
  const warmTicks = WARM_UP_S * 10;
  let bytes = 0;
  let steadyFrom: { cpu: number; at: number } | undefined;
  try {
    const began = performance.now();
    for (let tick = 0; tick < ticks; tick++) {
      if (tick === warmTicks) steadyFrom = { cpu: cpu(), at: performance.now() };
      for (const [f, handle] of handles.entries()) {
        let text = "";
        const now = Date.now();
        for (let i = 0; i < perTick; i++) text += logLine(tick * perTick + i, f, now);
        bytes += writeSync(handle, text);
      }
      const due = began + (tick + 1) * 100 - performance.now();
      if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
    }
  } finally {
    for (const handle of handles) closeSync(handle);
  }
  const steady = steadyFrom && {
    cpuSeconds: cpu() - steadyFrom.cpu,
    seconds: (performance.now() - steadyFrom.at) / 1000,
    lines: (ticks - warmTicks) * perTick * files.length,
  };
  return { bytes, steady };
}

interface Measured {
  seconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  /** The highest anonymous resident memory sampled (bench/lib.ts anonRssMiB): RSS without the executable's pages. */
  peakAnonMiB: number;
  /** Live scenarios: milliseconds from a line's write to its record's append by Kafka. */
  latency?: { p50: number; p99: number; max: number };
  /** Live scenarios: CPU from WARM_UP_S after the feed began to its end (start-up and the JIT's warm-up left out). */
  steady?: { cpuSeconds: number; seconds: number; lines: number };
}

/**
 * A shipper runs for days: what a host pays all the time is its CPU once started and warmed up. The whole run is
 * reported too (start-up, V8 compiling the hot paths in its first tens of seconds); the steady window begins this
 * long after the live feed does and ends with it, for every system alike.
 */
const WARM_UP_S = 20;

/** The process GNU time runs (its only child), once it exists. */
async function measuredPid(timePid: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const found = spawnSync("pgrep", ["-P", String(timePid)], { encoding: "utf8" }).stdout.trim();
    if (found) return Number(found.split("\n")[0]);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no process under time (pid ${timePid})`);
}

/**
 * Live topics are stamped by the broker when it appends a batch (LogAppendTime): with acks=all on one broker,
 * the moment the batch is acknowledged, give or take the reply's trip. Each line carries the time it was written.
 */
const APPEND_TIME = { "message.timestamp.type": "LogAppendTime" };

function reportLatencyError(error: Error): undefined {
  console.error(`no latency figures: ${error.message}`);
  return undefined;
}

/** Written → appended by Kafka, for every line of a topic (each `w=` in a record is one line). */
async function appendLatency(kafka: Kafka, topic: string, lines: number): Promise<Measured["latency"]> {
  const latencies: number[] = [];
  await readSince(
    kafka,
    topic,
    0,
    (text, appendedMs) => {
      for (const match of text.matchAll(/ w=(\d{13})\b/g)) latencies.push(appendedMs - Number(match[1]));
    },
    120_000,
  );
  if (latencies.length !== lines)
    throw new Error(`${topic}: ${latencies.length} written times, ${lines} lines`);
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), max: latencies.at(-1) ?? NaN };
}

/** Runs a command under GNU time, waits for the topic to hold `lines` records, stops it, returns the figures. */
async function measure(
  command: string[],
  done: (since: number, cpu: () => number) => Promise<number>,
  exitsByItself: boolean,
  env: Record<string, string> = {},
): Promise<Measured> {
  const timeFile = join(root, `time-${Date.now()}.txt`);
  const began = performance.now();
  const child = spawn("/usr/bin/time", underTime(timeFile, command), {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env, LIFELINE_LOG_LEVEL: "warn" },
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  let exitCode: number | null = null;
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code) => {
      exitCode = code;
      resolve();
    }),
  );
  let seconds: number;
  let cpu: () => number = () => NaN;
  let peakAnonMiB = 0;
  let sampler: NodeJS.Timeout | undefined;
  try {
    const pid = await measuredPid(child.pid ?? 0);
    cpu = () => cpuSeconds(pid);
    const sample = () => {
      try {
        peakAnonMiB = Math.max(peakAnonMiB, anonRssMiB(pid));
      } catch {} // exited
    };
    sampler = setInterval(sample, 100);
    const failedEarly = exited.then(() => {
      if (exitCode !== 0 || !exitsByItself) throw new Error(`${command[0]} exited with ${exitCode}`);
      return new Promise<never>(() => {});
    });
    seconds = await Promise.race([done(began, cpu), failedEarly]);
  } catch (error) {
    clearInterval(sampler);
    // time's child first: killing time alone would leave the measured process running into the next one.
    spawnSync("pkill", ["-KILL", "-P", String(child.pid)]);
    child.kill("SIGKILL");
    throw new Error(`${(error as Error).message}\n${stderr.slice(-2000)}`);
  }
  if (!exitsByItself) {
    // GNU time forwards nothing; signal the measured process (time's only child).
    spawn("pkill", ["-TERM", "-P", String(child.pid)]);
  }
  await exited;
  clearInterval(sampler);
  const measured = timeMeasured(timeFile);
  return { seconds, ...measured, peakAnonMiB };
}

/** Polls the shipper's /metrics until Kafka acknowledged `lines` records; seconds since `since`. */
async function waitForAckedRecords(port: number, lines: number, since: number): Promise<number> {
  for (;;) {
    const text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
      (r) => r.text(),
      () => "",
    );
    const acked = Number(/^lifeline_shipper_records_acked_total (\d+)/m.exec(text)?.[1] ?? 0);
    if (acked >= lines) return (performance.now() - since) / 1000;
    if (performance.now() - since > 600_000) throw new Error(`shipper: ${acked} of ${lines} acknowledged`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Polls the shipper's /health until it answers 200 (files found, Kafka reachable). */
async function waitForHealthy(port: number, since: number): Promise<void> {
  for (;;) {
    const status = await fetch(`http://127.0.0.1:${port}/health`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (performance.now() - since > 120_000)
      throw new Error(`shipper not healthy after 120 s (last: ${status})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A baseline that has not delivered every line by then has lost some: reported, and the run goes on. */
const BASELINE_TIMEOUT_MS = 120_000;

async function baseline(
  scenario: string,
  name: string,
  run: () => Promise<Measured>,
): Promise<Measured | undefined> {
  try {
    const measured = await run();
    console.error(`${scenario}: ${name} ${measured.seconds.toFixed(1)} s`);
    return measured;
  } catch (error) {
    console.error(`${scenario}: ${name} failed, no row: ${(error as Error).message}`);
    return undefined;
  }
}

async function main() {
  if (!process.env.LIFELINE_KAFKA_BROKERS) {
    await servicesUp(localServicesSettings(), process.env, (m) => process.stderr.write(`[services] ${m}\n`));
  }
  const kafkaSettings = resolveKafka();
  const broker = kafkaSettings.brokers[0] as string;
  const kafka = createKafka({ ...kafkaSettings, clientId: "bench" });
  // BENCH_BASELINES=none: Lifeline alone (to compare two of its builds in alternating runs).
  const withBaselines = process.env.BENCH_BASELINES !== "none";
  const haveKcat = withBaselines && existsSync("/usr/bin/kcat");
  const haveRsyslog =
    withBaselines &&
    existsSync("/usr/sbin/rsyslogd") &&
    existsSync("/usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so");
  if (withBaselines && (!haveKcat || !haveRsyslog))
    console.error("baselines need: apt-get install kcat rsyslog-kafka");
  // The shipper as it is meant to run (core/entry.ts): compiled, small young generation.
  execFileSync(process.execPath, [fileURLToPath(new URL("../bin/build.ts", import.meta.url))], {
    stdio: "inherit",
  });
  const launcher = shipperLauncher();
  const run = Date.now().toString(36);
  const rows: BenchRow[] = [];
  const scenarios: Array<{
    name: string;
    files: number;
    perFile: number;
    /** Files start empty and are written while tailed, `perTick` lines each per 100 ms. */
    live?: { perTick: number; ticks: number };
    baselines: Array<"kcat" | "rsyslog">;
  }> = [
    { name: "1 file", files: 1, perFile: LINES, baselines: ["kcat", "rsyslog"] },
    { name: "100 files", files: 100, perFile: Math.round(LINES / 100), baselines: ["kcat", "rsyslog"] },
    { name: "1000 files", files: 1_000, perFile: Math.round(LINES / 1_000), baselines: [] },
    // 20,000 lines/s for 60 s (the steady window is the last 40); kcat reads no growing files.
    {
      name: "1000 files, live",
      files: 1_000,
      perFile: 0,
      live: { perTick: 2, ticks: 600 },
      baselines: ["rsyslog"],
    },
    // What a real host looks like: 50 files, 2,000 lines/s together, for 60 s.
    {
      name: "50 files, live",
      files: 50,
      perFile: 0,
      live: { perTick: 4, ticks: 600 },
      baselines: ["rsyslog"],
    },
  ];

  // BENCH_LIVE=<files>:<lines per file per 100 ms>[:<ticks>]: one more live scenario, to tell a cost per read (a
  // change noticed and read) from a cost per line: 1000:2 and 100:20 write the same lines with ten times the reads.
  const custom = process.env.BENCH_LIVE?.split(":").map(Number);
  if (custom) {
    const [files = 1, perTick = 1, ticks = 600] = custom;
    scenarios.push({
      name: `${files} files, live, ${perTick} per 100 ms`,
      files,
      perFile: 0,
      live: { perTick, ticks },
      baselines: ["rsyslog"],
    });
  }

  // BENCH_CPU_PROF=<dir>: the shipper writes a V8 CPU profile there per scenario (open in Chrome's DevTools).
  // BENCH_NODE_ARGS: more node options for the shipper (--perf-basic-prof for perf, say).
  const profile = [
    ...(process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
    ...(process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
  ];
  const only = process.env.BENCH_SCENARIOS?.split(";").map((name) => name.trim());
  for (const scenario of scenarios) {
    if (only && !only.includes(scenario.name)) continue;
    const dir = join(root, scenario.name.replace(/\W+/g, "-"));
    let bytes = writeFiles(dir, scenario.files, scenario.perFile);
    const files = Array.from({ length: scenario.files }, (_, f) => join(dir, `app-${f}.log`));
    const { live } = scenario;
    const lines = scenario.files * (live ? live.perTick * live.ticks : scenario.perFile);
    const row = (system: string, m: Measured) => benchRow(scenario.name, lines, bytes, system, m);
    /** The live scenario's writing, once the system under test runs; nothing for the others. */
    let steady: Measured["steady"];
    const feed = async (cpu: () => number) => {
      if (!live) return;
      ({ bytes, steady } = await writeSteadily(files, live.perTick, live.ticks, cpu));
    };
    const key = scenario.name.replace(/\W+/g, "-");

    // Lifeline shipper.
    const prefix = `bench-${run}-${key}`;
    const topic = topicNames(prefix).logs;
    await ensureTopics(
      kafka,
      [topic, topicNames(prefix).lifecycle, topicNames(prefix).deadLetter],
      undefined,
      undefined,
      APPEND_TIME,
    );
    const configFile = join(root, `shipper-${key}.yaml`);
    const port = 19_466 + scenarios.indexOf(scenario);
    rmSync(join(root, `state-${key}`), { recursive: true, force: true });
    writeFileSync(
      configFile,
      stringify({
        host: { name: "bench" },
        checkpointDir: join(root, `state-${key}`),
        topicPrefix: prefix,
        inputs: [{ name: "bench", paths: [join(dir, "*.log")], service: { name: "bench" } }],
        http: { port },
        recordFormat: RECORD_FORMAT,
        // BENCH_COMPRESSION=none|gzip|zstd: the shipper's `compression` (its default, zstd, otherwise).
        ...(process.env.BENCH_COMPRESSION ? { compression: process.env.BENCH_COMPRESSION } : {}),
        // BENCH_SHIPPER_LIMITS='{"producers":1}': settings of the shipper's `limits`, to measure one against another.
        ...(process.env.BENCH_SHIPPER_LIMITS ? { limits: JSON.parse(process.env.BENCH_SHIPPER_LIMITS) } : {}),
      }),
    );
    // Lines travel packed (several per Kafka message): count acknowledged records from the shipper's metrics.
    const lifeline = await measure(
      [process.execPath, ...launcher.nodeArgs, ...profile, launcher.entry, "shipper", "--config", configFile],
      async (since, cpu) => {
        // Lines written before the shipper has found its files and reached Kafka would time its start, not its
        // tailing: the live feed begins once it reports healthy.
        if (live) await waitForHealthy(port, since);
        await feed(cpu);
        return waitForAckedRecords(port, lines, since);
      },
      false,
      launcher.env,
    );
    lifeline.steady = steady;
    if (live) lifeline.latency = await appendLatency(kafka, topic, lines).catch(reportLatencyError);
    rows.push(
      row(
        `lifeline shipper (${[
          ...(launcher.compiled ? ["compiled"] : []),
          ...launcher.nodeArgs,
          ...Object.entries(launcher.env ?? {}).map(([name, value]) => `${name}=${value}`),
          ...(RECORD_FORMAT === "single" ? ["recordFormat single"] : []),
          ...(process.env.BENCH_COMPRESSION ? [`compression ${process.env.BENCH_COMPRESSION}`] : []),
          ...(process.env.BENCH_SHIPPER_LIMITS ? [`limits ${process.env.BENCH_SHIPPER_LIMITS}`] : []),
        ].join(", ")})`,
        lifeline,
      ),
    );
    console.error(`${scenario.name}: lifeline ${lifeline.seconds.toFixed(1)} s`);
    if (haveKcat && scenario.baselines.includes("kcat")) {
      const kcatTopic = `bench-${run}-kcat-${key}`;
      await ensureTopics(kafka, [kcatTopic]);
      // kcat's -l takes one file; it reads standard input line by line just the same.
      const kcatCommand = `cat ${files.join(" ")} | kcat -P -b ${broker} -t ${kcatTopic} -z gzip -X acks=all -X enable.idempotence=true`;
      const kcat = await baseline(scenario.name, "kcat", () =>
        measure(
          ["bash", "-c", kcatCommand],
          (since) => waitForRecords(kafka, kcatTopic, lines, since, BASELINE_TIMEOUT_MS),
          true,
        ),
      );
      if (kcat) rows.push(row("kcat (raw ceiling)", kcat));
    }

    if (haveRsyslog && scenario.baselines.includes("rsyslog")) {
      const rsyslogTopic = `bench-${run}-rsyslog-${key}`;
      await ensureTopics(kafka, [rsyslogTopic], undefined, undefined, APPEND_TIME);
      const work = join(root, `rsyslog-${key}`);
      rmSync(work, { recursive: true, force: true });
      mkdirSync(work, { recursive: true });
      const conf = join(work, "rsyslog.conf");
      // resubmitOnFailure: by default omkafka drops a message librdkafka's full queue refuses ("Local: Queue full";
      // 6 of 1,000,000 lines lost with 100 files on 6 December); a baseline that loses lines is not one.
      writeFileSync(
        conf,
        `global(workDirectory="${work}")
module(load="imfile" mode="inotify")
module(load="omkafka")
template(name="raw" type="string" string="%msg%")
ruleset(name="tokafka") {
  action(type="omkafka" broker=["${broker}"] topic="${rsyslogTopic}" template="raw" resubmitOnFailure="on"
         confParam=["compression.codec=gzip", "acks=all", "enable.idempotence=true"])
}
input(type="imfile" File="${dir}/*.log" Tag="bench" ruleset="tokafka" freshStartTail="off")
input(type="imfile" File="${work}/ready.txt" Tag="ready" ruleset="tokafka" freshStartTail="off")
`,
      );
      // Fresh empty files again, made before rsyslog starts (the shipper's run wrote the live ones).
      if (live) writeFiles(dir, scenario.files, 0);
      // rsyslog says nothing when it is ready: a one-line file its config also reads is in Kafka once it is.
      writeFileSync(join(work, "ready.txt"), "ready\n");
      const rsyslog = await baseline(scenario.name, "rsyslog", () =>
        measure(
          ["/usr/sbin/rsyslogd", "-n", "-f", conf, "-i", join(work, "rsyslog.pid")],
          async (since, cpu) => {
            if (live) await waitForRecords(kafka, rsyslogTopic, 1, since, BASELINE_TIMEOUT_MS);
            steady = undefined;
            await feed(cpu);
            return waitForRecords(kafka, rsyslogTopic, lines + 1, since, BASELINE_TIMEOUT_MS);
          },
          false,
        ),
      );
      if (rsyslog) rsyslog.steady = steady;
      if (rsyslog && live)
        rsyslog.latency = await appendLatency(kafka, rsyslogTopic, lines).catch(reportLatencyError);
      if (rsyslog) rows.push(row("rsyslog imfile+omkafka", rsyslog));
    }
  }
  printTable(rows);
  if (only) return;
  const file = writeResults("shipper", rows, {
    linesPerScenario: LINES,
    lineBytes: logLine(123456, 7).length,
  });
  console.error(`results: ${file}`);
}

await main();
