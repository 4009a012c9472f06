/**
 * A simulated fleet for bench/controller.ts, in one process: for each host, a heartbeat on the lifecycle topic at
 * start; then every command for a simulated host is verified (Ed25519, as an agent does) and answered with
 * `command.completed`.
 * - `per-host`: every host reads its partition of the control topic with a group-less reader of its own (its own
 *   connection), as a real agent does (agent/control-feed.ts); records read are counted as they are read.
 * - `partitioned`: one group-less reader per partition stands in for all the hosts that share it; records read by
 *   agents are counted as each partition's records times its hosts (what their agents would each read).
 * - `raw`, `raw-per-host`: answer without verifying, reading with kafkajs consumer groups (the kafkajs-only
 *   baseline: one group, or one per host).
 * Prints "ready" once every reader fetched once; on SIGTERM prints "records-read <n>" and "answered <n>", and exits.
 */
import { createPublicKey, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { canonicalJson } from "../core/commands.ts";
import { resolveKafka } from "../core/connections.ts";
import { controlPartition, controlPartitionCount } from "../core/control-plane.ts";
import { createKafka } from "../core/kafka/client.ts";
import type { KafkaConsumer as Consumer, KafkaPort as Kafka, PartitionReader } from "../core/kafka/port.ts";
import { topicNames } from "../core/topics.ts";

const prefix = process.env.SIM_PREFIX as string;
const hosts = Array.from(
  { length: Number(process.env.SIM_HOSTS) },
  (_, i) => `host-${String(i).padStart(5, "0")}`,
);
const mode = process.env.SIM_MODE ?? "shared";
const raw = mode.startsWith("raw");
const publicKey = process.env.SIM_PUBLIC_KEY
  ? createPublicKey(readFileSync(process.env.SIM_PUBLIC_KEY, "utf8"))
  : undefined;
const kafka: Kafka = createKafka({ ...resolveKafka(), clientId: "simulated-agents" });
const producer = kafka.producer();
await producer.connect();

if (!raw) {
  const at = new Date().toISOString();
  for (let i = 0; i < hosts.length; i += 1_000) {
    await producer.send({
      topic: topicNames(prefix).lifecycle,
      messages: hosts.slice(i, i + 1_000).map((host) => ({
        key: host,
        value: JSON.stringify({
          "@timestamp": at,
          host: { name: host },
          event: { action: "agent.heartbeat", outcome: "success" },
          agent: { groups: ["bench"], labels: {}, services: { app: "running" } },
        }),
      })),
    });
  }
}

interface Signed {
  command: { id: string; rolloutId?: string; service: string; target: { hosts?: string[] } };
  signature: string;
}

async function answer(messages: Array<{ value: Buffer | null }>, onlyFor?: string): Promise<void> {
  const replies = [];
  for (const message of messages) {
    const signed = JSON.parse(String(message.value)) as Signed;
    const host = signed.command.target.hosts?.[0] ?? "?";
    if (onlyFor && host !== onlyFor) continue;
    if (!raw) {
      const valid = verify(
        null,
        Buffer.from(canonicalJson(signed.command)),
        publicKey as never,
        Buffer.from(signed.signature, "base64"),
      );
      if (!valid) {
        process.stderr.write(`simulated fleet: ${signed.command.id} for ${host}: signature not valid\n`);
        continue;
      }
    }
    replies.push({
      key: host,
      value: JSON.stringify({
        "@timestamp": new Date().toISOString(),
        host: { name: host },
        service: { name: signed.command.service },
        event: { action: "command.completed", outcome: "success", reason: "restarted: started" },
        lifeline: { command_id: signed.command.id, rollout_id: signed.command.rolloutId },
      }),
    });
  }
  answered += replies.length;
  if (replies.length > 0)
    await producer.send({
      topic: `${prefix}.${raw ? "replies" : "lifecycle"}`,
      messages: replies,
    });
}

async function consume(groupId: string, onlyFor?: string): Promise<Consumer> {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 30_000, heartbeatInterval: 3_000 });
  await consumer.connect();
  await consumer.subscribe({ topic: topicNames(prefix).control, fromBeginning: false });
  const fetched = consumer.firstFetch();
  await consumer.run({ eachBatch: async ({ batch }) => answer(batch.messages, onlyFor) });
  await fetched;
  return consumer;
}

let recordsRead = 0;
let answered = 0;
let running = true;
const loops: Array<Promise<void>> = [];

/** Reads one partition without a group from its end; each record counts once per host in `readers`. */
async function readPartition(
  reader: PartitionReader,
  partition: number,
  readers: number,
  onlyFor?: string,
): Promise<void> {
  const topic = topicNames(prefix).control;
  // A topic just made may not have every leader in place yet: retry as an agent's feed does.
  const retrying = async <T>(step: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await step();
      } catch (error) {
        if (attempt >= 100 || !(error as { retriable?: boolean }).retriable) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  };
  let offset = await retrying(() => reader.offset(topic, partition, "latest"));
  const first = await retrying(() => reader.fetch({ topic, partition, offset, maxWaitMs: 10 }));
  offset = first.messages.at(-1) ? String(BigInt(first.messages.at(-1)?.offset ?? 0) + 1n) : offset;
  loops.push(
    (async () => {
      while (running) {
        const { messages } = await retrying(() => reader.fetch({ topic, partition, offset, maxWaitMs: 500 }));
        recordsRead += messages.length * readers;
        if (messages.length === 0) continue;
        offset = String(BigInt(messages.at(-1)?.offset ?? 0) + 1n);
        await answer(messages, onlyFor);
      }
    })(),
  );
}

const control = topicNames(prefix).control;
const partitions = await controlPartitionCount(kafka, control);
const consumers: Consumer[] = [];
const readers: PartitionReader[] = [];
if (mode === "per-host") {
  await Promise.all(
    hosts.map(async (host) => {
      const reader = kafka.partitionReader();
      readers.push(reader);
      await readPartition(reader, controlPartition(host, partitions), 1, host);
    }),
  );
} else if (mode === "partitioned") {
  const hostsIn = new Array<number>(partitions).fill(0);
  for (const host of hosts)
    hostsIn[controlPartition(host, partitions)] = (hostsIn[controlPartition(host, partitions)] ?? 0) + 1;
  await Promise.all(
    hostsIn.map(async (count, partition) => {
      const reader = kafka.partitionReader();
      readers.push(reader);
      await readPartition(reader, partition, count);
    }),
  );
} else {
  consumers.push(
    ...(mode.endsWith("per-host")
      ? await Promise.all(hosts.map((host) => consume(`${prefix}-agent-${host}`, host)))
      : [await consume(`${prefix}-simulated-agents`)]),
  );
}
process.stdout.write("ready\n");
process.once("SIGTERM", async () => {
  running = false;
  await Promise.allSettled(loops);
  process.stdout.write(`records-read ${recordsRead}\nanswered ${answered}\n`);
  await Promise.all(consumers.map((c) => c.disconnect()));
  await Promise.all(readers.map((r) => r.close()));
  await producer.disconnect();
  process.exit(0);
});
