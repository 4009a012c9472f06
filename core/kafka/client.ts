import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { type Admin, Kafka, type KafkaConfig, logLevel, type SASLOptions } from "kafkajs";
import { z } from "zod";
import { parseBoolean, parseList, timerMs } from "../config.ts";
import { ConfigError, RetryableError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { kafkajsPort } from "./kafkajs-adapter.ts";
import { socketFactory } from "./kafkajs-setup.ts";
import type { KafkaPort } from "./port.ts";

export const kafkaSettingsSchema = z.strictObject({
  /** host:port of one or more brokers. */
  brokers: z.array(z.string().regex(/^[^\s:]+:\d+$/, "must be host:port")).min(1),
  clientId: z.string().default("lifeline"),
  tls: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** PEM file of the CA that signed the brokers' certificates (default: the system's CAs). */
      caFile: z.string().optional(),
      certFile: z.string().optional(),
      keyFile: z.string().optional(),
      rejectUnauthorized: z.boolean().default(true),
    })
    .optional(),
  sasl: z
    .strictObject({
      mechanism: z.enum(["plain", "scram-sha-256", "scram-sha-512"]),
      username: z.string().min(1),
      password: z.string().min(1),
    })
    .optional(),
  connectionTimeoutMs: timerMs().positive().default(3_000),
  requestTimeoutMs: timerMs().positive().default(30_000),
});
export type KafkaSettings = z.output<typeof kafkaSettingsSchema>;

/** A config file's `kafka:` section: the settings without the client id, which each component sets itself. */
export const kafkaConnectionSchema = kafkaSettingsSchema.omit({ clientId: true });

/** The environment variables every component honours for Kafka (config path under `kafka.`). */
export const kafkaEnvOverrides = {
  LIFELINE_KAFKA_BROKERS: { path: "kafka.brokers", parse: parseList },
  LIFELINE_KAFKA_TLS: { path: "kafka.tls.enabled", parse: parseBoolean },
  LIFELINE_KAFKA_TLS_CA: { path: "kafka.tls.caFile" },
  LIFELINE_KAFKA_SASL_MECHANISM: { path: "kafka.sasl.mechanism" },
  LIFELINE_KAFKA_USERNAME: { path: "kafka.sasl.username" },
  LIFELINE_KAFKA_PASSWORD: { path: "kafka.sasl.password" },
};

/** The one place a Kafka client is made, so TLS, SASL, timeouts and logging are the same everywhere. */
export function createKafka(settings: KafkaSettings, logger?: Logger): KafkaPort {
  return kafkajsPort(kafkajsClient(settings, logger));
}

function kafkajsClient(
  settings: KafkaSettings,
  logger?: Logger,
  overrides: Partial<KafkaConfig> = {},
): Kafka {
  // Our producers use kafkajs's default partitioner on purpose (murmur2, as the Java client): its notice about
  // the 2.0 change is noise in every command's output.
  process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= "1";
  const config: KafkaConfig = {
    ...overrides,
    clientId: settings.clientId,
    brokers: settings.brokers,
    connectionTimeout: settings.connectionTimeoutMs,
    requestTimeout: settings.requestTimeoutMs,
    logLevel: logLevel.WARN,
    socketFactory,
    logCreator: () => (entry) => {
      if (!logger) return;
      const { message, ...rest } = entry.log;
      const level = kafkajsLogLevel(entry.level, message);
      logger[level]({ kafkajs: entry.namespace, ...rest }, message);
    },
  };
  if (settings.tls?.enabled) config.ssl = tlsOptions(settings.tls);
  if (settings.sasl) config.sasl = settings.sasl as SASLOptions;
  return new Kafka(config);
}

/**
 * kafkajs's log entries at Lifeline's levels. One warning is moved to debug because it does not apply, and a user
 * could do nothing about it: "Limiting retries for the idempotent producer may invalidate EoS guarantees", printed
 * once per producer at every start. Lifeline's batch producer gives kafkajs a few retries so that it sees failures
 * (to report them, split a batch the broker finds too large, dead-letter a record), then sends the same batch again
 * itself, forever, on the same producer: kafkajs rolls its sequence numbers back after a failed send, so the
 * broker still recognises a batch that did land. Only after five failures in a row does it take a new producer id
 * (after a broker lost the producer's state), when a batch can be written twice, with the same event ids.
 */
export function kafkajsLogLevel(level: logLevel, message: string): "warn" | "debug" {
  if (message === "Limiting retries for the idempotent producer may invalidate EoS guarantees")
    return "debug";
  return level <= logLevel.WARN ? "warn" : "debug";
}

function tlsOptions(tls: NonNullable<KafkaSettings["tls"]>): ConnectionOptions {
  const read = (file: string | undefined) => {
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (cause) {
      throw new ConfigError(
        "kafka.tls_file",
        `cannot read Kafka TLS file ${file}: ${(cause as Error).message}`,
      );
    }
  };
  return {
    ca: read(tls.caFile),
    cert: read(tls.certFile),
    key: read(tls.keyFile),
    rejectUnauthorized: tls.rejectUnauthorized,
  };
}

const UNREACHABLE_ERRORS = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSNumberOfRetriesExceeded",
  "KafkaJSBrokerNotFound",
  "KafkaJSRequestTimeoutError",
]);

/** Turns kafkajs errors into Lifeline's error tree with a message an operator can act on. */
export function translateKafkaError(error: unknown, settings: KafkaSettings): Error {
  const name = (error as { name?: string })?.name ?? "";
  const message = (error as Error)?.message ?? String(error);
  const where = settings.brokers.join(",");
  if (name === "KafkaJSSASLAuthenticationError" || /SASL|authentication/i.test(message)) {
    return new ConfigError("kafka.auth_failed", `Kafka at ${where} rejected the credentials: ${message}`, {
      cause: error,
      hint: "check LIFELINE_KAFKA_SASL_MECHANISM, LIFELINE_KAFKA_USERNAME and LIFELINE_KAFKA_PASSWORD",
    });
  }
  if (
    UNREACHABLE_ERRORS.has(name) ||
    UNREACHABLE_ERRORS.has((error as { cause?: { name?: string } })?.cause?.name ?? "")
  ) {
    return new RetryableError("kafka.unreachable", `cannot reach Kafka at ${where}: ${message}`, {
      cause: error,
      hint: "start the local servers with `lifeline services up`, or set LIFELINE_KAFKA_BROKERS to a running cluster",
    });
  }
  return error instanceof Error ? error : new Error(message);
}

export interface KafkaClusterInfo {
  clusterId: string;
  brokers: string[];
}

/** Asks the cluster for its metadata: the proof that Kafka really serves, not only that a port is open. */
export async function describeKafka(settings: KafkaSettings): Promise<KafkaClusterInfo> {
  // Fail fast: this answers "does Kafka serve?", callers that wait for it poll.
  const kafka = kafkajsClient(
    { ...settings, connectionTimeoutMs: Math.min(settings.connectionTimeoutMs, 3_000) },
    undefined,
    { retry: { retries: 1, initialRetryTime: 200 } },
  );
  const admin: Admin = kafka.admin({ retry: { retries: 0 } });
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return { clusterId: cluster.clusterId, brokers: cluster.brokers.map((b) => `${b.host}:${b.port}`) };
  } catch (error) {
    throw translateKafkaError(error, settings);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
