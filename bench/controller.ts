/**
 * Controller: (1) plan + dispatch for 10,000 simulated hosts — the real `lifeline rollout` (presence read, plan,
 * every command signed, sent and followed to its outcome), answered by a simulated fleet that verifies each
 * signature as an agent does; wall time, CPU and peak RSS of the controller. (2) Fan-out to 100 simulated agents,
 * each its own consumer group like a real agent, one command each, until every outcome is back. Baseline in the
 * same run for both: kafkajs alone doing the same round trips (one send per command, answered by the same
 * simulated fleet without signatures), no plan, no events, no spans.
 * (3) A simulated fleet of 100,000 hosts, the same way as (1), with the control records its agents read.
 *   npm run bench:controller        (BENCH_HOSTS=10000, BENCH_AGENTS=100, BENCH_FLEET=100000; BENCH_NODE_ARGS and
 *                                    BENCH_SOURCE for the controller, as for bench:indexer)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { generateSigningKeys } from "../core/commands.ts";
import { resolveKafka } from "../core/connections.ts";
import { controllerLauncher } from "../core/entry.ts";
import { createKafka } from "../core/kafka/client.ts";
import { ensureTopics } from "../core/kafka/topics.ts";
import { topicNames } from "../core/topics.ts";
import { servicesUp } from "../local-services/manager.ts";
import { localServicesSettings } from "../local-services/settings.ts";
import { createdAt } from "../test/helpers/leftovers.ts";
import { uniqueName } from "../test/helpers/services.ts";
import {
  type BenchRow,
  benchLauncher,
  cpuSeconds,
  kafkaQuiet,
  printTable,
  removeTopicsAndGroups,
  serverCpu,
  serverCpuColumns,
  timeMeasured,
  underTime,
  writeResults,
} from "./lib.ts";

const HOSTS = Number(process.env.BENCH_HOSTS ?? 10_000);
const AGENTS = Number(process.env.BENCH_AGENTS ?? 100);
/** The simulated fleet's size (0: skip it). */
const FLEET = Number(process.env.BENCH_FLEET ?? 100_000);
/** Above this many hosts the kafkajs baseline is not run (it takes as long again). */
const BASELINE_MAX = Number(process.env.BENCH_BASELINE_MAX ?? 10_000);
/** The control topic sized to the fleet, as controller/README.md advises: about 100 hosts per partition. */
const controlPartitionsFor = (hosts: number) => Math.min(1_000, Math.max(6, Math.ceil(hosts / 100)));
/**
 * The controller as an installed `lifeline rollout` runs (core/entry.ts controllerLauncher: compiled, with the
 * flags it relaunches itself with), or as BENCH_NODE_ARGS (flags instead of those, e.g. "--cpu-prof
 * --cpu-prof-dir=/tmp/prof") and BENCH_SOURCE=1 (the TypeScript entry) say.
 */
const launcher = benchLauncher(controllerLauncher);
const simulator = fileURLToPath(new URL("./simulated-agents.ts", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "bench-controller-"));
const keys = generateSigningKeys();
writeFileSync(join(dir, "controller.key"), keys.privateKeyPem);
writeFileSync(join(dir, "controller.pub"), keys.publicKeyPem);

interface Fleet {
  child: ChildProcess;
  output: string;
}

async function startFleet(prefix: string, hosts: number, mode: string): Promise<Fleet> {
  const child = spawn(process.execPath, [simulator], {
    env: {
      ...process.env,
      SIM_PREFIX: prefix,
      SIM_HOSTS: String(hosts),
      SIM_MODE: mode,
      SIM_PUBLIC_KEY: join(dir, "controller.pub"),
      LIFELINE_LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const fleet: Fleet = { child, output: "" };
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      fleet.output += chunk.toString();
      if (fleet.output.includes("ready")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`simulated fleet exited (${code})`)));
  });
  return fleet;
}

/** Stops the fleet: the control records its agents read (partitioned and per-host modes), commands it answered. */
async function stopFleet(fleet: Fleet): Promise<{ read?: number; answered?: number }> {
  const exited = new Promise((resolve) => fleet.child.once("exit", resolve));
  fleet.child.kill("SIGTERM");
  await exited;
  const count = (name: string) => {
    const found = new RegExp(`${name} (\\d+)`).exec(fleet.output)?.[1];
    return found === undefined ? undefined : Number(found);
  };
  return { read: count("records-read"), answered: count("answered") };
}

/** The real CLI under GNU time: wall seconds, CPU seconds, peak RSS. */
async function rollout(prefix: string, hosts: number, label: string, fleet: Fleet): Promise<BenchRow> {
  const plan = join(dir, `${prefix}.plan.yaml`);
  writeFileSync(
    plan,
    stringify({
      name: "bench",
      action: "restart",
      targets: { groups: ["bench"] },
      services: [{ name: "app" }],
      waves: { batchSize: "100%", maxInFlight: hosts },
      deadlines: { deliveryMs: 120_000, executionMs: 300_000 },
    }),
  );
  const timeFile = join(dir, `${prefix}.time`);
  const fleetCpu = () => (fleet.child.pid ? cpuSeconds(fleet.child.pid) : Number.NaN);
  const fleetBefore = fleetCpu();
  const servers = serverCpu();
  const began = performance.now();
  const child = spawn(
    "/usr/bin/time",
    underTime(timeFile, [
      process.execPath,
      ...launcher.nodeArgs,
      launcher.entry,
      "rollout",
      "--plan",
      plan,
      "--key",
      join(dir, "controller.key"),
      "--key-id",
      "bench",
      "--json",
      "--presence-window-ms",
      "600000",
    ]),
    {
      // Exactly what the row names runs: no relaunch with the controller's own flags on top of BENCH_NODE_ARGS.
      env: {
        ...process.env,
        ...launcher.env,
        LIFELINE_RELAUNCH: "0",
        LIFELINE_TOPIC_PREFIX: prefix,
        LIFELINE_LOG_LEVEL: process.env.BENCH_CONTROLLER_LOG_LEVEL ?? "warn",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  const seconds = (performance.now() - began) / 1000;
  const fleetSeconds = fleetCpu() - fleetBefore;
  const { "kafka cpu s": kafkaSeconds } = serverCpuColumns(servers);
  writeFileSync(join(dir, `${prefix}.controller.log`), stderr);
  const result = JSON.parse(stdout || "{}") as {
    status?: string;
    steps?: Array<{ status: string; commandId: string; host: string }>;
  };
  const succeeded = result.steps?.filter((s) => s.status === "success").length ?? 0;
  // A rollout that ran but did not succeed everywhere is a result to report (which steps, and why), not a crash.
  if (result.steps === undefined) throw new Error(`${label}: exit ${code}\n${stderr.slice(-2000)}`);
  const others = result.steps.filter((s) => s.status !== "success");
  if (others.length > 0) {
    process.stderr.write(
      `${label}: ${others.length} of ${hosts} steps did not succeed: ${JSON.stringify(others.slice(0, 5))}\n` +
        `  controller log: ${join(dir, `${prefix}.controller.log`)}\n`,
    );
    await whereWasIt(prefix, others.slice(0, 5));
  }
  const measured = timeMeasured(timeFile);
  return {
    scenario: label,
    system: `lifeline rollout (CLI: presence, plan, sign, send, follow; ${launcher.how})`,
    commands: hosts,
    succeeded,
    seconds,
    "commands/s": Math.round(hosts / seconds),
    "cpu s": measured.cpuSeconds,
    "peak RSS MiB": measured.peakRssMiB,
    // On two shared cores the wall time is at least the three processes' CPU over two: these say which one.
    "fleet cpu s": Math.round(fleetSeconds * 100) / 100,
    "kafka cpu s": kafkaSeconds ?? Number.NaN,
  };
}

/**
 * For steps that did not succeed: was the command on the control topic, and did an answer reach the lifecycle
 * topic? Tells a fleet that never answered from a controller that missed an answer (a false failure).
 */
async function whereWasIt(prefix: string, steps: Array<{ commandId: string; host: string }>): Promise<void> {
  const kafka = createKafka({ ...resolveKafka(), clientId: "bench-controller-trace" });
  const reader = kafka.partitionReader();
  try {
    for (const topic of [topicNames(prefix).control, topicNames(prefix).lifecycle]) {
      const found = new Map<string, string[]>();
      const partitions = await reader.partitions(topic);
      for (let partition = 0; partition < partitions; partition++) {
        let offset = await reader.offset(topic, partition, "earliest");
        const end = BigInt(await reader.offset(topic, partition, "latest"));
        while (BigInt(offset) < end) {
          const { messages } = await reader.fetch({ topic, partition, offset, maxWaitMs: 100 });
          if (messages.length === 0) break;
          for (const message of messages) {
            const text = String(message.value);
            for (const step of steps)
              if (text.includes(step.commandId)) {
                const action = /"action":"([^"]+)"/.exec(text)?.[1] ?? "command";
                found.set(step.commandId, [
                  ...(found.get(step.commandId) ?? []),
                  `${action} at ${partition}/${message.offset} (${new Date(Number(message.timestamp)).toISOString()})`,
                ]);
              }
          }
          offset = String(BigInt(messages.at(-1)?.offset ?? offset) + 1n);
        }
      }
      for (const step of steps)
        process.stderr.write(
          `  ${step.host} ${step.commandId} in ${topic}: ${found.get(step.commandId)?.join("; ") ?? "absent"}\n`,
        );
    }
  } finally {
    await reader.close();
  }
}

/** kafkajs alone: one send per command (all at once), answered by the same fleet in raw mode, replies counted. */
async function baseline(prefix: string, hosts: number, label: string): Promise<BenchRow> {
  const kafka = createKafka({ ...resolveKafka(), clientId: "bench-baseline" });
  const consumer = kafka.consumer({ groupId: `${prefix}-replies` });
  await consumer.connect();
  await consumer.subscribe({ topic: `${prefix}.replies`, fromBeginning: false });
  let replies = 0;
  let allIn: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    allIn = resolve;
  });
  const fetched = consumer.firstFetch();
  await consumer.run({
    eachBatch: async ({ batch }) => {
      replies += batch.messages.length;
      if (replies >= hosts) allIn();
    },
  });
  await fetched;
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const payload = "x".repeat(400);
  const began = performance.now();
  await Promise.all(
    Array.from({ length: hosts }, (_, i) => {
      const host = `host-${String(i).padStart(5, "0")}`;
      return producer.send({
        topic: topicNames(prefix).control,
        acks: -1,
        messages: [
          {
            key: `${host}/app`,
            value: JSON.stringify({
              command: { id: String(i), service: "app", target: { hosts: [host] }, payload },
            }),
          },
        ],
      });
    }),
  );
  await done;
  const seconds = (performance.now() - began) / 1000;
  await producer.disconnect();
  await consumer.disconnect();
  return {
    scenario: label,
    system: "kafkajs alone (send, answer, count)",
    commands: hosts,
    seconds,
    "commands/s": Math.round(hosts / seconds),
  };
}

async function main() {
  if (!process.env.LIFELINE_KAFKA_BROKERS) await servicesUp(localServicesSettings(), process.env, () => {});
  const kafka = createKafka({ ...resolveKafka(), clientId: "bench-controller" });
  // Runs that crashed before cleaning up left their topics (up to 1,000 partitions each) and per-host groups.
  const began = Date.now();
  const stale = await removeTopicsAndGroups(
    kafka,
    (name) => name.startsWith("bench-controller") && (createdAt(name) ?? began) < began,
  );
  if (stale.topics + stale.groups > 0)
    process.stderr.write(`removed what earlier runs left: ${stale.topics} topics, ${stale.groups} groups\n`);
  const rows: BenchRow[] = [];
  const used: string[] = [];
  // A size of 0 skips its scenario.
  const scenarios = (
    [
      [HOSTS, "partitioned", `plan + dispatch, ${HOSTS} hosts`],
      [AGENTS, "per-host", `fan-out to ${AGENTS} agents`],
      [FLEET, "partitioned", `simulated fleet, ${FLEET} hosts`],
    ] as Array<[number, string, string]>
  ).filter(([hosts]) => hosts > 0);
  for (const [hosts, mode, label] of scenarios) {
    const prefix = uniqueName("bench-controller");
    const partitions = controlPartitionsFor(hosts);
    await ensureTopics(kafka, [topicNames(prefix).lifecycle, `${prefix}.replies`]);
    await ensureTopics(kafka, [topicNames(prefix).control], partitions);
    // Before the fleet starts: its readers' polls (1,000 of them at 100,000 hosts) keep Kafka busy from then on.
    const quiet = await kafkaQuiet();
    process.stderr.write(
      `${label}: ${quiet}; starting the simulated fleet (${mode}, ${partitions} control partitions)...\n`,
    );
    const fleet = await startFleet(prefix, hosts, mode);
    process.stderr.write(`${label}: lifeline rollout...\n`);
    const row = await rollout(prefix, hosts, label, fleet);
    const { read, answered } = await stopFleet(fleet);
    used.push(prefix);
    rows.push({
      ...row,
      "answered by the fleet": answered ?? 0,
      "control partitions": partitions,
      "records read by agents": read ?? 0,
      "if each read all": hosts * hosts,
    });
    if (hosts > BASELINE_MAX) continue;
    const rawPrefix = uniqueName("bench-controller-raw");
    await ensureTopics(kafka, [
      topicNames(rawPrefix).control,
      topicNames(rawPrefix).lifecycle,
      `${rawPrefix}.replies`,
    ]);
    const rawQuiet = await kafkaQuiet();
    const raw = await startFleet(rawPrefix, hosts, mode === "per-host" ? "raw-per-host" : "raw");
    process.stderr.write(`${label}: ${rawQuiet}; kafkajs baseline...\n`);
    rows.push(await baseline(rawPrefix, hosts, label));
    await stopFleet(raw);
    used.push(rawPrefix);
  }
  // Removed at the end, not between scenarios: Kafka removes the files a minute later, in the next one's window.
  await removeTopicsAndGroups(kafka, (name) => used.some((prefix) => name.startsWith(prefix)));
  printTable(rows);
  console.error(
    `results: ${writeResults("controller", rows, { hosts: HOSTS, agents: AGENTS, fleet: FLEET, simulated: true })}`,
  );
}

await main();
