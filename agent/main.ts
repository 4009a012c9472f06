import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Command, generateSigningKeys, signCommand } from "../core/commands.ts";
import { resolveKafka } from "../core/connections.ts";
import { controlMessages, controlPartitionCount } from "../core/control-plane.ts";
import { UsageError } from "../core/errors.ts";
import { createKafka } from "../core/kafka/client.ts";
import { kafkaGate } from "../core/kafka/gate.ts";
import { runUntilSignal, Supervisor } from "../core/lifecycle.ts";
import { createLogger } from "../core/logger.ts";
import { startTracing } from "../core/observability/tracing.ts";
import { gatedHealth, settingSource } from "../core/startup.ts";
import { topicNames } from "../core/topics.ts";
import { Agent } from "./agent.ts";
import { loadAgentConfig } from "./config.ts";

export async function runAgent(values: { config: string; validate: boolean }): Promise<number> {
  const config = loadAgentConfig(values.config);
  if (values.validate) {
    process.stdout.write(`${values.config}: valid agent config (${config.services.length} services)\n`);
    return 0;
  }
  const logger = createLogger("agent");
  const kafkaSettings = {
    ...resolveKafka({ fromConfig: config.kafka ? { kafka: config.kafka } : {} }),
    clientId: `lifeline-agent-${config.host.name}`,
  };
  const kafka = createKafka(kafkaSettings, logger);
  const gate = kafkaGate({
    kafka,
    settings: kafkaSettings,
    topics: [topicNames(config.topicPrefix).control],
    setting: settingSource("kafka", { configFile: values.config, inConfig: config.kafka !== undefined }),
    logger,
  });
  // /health and /metrics only when asked for: without them the agent does not load prom-client or node:http's server.
  const metrics = config.http ? (await import("./metrics.ts")).createAgentMetrics() : undefined;
  const agent = new Agent({ config, kafka, logger, ...(metrics ? { metrics } : {}) });
  const observability =
    config.http && metrics
      ? new (await import("../core/observability/http.ts")).ObservabilityServer({
          registry: metrics.registry,
          health: gatedHealth([gate], () => agent.health()),
          ...config.http,
          logger,
        })
      : undefined;
  const supervisor = new Supervisor(observability ? [observability, gate, agent] : [gate, agent], logger);
  const stopTracing = await startTracing("agent", { hostName: config.host.name, logger });
  await runUntilSignal(supervisor, logger, {
    stopDeadlineMs: 60_000,
    onStarted: () =>
      logger.info(
        { host: config.host.name, services: config.services.map((s) => s.name), journal: agent.journalPath },
        "agent started",
      ),
  }).finally(stopTracing);
  return 0;
}

export function keygen(values: { out: string; keyId: string; force?: boolean; ifMissing?: boolean }): number {
  const existing = join(values.out, "signing.key");
  // Replacing a controller's key silently would leave every agent trusting a key nobody has.
  if (existsSync(existing) && !values.force) {
    if (values.ifMissing) {
      process.stdout.write(`${existing} exists: kept\n`);
      return 0;
    }
    process.stderr.write(`${existing} exists; --force replaces it (agents must then trust the new key)\n`);
    return 1;
  }
  mkdirSync(values.out, { recursive: true });
  const keys = generateSigningKeys();
  writeFileSync(join(values.out, "signing.key"), keys.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(values.out, "signing.pub"), keys.publicKeyPem);
  process.stdout.write(
    `wrote ${join(values.out, "signing.key")} (keep secret) and ${join(values.out, "signing.pub")}\nagent config:\n  trustedKeys:\n    - id: ${values.keyId}\n      publicKey: |\n${keys.publicKeyPem
      .trimEnd()
      .split("\n")
      .map((l) => `        ${l}`)
      .join("\n")}\n`,
  );
  return 0;
}

export interface SignOptions {
  key: string;
  keyId: string;
  action: Command["action"];
  service: string;
  host?: string[];
  group?: string[];
  ttlSeconds: number;
  graceMs?: number;
  traceparent?: string;
  publish: boolean;
  topicPrefix: string;
}

export async function signCli(values: SignOptions): Promise<number> {
  if (!values.host && !values.group) throw new UsageError("--host <name> or --group <name> is needed");
  const now = Date.now();
  const ttl = values.ttlSeconds * 1000;
  const command: Command = {
    id: randomUUID(),
    action: values.action,
    service: values.service,
    target: {
      ...(values.host ? { hosts: values.host } : {}),
      ...(values.group ? { groups: values.group } : {}),
    },
    parameters: values.graceMs !== undefined ? { gracePeriodMs: values.graceMs } : {},
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + ttl).toISOString(),
    deadline: new Date(now + ttl * 5).toISOString(),
    issuer: `cli:${process.env.USER ?? "unknown"}`,
    ...(values.traceparent ? { traceparent: values.traceparent } : {}),
  };
  const signed = signCommand(command, values.keyId, readFileSync(values.key, "utf8"));
  process.stdout.write(`${JSON.stringify(signed)}\n`);
  if (!values.publish) return 0;
  const topic = topicNames(values.topicPrefix).control;
  const kafka = createKafka({ ...resolveKafka(), clientId: "lifeline-agent-sign" });
  const partitions = await controlPartitionCount(kafka, topic).catch((error: Error) => {
    process.stderr.write(`cannot publish: ${error.message}\n`);
    return 0;
  });
  if (partitions === 0) return 1;
  const messages = controlMessages(
    signed,
    partitions,
    command.traceparent ? { traceparent: command.traceparent } : undefined,
  );
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();
  process.stderr.write(
    `published ${command.id} to ${topic}, partition${messages.length > 1 ? "s" : ""} ${messages.map((m) => m.partition).join(", ")}\n`,
  );
  return 0;
}
