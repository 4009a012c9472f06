/**
 * Agent: latency from a command delivered to Kafka until the stop signal is sent, against the floor of a bare
 * kafkajs consumer receiving the same kind of message in the same run; then the agent's idle RSS and CPU, with one
 * service and no supervision, and keeping 20 services running (watch every second, a liveness probe each, restart
 * policy on-failure, /health and /metrics on). Both
 * ways to run it: from the TypeScript sources, and as `agent install` runs it (compiled, lite mode; built first).
 *   npm run bench:agent        (BENCH_CYCLES=30)
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { resolveKafka } from "../core/connections.ts";
import { leanAgentLauncher } from "../core/entry.ts";
import { createKafka } from "../core/kafka/client.ts";
import type { KafkaProducer as Producer } from "../core/kafka/port.ts";
import { ensureTopics } from "../core/kafka/topics.ts";
import { topicNames } from "../core/topics.ts";
import { servicesUp } from "../local-services/manager.ts";
import { localServicesSettings } from "../local-services/settings.ts";
import {
  agentWorkspace,
  fixture,
  freePort,
  killWorkspaceServices,
  makeCommand,
  readJournal,
  signed,
  waitForJournal,
  writeAgentConfig,
} from "../test/helpers/agent.ts";
import { lifelineBin } from "../test/helpers/cli.ts";
import { startLifeline } from "../test/helpers/indexer.ts";
import { uniqueName } from "../test/helpers/services.ts";
import { type BenchRow, cpuSeconds, printTable, writeResults } from "./lib.ts";

const CYCLES = Number(process.env.BENCH_CYCLES ?? 30);
const SUPERVISED = 20;

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

async function main() {
  if (!process.env.LIFELINE_KAFKA_BROKERS) await servicesUp(localServicesSettings(), process.env, () => {});
  const kafka = createKafka({ ...resolveKafka(), clientId: "bench-agent" });
  const rows: BenchRow[] = [];

  // Floor: a bare consumer's delivery latency for the same message size, same broker, same run.
  const floorTopic = uniqueName("bench-floor");
  await ensureTopics(kafka, [floorTopic]);
  const consumer = kafka.consumer({
    groupId: uniqueName("bench-floor"),
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: floorTopic, fromBeginning: false });
  const received = new Map<string, number>();
  const fetched = consumer.firstFetch();
  await consumer.run({
    eachMessage: async ({ message }) => void received.set(String(message.key), Date.now()),
  });
  await fetched;
  const producer = kafka.producer();
  await producer.connect();
  const floor: number[] = [];
  for (let i = 0; i < CYCLES; i++) {
    const sentAt = Date.now();
    await producer.send({
      topic: floorTopic,
      acks: -1,
      messages: [{ key: String(i), value: "x".repeat(700) }],
    });
    while (!received.has(String(i))) await delay(1);
    floor.push((received.get(String(i)) as number) - sentAt);
  }
  await consumer.disconnect();
  rows.push({
    scenario: "delivered → received",
    system: "bare kafkajs consumer (floor)",
    "p50 ms": percentile(floor, 0.5),
    "p99 ms": percentile(floor, 0.99),
    samples: CYCLES,
  });

  execFileSync(process.execPath, [new URL("../bin/build.ts", import.meta.url).pathname], {
    stdio: "inherit",
  });
  const lean = leanAgentLauncher();
  if (!lean.compiled) throw new Error("npm run build made no compiled agent");
  const launchers = [
    { system: "lifeline agent (TypeScript sources)", launcher: { nodeArgs: [], entry: lifelineBin } },
    {
      system: `lifeline agent as installed (compiled, ${lean.nodeArgs.join(" ")})`,
      launcher: { nodeArgs: lean.nodeArgs, entry: lean.entry },
    },
  ];
  for (const { system, launcher } of launchers) {
    rows.push(...(await measureAgent(system, launcher, producer)));
    rows.push(await measureSupervising(system, launcher, producer));
  }
  await producer.disconnect();
  printTable(rows);
  console.error(`results: ${writeResults("agent", rows, { cycles: CYCLES })}`);
}

/** The agent with one real service, stopped and started CYCLES times; then idle. */
async function measureAgent(
  system: string,
  launcher: { nodeArgs: string[]; entry: string },
  producer: Producer,
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const ws = agentWorkspace("bench");
  const port = await freePort();
  const config = writeAgentConfig(ws, [
    {
      name: "api",
      command: [process.execPath, fixture("well-behaved.mjs")],
      env: { PORT: String(port) },
      port,
      gracePeriodMs: 5_000,
      health: { tcp: { port }, periodMs: 20 },
    },
  ]);
  const agent = startLifeline(["agent", "--config", config], "agent started", process.env, launcher);
  await agent.started;
  const topic = topicNames(ws.prefix).control;
  const latencies: number[] = [];
  const send = async (action: "start" | "stop") => {
    const command = makeCommand(ws, action, "api");
    const sentAt = Date.now();
    await producer.send({
      topic,
      acks: -1,
      messages: [{ key: "api", value: JSON.stringify(signed(ws, command)) }],
    });
    const events = await waitForJournal(
      ws.journal,
      (e) => e.some((x) => x.lifeline.command_id === command.id && x.event.action === "command.completed"),
      30_000,
    );
    return { events: events.filter((e) => e.lifeline.command_id === command.id), sentAt };
  };
  for (let i = 0; i < CYCLES; i++) {
    await send("start");
    const { events, sentAt } = await send("stop");
    const signal = events.find((e) => e.event.action === "stop.signal_sent");
    if (signal) latencies.push(Date.parse(signal["@timestamp"]) - sentAt);
  }
  rows.push({
    scenario: "delivered → stop signal sent",
    system,
    "p50 ms": percentile(latencies, 0.5),
    "p99 ms": percentile(latencies, 0.99),
    samples: latencies.length,
  });

  // Idle: nothing to do but heartbeats and the consumer's fetch loop.
  const pid = agent.process.pid as number;
  const idleSeconds = 20;
  const cpuBefore = cpuSeconds(pid);
  await delay(idleSeconds * 1000);
  const idleCpu = ((cpuSeconds(pid) - cpuBefore) / idleSeconds) * 100;
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
  rows.push({
    scenario: "idle",
    system,
    "RSS MiB": rss,
    "CPU % of a core": idleCpu,
    samples: idleSeconds,
  });
  await agent.stop();
  killWorkspaceServices();
  return rows;
}

/** Idle while keeping SUPERVISED services running: the watch, the liveness probes and the metrics endpoint. */
async function measureSupervising(
  system: string,
  launcher: { nodeArgs: string[]; entry: string },
  producer: Producer,
): Promise<BenchRow> {
  const ws = agentWorkspace("bench-supervised");
  const ports = await Promise.all(Array.from({ length: SUPERVISED }, () => freePort()));
  const httpPort = await freePort();
  const config = writeAgentConfig(
    ws,
    ports.map((port, i) => ({
      name: `svc-${i}`,
      command: [process.execPath, fixture("well-behaved.mjs")],
      env: { PORT: String(port) },
      health: { tcp: { port }, periodMs: 50, failureThreshold: 200 },
      // Kubernetes' default liveness period.
      liveness: { tcp: { port }, periodMs: 10_000 },
      restart: { policy: "on-failure" },
    })),
    { http: { port: httpPort } },
  );
  const agent = startLifeline(["agent", "--config", config], "agent started", process.env, launcher);
  await agent.started;
  const commands = ports.map((_, i) => makeCommand(ws, "start", `svc-${i}`));
  await producer.send({
    topic: topicNames(ws.prefix).control,
    acks: -1,
    messages: commands.map((c) => ({ key: c.service, value: JSON.stringify(signed(ws, c)) })),
  });
  const ids = new Set(commands.map((c) => c.id));
  const events = await waitForJournal(
    ws.journal,
    (e) =>
      e.filter((x) => ids.has(x.lifeline.command_id ?? "") && x.event.action === "command.completed")
        .length === SUPERVISED,
    120_000,
  );
  const failed = events.filter(
    (x) =>
      ids.has(x.lifeline.command_id ?? "") &&
      x.event.action === "command.completed" &&
      x.event.outcome !== "success",
  );
  if (failed.length > 0) throw new Error(`${failed.length} starts failed: ${failed[0]?.event.reason}`);
  const health = (await fetch(`http://127.0.0.1:${httpPort}/health`).then((r) => r.json())) as {
    services: Record<string, { phase: string }>;
  };
  const watching = Object.values(health.services).filter((s) => s.phase === "watching").length;
  if (watching !== SUPERVISED) throw new Error(`${watching} of ${SUPERVISED} services watched`);
  const pid = agent.process.pid as number;
  const idleSeconds = 30;
  const cpuBefore = cpuSeconds(pid);
  await delay(idleSeconds * 1000);
  const idleCpu = ((cpuSeconds(pid) - cpuBefore) / idleSeconds) * 100;
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
  const restarts = readJournal(ws.journal).filter((e) => e.event.action.startsWith("service.")).length;
  await agent.stop();
  killWorkspaceServices();
  return {
    scenario: `idle, keeping ${SUPERVISED} services running (liveness every 10 s, /metrics on)`,
    system,
    "RSS MiB": rss,
    "CPU % of a core": idleCpu,
    "supervision events": restarts,
    samples: idleSeconds,
  };
}

await main();
