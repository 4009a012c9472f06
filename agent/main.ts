import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Command, generateSigningKeys, signCommand } from "../core/commands.ts";
import { resolveKafka } from "../core/connections.ts";
import { controlMessages, controlPartitionCount } from "../core/control-plane.ts";
import { runInstall } from "../core/install.ts";
import { createKafka } from "../core/kafka/client.ts";
import { ensureTopics } from "../core/kafka/topics.ts";
import { runUntilSignal, Supervisor } from "../core/lifecycle.ts";
import { createLogger } from "../core/logger.ts";
import { startTracing } from "../core/observability/tracing.ts";
import { Agent } from "./agent.ts";
import { loadAgentConfig } from "./config.ts";

export const agentHelp = `Usage: lifeline agent --config FILE
       lifeline agent keygen --out DIR [--key-id ID] [--force | --if-missing]
       lifeline agent install --config FILE [--out DIR] [--platform linux|windows] [--install] (--help for more)
       lifeline agent sign --key FILE --key-id ID --action stop|start|restart|status --service NAME
                           (--host NAME | --group NAME) [--ttl-seconds 60] [--grace-ms N] [--traceparent TP]
                           [--publish [--topic-prefix P]]

Runs signed stop/start/restart/status commands from <prefix>.control on the services this host's config declares,
and writes every step to the lifecycle journal (the shipper ships it). Nothing else can be run through it.

  keygen   writes an Ed25519 key pair (signing.key, signing.pub) for the controller; put the .pub in agent configs
           (publicKey, or publicKeyFile); an existing key is kept: --force replaces it, --if-missing exits 0
  sign     prints a signed command as JSON (one line); --publish also sends it to <prefix>.control (prefix:
           --topic-prefix, else LIFELINE_TOPIC_PREFIX, else "lifeline"; Kafka from LIFELINE_KAFKA_BROKERS or
           the local servers) on the partitions of the hosts it names, or on every partition for a group, as
           the controller does. By hand, a host's command goes to the partition murmur2(host) % partitions
           (kcat: -k HOST -X topic.partitioner=murmur2_random), a group's to every partition.
  install  makes an installed copy (build, production dependencies, Node) with a systemd unit (KillMode=process,
           so services survive an agent restart) or, for Windows, a self-contained folder with a WinSW service

Options:
  --config FILE   agent YAML config, every key explained in agent/agent.example.yaml
  --validate      check the config and exit
`;

export async function runAgent(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "keygen") return keygen(rest);
  if (sub === "sign") return await signCli(rest);
  if (sub === "install") return runInstall("agent", rest, (file) => loadAgentConfig(file));
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      validate: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || !values.config) {
    process.stdout.write(agentHelp);
    return values.help ? 0 : 2;
  }
  const config = loadAgentConfig(values.config);
  if (values.validate) {
    process.stdout.write(`${values.config}: valid agent config (${config.services.length} services)\n`);
    return 0;
  }
  const logger = createLogger("agent");
  const kafka = createKafka(
    {
      ...resolveKafka({ fromConfig: config.kafka ? { kafka: config.kafka } : {} }),
      clientId: `lifeline-agent-${config.host.name}`,
    },
    logger,
  );
  await ensureTopics(kafka, [`${config.topicPrefix}.control`]);
  // /health and /metrics only when asked for: without them the agent does not load prom-client or node:http's server.
  const metrics = config.http ? (await import("./metrics.ts")).createAgentMetrics() : undefined;
  const agent = new Agent({ config, kafka, logger, ...(metrics ? { metrics } : {}) });
  const observability =
    config.http && metrics
      ? new (await import("../core/observability/http.ts")).ObservabilityServer({
          registry: metrics.registry,
          health: () => agent.health(),
          ...config.http,
          logger,
        })
      : undefined;
  const supervisor = new Supervisor(observability ? [observability, agent] : [agent], logger);
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

function keygen(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: "string" },
      "key-id": { type: "string", default: "controller" },
      force: { type: "boolean", default: false },
      "if-missing": { type: "boolean", default: false },
    },
  });
  if (!values.out) {
    process.stderr.write(agentHelp);
    return 2;
  }
  const existing = join(values.out, "signing.key");
  // Replacing a controller's key silently would leave every agent trusting a key nobody has.
  if (existsSync(existing) && !values.force) {
    if (values["if-missing"]) {
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
    `wrote ${join(values.out, "signing.key")} (keep secret) and ${join(values.out, "signing.pub")}\nagent config:\n  trustedKeys:\n    - id: ${values["key-id"]}\n      publicKey: |\n${keys.publicKeyPem
      .trimEnd()
      .split("\n")
      .map((l) => `        ${l}`)
      .join("\n")}\n`,
  );
  return 0;
}

async function signCli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      key: { type: "string" },
      "key-id": { type: "string" },
      action: { type: "string" },
      service: { type: "string" },
      host: { type: "string", multiple: true },
      group: { type: "string", multiple: true },
      "ttl-seconds": { type: "string", default: "60" },
      "grace-ms": { type: "string" },
      traceparent: { type: "string" },
      publish: { type: "boolean", default: false },
      "topic-prefix": { type: "string" },
    },
  });
  if (
    !values.key ||
    !values["key-id"] ||
    !values.action ||
    !values.service ||
    (!values.host && !values.group)
  ) {
    process.stderr.write(agentHelp);
    return 2;
  }
  const now = Date.now();
  const ttl = Number(values["ttl-seconds"]) * 1000;
  const command: Command = {
    id: randomUUID(),
    action: values.action as Command["action"],
    service: values.service,
    target: {
      ...(values.host ? { hosts: values.host } : {}),
      ...(values.group ? { groups: values.group } : {}),
    },
    parameters: values["grace-ms"] ? { gracePeriodMs: Number(values["grace-ms"]) } : {},
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + ttl).toISOString(),
    deadline: new Date(now + ttl * 5).toISOString(),
    issuer: `cli:${process.env.USER ?? "unknown"}`,
    ...(values.traceparent ? { traceparent: values.traceparent } : {}),
  };
  const signed = signCommand(command, values["key-id"], readFileSync(values.key, "utf8"));
  process.stdout.write(`${JSON.stringify(signed)}\n`);
  if (!values.publish) return 0;
  const topic = `${values["topic-prefix"] ?? process.env.LIFELINE_TOPIC_PREFIX ?? "lifeline"}.control`;
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
