import { z } from "zod";
import { loadConfigFile, parseConfig, timerMs } from "../core/config.ts";
import { kafkaConnectionSchema, kafkaEnvOverrides } from "../core/kafka/client.ts";

const MiB = 1 << 20;

export const collectorConfigSchema = z.strictObject({
  /** Spans go to <topicPrefix>.spans, OTLP log records to <topicPrefix>.logs. */
  topicPrefix: z
    .string()
    .regex(/^[a-zA-Z0-9._-]+$/)
    .default("lifeline"),
  /** The OTLP/HTTP listener; 4318 is the port OTLP clients default to. */
  listen: z
    .strictObject({
      host: z.string().default("127.0.0.1"),
      port: z.number().int().min(0).max(65535).default(4318),
    })
    .prefault({}),
  /** The OTLP/gRPC listener (TraceService, LogsService); 4317 is the port OTLP gRPC clients default to. */
  grpc: z
    .strictObject({
      enabled: z.boolean().default(true),
      host: z.string().default("127.0.0.1"),
      port: z.number().int().min(0).max(65535).default(4317),
    })
    .prefault({}),
  /** TLS for both receivers (PEM files); without it they speak plaintext. */
  tls: z.strictObject({ certFile: z.string(), keyFile: z.string() }).optional(),
  /**
   * Clients must send `Authorization: Bearer <token>` (HTTP header or gRPC metadata); without it anyone who
   * reaches the port may send. Better from the environment: LIFELINE_COLLECTOR_BEARER_TOKEN(_FILE).
   */
  auth: z.strictObject({ bearerToken: z.string().min(16) }).optional(),
  limits: z
    .strictObject({
      /** Body as sent (compressed or not); larger → 413. */
      maxRequestBytes: z
        .number()
        .int()
        .positive()
        .default(8 * MiB),
      /** Body after gunzip; a zip bomb stops here → 413. */
      maxDecompressedBytes: z
        .number()
        .int()
        .positive()
        .default(64 * MiB),
      /** Bytes accepted but not yet acknowledged by Kafka; beyond → 429 with Retry-After. */
      inflightBytes: z
        .number()
        .int()
        .positive()
        .default(64 * MiB),
      /** How long a request waits for Kafka's acknowledgement before the client is told to retry (503). */
      ackTimeoutMs: timerMs().positive().default(10_000),
      /**
       * Kafka producers sending side by side, partitions spread over them (each partition's records stay with one,
       * in order). Each has one request in flight; two keep Kafka busy while the collector waits for an ack.
       */
      producers: z.number().int().min(1).max(16).default(2),
    })
    .prefault({}),
  compression: z.enum(["zstd", "gzip", "none"]).default("zstd"),
  /**
   * How documents travel in Kafka records. `packed`: consecutive documents of one source in one record, separated
   * by newlines (NDJSON, header `lifeline-records: <n>`): fewer, larger records, the fastest. `single`: one
   * document per record, what Logstash's json codec, Kafka Connect, ksqlDB and kcat scripts expect.
   */
  recordFormat: z.enum(["packed", "single"]).default("packed"),
  /** Prometheus /metrics and /health. */
  http: z
    .strictObject({
      host: z.string().default("127.0.0.1"),
      port: z.number().int().min(0).max(65535).default(9464),
    })
    .prefault({}),
  kafka: kafkaConnectionSchema.optional(),
});
export type CollectorConfig = z.output<typeof collectorConfigSchema>;

const overrides = {
  ...kafkaEnvOverrides,
  LIFELINE_TOPIC_PREFIX: { path: "topicPrefix" },
  LIFELINE_COLLECTOR_HOST: { path: "listen.host" },
  LIFELINE_COLLECTOR_PORT: { path: "listen.port", parse: Number },
  LIFELINE_COLLECTOR_GRPC_HOST: { path: "grpc.host" },
  LIFELINE_COLLECTOR_GRPC_PORT: { path: "grpc.port", parse: Number },
  LIFELINE_COLLECTOR_BEARER_TOKEN: { path: "auth.bearerToken" },
};

/** Without a file, the defaults (and the environment) make a working collector. */
export function loadCollectorConfig(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): CollectorConfig {
  return file
    ? loadConfigFile(file, collectorConfigSchema, { env, overrides })
    : parseConfig("", "collector defaults", collectorConfigSchema, { env, overrides });
}
