/**
 * A simulated fleet for bench/controller.ts, in one process: for each host, a heartbeat on the lifecycle topic at
 * start; then every command on the control topic is verified (Ed25519, as an agent does) and answered with
 * `command.completed`. `SIM_MODE=per-host` gives every host its own consumer group, as real agents have;
 * `shared` reads with one group; `raw` answers without verifying (the kafkajs-only baseline).
 * Prints "ready" once every consumer fetches.
 */
import { createPublicKey, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { canonicalJson } from "../core/commands.ts";
import { resolveKafka } from "../core/connections.ts";
import { createKafka } from "../core/kafka/client.ts";
import type { KafkaConsumer as Consumer, KafkaPort as Kafka } from "../core/kafka/port.ts";

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
      topic: `${prefix}.lifecycle`,
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
      if (!valid) continue;
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
  if (replies.length > 0)
    await producer.send({
      topic: `${prefix}.${raw ? "replies" : "lifecycle"}`,
      messages: replies,
    });
}

async function consume(groupId: string, onlyFor?: string): Promise<Consumer> {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 30_000, heartbeatInterval: 3_000 });
  await consumer.connect();
  await consumer.subscribe({ topic: `${prefix}.control`, fromBeginning: false });
  const fetched = consumer.firstFetch();
  await consumer.run({ eachBatch: async ({ batch }) => answer(batch.messages, onlyFor) });
  await fetched;
  return consumer;
}

const consumers = mode.endsWith("per-host")
  ? await Promise.all(hosts.map((host) => consume(`${prefix}-agent-${host}`, host)))
  : [await consume(`${prefix}-simulated-agents`)];
process.stdout.write("ready\n");
process.once("SIGTERM", async () => {
  await Promise.all(consumers.map((c) => c.disconnect()));
  await producer.disconnect();
  process.exit(0);
});
