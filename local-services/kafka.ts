import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, openSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { ConfigError } from "../core/errors.ts";
import { describeKafka } from "../core/kafka/client.ts";
import { findJava } from "./java.ts";
import { fetchArtifacts } from "./maven.ts";
import { isOurProcess, isPortOpen, readPidFile, waitUntil } from "./process.ts";
import type { LocalServicesSettings } from "./settings.ts";

const run = promisify(execFile);

export interface KafkaPaths {
  root: string;
  config: string;
  data: string;
  logs: string;
  pidFile: string;
}

export function kafkaPaths(settings: LocalServicesSettings): KafkaPaths {
  const root = join(settings.dir, "kafka");
  return {
    root,
    config: join(root, "config", "server.properties"),
    data: join(root, "data"),
    logs: join(root, "logs"),
    pidFile: join(root, "kafka.pid"),
  };
}

export function runningKafkaPid(settings: LocalServicesSettings): number | undefined {
  const paths = kafkaPaths(settings);
  const pid = readPidFile(paths.pidFile);
  return isOurProcess(pid, paths.config) ? pid : undefined;
}

export interface KafkaCredentials {
  username: string;
  password: string;
}

/** Fetches (or reuses) the broker jars, writes the configs, formats the KRaft storage once, starts the broker. */
export async function startKafka(
  settings: LocalServicesSettings,
  credentials: KafkaCredentials,
  progress: (message: string) => void,
): Promise<{ pid: number; reused: boolean }> {
  const paths = kafkaPaths(settings);
  const running = runningKafkaPid(settings);
  if (running) return { pid: running, reused: true };

  const { kafka } = settings;
  for (const port of [kafka.port, kafka.controllerPort, kafka.saslPort]) {
    if (await isPortOpen(port)) {
      throw new ConfigError(
        "services.port_taken",
        `port ${port} is already in use by a program Lifeline did not start`,
        {
          hint: "stop that program, choose other ports (LIFELINE_SERVICES_KAFKA_PORT, LIFELINE_SERVICES_KAFKA_CONTROLLER_PORT, LIFELINE_SERVICES_KAFKA_SASL_PORT), or set LIFELINE_KAFKA_BROKERS to use a Kafka that already runs",
        },
      );
    }
  }
  const java = await findJava({
    purpose: `Kafka ${kafka.version}`,
    minMajor: 17,
    explicitHome: kafka.javaHome,
    explicitVariable: "LIFELINE_JAVA_HOME",
  });
  const jars = await fetchArtifacts({
    name: `kafka-${kafka.version}`,
    artifacts: [
      { groupId: "org.apache.kafka", artifactId: "kafka_2.13", version: kafka.version },
      // Kafka logs through SLF4J 1.7; this binding sends it to log4j2 so server.log is written.
      { groupId: "org.apache.logging.log4j", artifactId: "log4j-slf4j-impl", version: "2.25.5" },
    ],
    cacheDir: settings.cacheDir,
    repoUrl: settings.mavenRepoUrl,
    progress,
  });

  await Promise.all(
    [paths.data, paths.logs, join(paths.root, "config")].map((d) => mkdir(d, { recursive: true })),
  );
  await writeFile(paths.config, serverProperties(settings, paths, credentials));
  const log4j = join(paths.root, "config", "log4j2.properties");
  await writeFile(log4j, log4jProperties(paths.logs));
  const classpath = `${jars.dir}/*`;

  if (!existsSync(join(paths.data, "meta.properties"))) {
    progress(`kafka: formatting KRaft storage in ${paths.data}`);
    const clusterId = newClusterId();
    await run(
      java.executable,
      [
        "-cp",
        classpath,
        `-Dlog4j2.configurationFile=${log4j}`,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        clusterId,
        "-c",
        paths.config,
        "--add-scram",
        `SCRAM-SHA-256=[name=${credentials.username},password=${credentials.password}]`,
        "--add-scram",
        `SCRAM-SHA-512=[name=${credentials.username},password=${credentials.password}]`,
      ],
      { timeout: 120_000 },
    );
  }

  const out = openSync(join(paths.logs, "kafka.out"), "a");
  const child = spawn(
    java.executable,
    [
      `-Xms${kafka.heapMb}m`,
      `-Xmx${kafka.heapMb}m`,
      "-XX:+UseG1GC",
      "-XX:MaxGCPauseMillis=20",
      "-Djava.awt.headless=true",
      `-Dlog4j2.configurationFile=${log4j}`,
      `-Dkafka.logs.dir=${paths.logs}`,
      "-cp",
      classpath,
      "kafka.Kafka",
      paths.config,
    ],
    { detached: true, stdio: ["ignore", out, out] },
  );
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start the Kafka broker process");
  await writeFile(paths.pidFile, `${pid}\n`);
  return { pid, reused: false };
}

/** Waits until the broker answers a metadata request on its plain listener. */
export async function waitForKafka(settings: LocalServicesSettings, timeoutMs: number): Promise<void> {
  const brokers = [`127.0.0.1:${settings.kafka.port}`];
  const ready = await waitUntil(
    async () => {
      if (!runningKafkaPid(settings)) throw new Error("exited");
      return describeKafka({
        brokers,
        clientId: "lifeline-services",
        connectionTimeoutMs: 1_000,
        requestTimeoutMs: 5_000,
      });
    },
    { timeoutMs, intervalMs: 300 },
  );
  if (!ready) {
    const paths = kafkaPaths(settings);
    throw new Error(
      `Kafka did not answer within ${Math.round(timeoutMs / 1000)} s; see ${join(paths.logs, "server.log")} and kafka.out`,
    );
  }
}

function serverProperties(
  settings: LocalServicesSettings,
  paths: KafkaPaths,
  credentials: KafkaCredentials,
): string {
  const { port, saslPort, controllerPort } = settings.kafka;
  const scram = (bits: number) =>
    `listener.name.sasl_plaintext.scram-sha-${bits}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`;
  return `# Written by \`lifeline services up\`; local single-node KRaft broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controllerPort}
listeners=PLAINTEXT://127.0.0.1:${port},SASL_PLAINTEXT://127.0.0.1:${saslPort},CONTROLLER://127.0.0.1:${controllerPort}
advertised.listeners=PLAINTEXT://127.0.0.1:${port},SASL_PLAINTEXT://127.0.0.1:${saslPort}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${credentials.username}="${credentials.password}";
${scram(256)}
${scram(512)}
log.dirs=${paths.data}
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=72
`;
}

function log4jProperties(logs: string): string {
  return `status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${logs}/server.log
appender.file.filePattern = ${logs}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.request.name = kafka.request.logger
logger.request.level = warn
`;
}

/**
 * A KRaft cluster id: 16 random bytes, base64url (as kafka-storage random-uuid makes them). One in 64 would start
 * with "-", which the storage tool's argument parser takes for an option: those are drawn again.
 */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}
