/**
 * Indexer throughput into Elasticsearch against the ceiling on this machine: the same documents (made by the
 * indexer's own code from the same records, into a data stream under the same templates) sent as pre-built bulk
 * bodies straight to Elasticsearch. Then end-to-end
 * latency: a line appended to a file until it is searchable, through the real shipper, Kafka and indexer.
 *   npm run bench:indexer            (BENCH_DOCS=200000, BENCH_ROUNDS=3 by default; BENCH_INDEXER_CONFIG: JSON
 *                                    merged into the indexer's config, e.g. '{"fetch":{"partitionBytes":1048576}}';
 *                                    BENCH_NODE_ARGS: the indexer's Node flags, instead of the launcher's;
 *                                    BENCH_SOURCE=1: the TypeScript entry; BENCH_NO_ENV=1: without the launcher's
 *                                    malloc settings)
 * The indexer runs as its container runs it (core/entry.ts indexerLauncher: compiled, malloc settings).
 */
import { spawn } from "node:child_process";
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Client } from "@elastic/elasticsearch";
import { stringify } from "yaml";
import { resolveElastic, resolveKafka } from "../core/connections.ts";
import { createElastic } from "../core/elastic/client.ts";
import { indexerLauncher } from "../core/entry.ts";
import { createKafka } from "../core/kafka/client.ts";
import type { KafkaPort as Kafka } from "../core/kafka/port.ts";
import { ensureTopics } from "../core/kafka/topics.ts";
import { topicNames } from "../core/topics.ts";
import { servicesUp } from "../local-services/manager.ts";
import { localServicesSettings } from "../local-services/settings.ts";
import { countDocuments, produceLogRecords, startLifeline } from "../test/helpers/indexer.ts";
import {
  type BenchRow,
  benchLauncher,
  printTable,
  serverCpu,
  serverCpuColumns,
  timeMeasured,
  topicEnds,
  underTime,
  writeResults,
} from "./lib.ts";

const DOCS = Number(process.env.BENCH_DOCS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Settings for the indexer under test (tuning runs), shown in its row. */
const INDEXER_CONFIG = JSON.parse(process.env.BENCH_INDEXER_CONFIG ?? "{}") as Record<string, unknown>;
const root = "/tmp/lifeline-bench-indexer";
const ceilingScript = fileURLToPath(new URL("./indexer-ceiling.ts", import.meta.url));

/** The indexer as deployed, or as BENCH_NODE_ARGS / BENCH_SOURCE / BENCH_NO_ENV say. */
let indexerRun: ReturnType<typeof benchLauncher>;

async function main() {
  indexerRun = benchLauncher(indexerLauncher);
  if (!process.env.LIFELINE_KAFKA_BROKERS) {
    await servicesUp(localServicesSettings(), process.env, (m) => process.stderr.write(`[services] ${m}\n`));
  }
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const kafka = createKafka({ ...resolveKafka(), clientId: "bench" });
  const elastic = createElastic(resolveElastic());
  const run = Date.now().toString(36);
  const rows: BenchRow[] = [];

  // The same documents for both: produced to Kafka (as the shipper packs them) and kept as bulk bodies.
  const prefix = `bench-${run}`;
  await ensureTopics(kafka, [
    topicNames(prefix).logs,
    topicNames(prefix).lifecycle,
    topicNames(prefix).spans,
    topicNames(prefix).deadLetter,
  ]);
  await produceLogRecords(kafka, topicNames(prefix).logs, DOCS);

  // Alternating rounds (ceiling, then indexer, each into fresh data streams): on two shared cores one pair of
  // figures varies by a third from run to run; each round's indexer is compared with its own ceiling.
  for (let round = 0; round < ROUNDS; round++) {
    const ceiling = await measureCeiling(prefix, run, round);
    const ceilingSeconds = ceiling.seconds as number;
    // Each system runs on a node without the other's fresh index (its merges would run meanwhile).
    await closeIndices(elastic, `bench_ceiling_${run}_${round}`);
    rows.push(ceiling);
    rows.push(await measureIndexer(kafka, elastic, prefix, run, round, ceilingSeconds));
    await closeIndices(elastic, `bench_${run}_${round}`);
  }

  // End-to-end: a line appended to a file until it is searchable (shipper → Kafka → indexer → refresh).
  const latency = await endToEndLatency(run);
  rows.push({
    scenario: "line → searchable",
    system: "shipper + indexer",
    "p50 ms": latency.p50,
    "p99 ms": latency.p99,
    lines: latency.lines,
  });

  await closeIndices(elastic, `e2e_${run}`);

  printTable(rows);
  console.error(
    `results: ${writeResults("indexer", rows, { docs: DOCS, refreshInterval: "1s (Elasticsearch default)" })}`,
  );
  await elastic.close();
}

/**
 * Closes what a round wrote (the integration-test Elasticsearch cannot delete a data stream): the next round, and
 * the next run, find the node as the first round did. Hundreds of open leftover shards slowed it by a third.
 */
async function closeIndices(elastic: Client, namespace: string): Promise<void> {
  const indices = Object.keys(
    await elastic.indices.get({ index: `*${namespace}*`, expand_wildcards: ["open", "hidden"] }),
  );
  if (indices.length > 0) await elastic.indices.close({ index: indices });
}

async function endToEndLatency(run: string) {
  const prefix = `bench-e2e-${run}`;
  const namespace = `e2e_${run}`;
  const logs = join(root, "e2e");
  mkdirSync(logs, { recursive: true });
  const file = join(logs, "app.log");
  writeFileSync(file, "");
  writeFileSync(
    join(root, "shipper.yaml"),
    stringify({
      checkpointDir: join(root, "shipper-state"),
      topicPrefix: prefix,
      limits: { lingerMs: 5 },
      inputs: [{ name: "e2e", paths: [file] }],
    }),
  );
  writeFileSync(
    join(root, "e2e-indexer.yaml"),
    stringify({ topicPrefix: prefix, groupId: `e2e-${run}`, namespace, indices: { replicas: 0 } }),
  );
  const env = { ...process.env, LIFELINE_LOG_LEVEL: "warn" };
  const shipper = startLifeline(["shipper", "--config", join(root, "shipper.yaml")], "shipper started", {
    ...env,
    LIFELINE_LOG_LEVEL: "info",
  });
  const indexer = startLifeline(["indexer", "--config", join(root, "e2e-indexer.yaml")], "indexer started", {
    ...env,
    LIFELINE_LOG_LEVEL: "info",
  });
  await Promise.all([shipper.started, indexer.started]);
  const elastic = createElastic(resolveElastic());
  const target = `logs-lifeline.logs-${namespace}`;
  const lines = 300;
  const writtenAt: number[] = [];
  const visibleAt: number[] = [];
  const writer = (async () => {
    for (let i = 0; i < lines; i++) {
      writtenAt.push(performance.now());
      appendFileSync(file, `seq=${i} latency probe\n`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  while (visibleAt.length < lines) {
    // No refresh here: "searchable" means after Elasticsearch's own refresh, as a user would see it.
    const count = await elastic
      .count({ index: target, ignore_unavailable: true, allow_no_indices: true })
      .then(
        (r) => r.count,
        () => 0,
      );
    const now = performance.now();
    while (visibleAt.length < Math.min(count, writtenAt.length)) visibleAt.push(now);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await writer;
  await shipper.stop();
  await indexer.stop();
  await elastic.close();
  const latencies = visibleAt.map((t, i) => t - (writtenAt[i] as number)).sort((a, b) => a - b);
  const pick = (q: number) =>
    Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] as number);
  return { p50: pick(0.5), p99: pick(0.99), lines };
}

/**
 * The ceiling in a process of its own (bench/indexer-ceiling.ts) under GNU time, measured as the indexer is: its
 * seconds from the first request, CPU and peak RSS (it holds every pre-built body).
 */
async function measureCeiling(prefix: string, run: string, round: number): Promise<BenchRow> {
  const timeFile = join(root, "ceiling-time.txt");
  const child = spawn(
    "/usr/bin/time",
    underTime(timeFile, [process.execPath, ceilingScript, prefix, run, String(round), String(DOCS)]),
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let output = "";
  // Its bodies built, the ceiling prints a first line as its clock starts: the servers' CPU is read from there.
  let servers: { elastic: number; kafka: number } | undefined;
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
    if (!servers && output.includes("\n")) servers = serverCpu();
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0 || !servers) throw new Error(`the ceiling exited ${code}: ${output}`);
  const serverColumns = serverCpuColumns(servers);
  const { seconds } = JSON.parse(output.trimEnd().split("\n").pop() as string) as { seconds: number };
  const measured = timeMeasured(timeFile);
  return {
    scenario: `${DOCS} docs, round ${round + 1}`,
    system: "pre-built bulk (ceiling)",
    "docs/s": Math.round(DOCS / seconds),
    seconds,
    "cpu s": measured.cpuSeconds,
    "peak RSS MiB": measured.peakRssMiB,
    ...serverColumns,
  };
}

/** The Lifeline indexer from Kafka, under GNU time for its CPU and memory. */
async function measureIndexer(
  kafka: Kafka,
  elastic: Client,
  prefix: string,
  run: string,
  round: number,
  ceilingSeconds: number,
): Promise<BenchRow> {
  const namespace = `bench_${run}_${round}`;
  const config = join(root, "indexer.yaml");
  writeFileSync(
    config,
    stringify({
      topicPrefix: prefix,
      groupId: `bench-${run}-${round}`,
      namespace,
      indices: { replicas: 0 },
      ...INDEXER_CONFIG,
    }),
  );
  const timeFile = join(root, "time.txt");
  const start = performance.now();
  const indexer = spawn(
    "/usr/bin/time",
    underTime(timeFile, [
      process.execPath,
      ...indexerRun.nodeArgs,
      indexerRun.entry,
      "indexer",
      "--config",
      config,
    ]),
    {
      stdio: ["ignore", "pipe", "ignore"],
      env: { ...process.env, ...indexerRun.env, LIFELINE_LOG_LEVEL: "debug" },
    },
  );
  // Startup (templates, joining the group and getting its partitions) is reported apart. Then, as for the ceiling
  // (bulk acknowledgements, one refresh): until the indexer has committed every record (it commits only what
  // Elasticsearch acknowledged), one refresh. Its own debug line for each commit says so: nothing polls Kafka or
  // Elasticsearch meanwhile. Polling the group's offsets every 20 ms cost Kafka 1.2 CPU s in 4 s, taken from
  // Elasticsearch on two cores in the indexer's rounds and not in the ceiling's.
  const topic = topicNames(prefix).logs;
  // Read once before the round: everything was produced before.
  const ends = new Map((await topicEnds(kafka, topic)).map((end) => [end.partition, end.high]));
  const committed = new Map<number, string>();
  let joined: () => void = () => {};
  let caughtUp: () => void = () => {};
  const joinedSeen = new Promise<void>((resolve) => {
    joined = resolve;
  });
  const caughtUpSeen = new Promise<void>((resolve) => {
    caughtUp = resolve;
  });
  let pending = "";
  indexer.stdout?.on("data", (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      if (line.includes('"msg":"joined the consumer group"')) joined();
      if (!line.includes('"msg":"offset committed"')) continue;
      const entry = JSON.parse(line) as { topic: string; partition: number; offset: string };
      if (entry.topic === topic) committed.set(entry.partition, entry.offset);
      if ([...ends].every(([partition, end]) => BigInt(committed.get(partition) ?? "0") >= BigInt(end)))
        caughtUp();
    }
  });
  await joinedSeen;
  const startedAt = performance.now();
  const servers = serverCpu();
  const exited = new Promise<never>((_, reject) =>
    indexer.once("exit", (code) => reject(new Error(`the indexer exited (${code}) before catching up`))),
  );
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the indexer did not commit every record of ${topic} in 600 s`)),
      600_000,
    );
  });
  await Promise.race([caughtUpSeen, exited, timedOut]).finally(() => clearTimeout(timer));
  const target = `logs-lifeline.logs-${namespace}`;
  await elastic.indices.refresh({ index: target });
  const seconds = (performance.now() - startedAt) / 1000;
  const serverColumns = serverCpuColumns(servers);
  const startupSeconds = (startedAt - start) / 1000;
  const indexed = await countDocuments(elastic, target);
  if (indexed !== DOCS) throw new Error(`${target}: ${indexed} documents, expected ${DOCS}`);
  spawn("pkill", ["-TERM", "-P", String(indexer.pid)]);
  await new Promise((resolve) => indexer.once("exit", resolve));
  const measured = timeMeasured(timeFile);
  return {
    scenario: `${DOCS} docs, round ${round + 1}`,
    system: `lifeline indexer (from Kafka, ${[
      indexerRun.how,
      ...(Object.keys(INDEXER_CONFIG).length > 0 ? [JSON.stringify(INDEXER_CONFIG)] : []),
    ].join(", ")})`,
    "docs/s": Math.round(DOCS / seconds),
    seconds,
    "startup s": startupSeconds,
    "% of ceiling": Math.round((ceilingSeconds / seconds) * 100),
    "cpu s": measured.cpuSeconds,
    "peak RSS MiB": measured.peakRssMiB,
    ...serverColumns,
  };
}

await main();
