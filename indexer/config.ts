import { z } from "zod";
import { loadConfigFile, timerMs } from "../core/config.ts";
import { connectionEnvOverrides } from "../core/connections.ts";
import { elasticSettingsSchema } from "../core/elastic/settings.ts";
import { kafkaConnectionSchema } from "../core/kafka/client.ts";

export const indexerConfigSchema = z.strictObject({
  /** One group for all indexer instances: run more to scale; partitions are the unit. */
  groupId: z.string().default("lifeline-indexer"),
  topicPrefix: z.string().default(process.env.LIFELINE_TOPIC_PREFIX ?? "lifeline"),
  /** The data stream namespace (logs-lifeline.logs-<namespace>). */
  namespace: z
    .string()
    .regex(/^[a-z0-9_]+$/)
    .default("default"),
  indices: z
    .strictObject({
      /** auto: data streams where the server has them, plain indices otherwise. */
      mode: z.enum(["auto", "data-streams", "indices"]).default("auto"),
      retention: z
        .string()
        .regex(/^\d+[dhms]$/)
        .default("30d"),
      replicas: z.number().int().min(0).default(1),
    })
    .default({ mode: "auto", retention: "30d", replicas: 1 }),
  bulk: z
    .strictObject({
      /** A bulk request's size; larger batches from Kafka are split. */
      maxBytes: z
        .number()
        .int()
        .positive()
        .default(5 << 20),
      /**
       * Bulk requests in flight at once, whichever partitions they come from (twice as many partitions are read
       * and parsed meanwhile). 3 was the best on two cores, where Elasticsearch's own threads compete with more
       * (bench/tuning.md).
       */
      concurrency: z.number().int().min(1).max(32).default(3),
      maxRetryDelayMs: timerMs().positive().default(10_000),
    })
    .default({ maxBytes: 5 << 20, concurrency: 3, maxRetryDelayMs: 10_000 }),
  /**
   * How much one fetch from Kafka asks for, in compressed bytes, per partition and in all. A whole fetch is decoded
   * at once, and a zstd batch of documents is many times its size decoded: these bound the indexer's memory. Smaller
   * fetches hold less; since zstd batches are decompressed in large pieces, 512 KiB per partition indexes as fast
   * as 4 MiB did on the bench, with about 80 MiB less at the peak (bench/tuning.md).
   */
  fetch: z
    .strictObject({
      partitionBytes: z
        .number()
        .int()
        .min(64 << 10)
        .default(512 << 10),
      maxBytes: z
        .number()
        .int()
        .min(64 << 10)
        .default(4 << 20),
    })
    .default({ partitionBytes: 512 << 10, maxBytes: 4 << 20 }),
  http: z
    .strictObject({
      host: z.string().default("127.0.0.1"),
      port: z.number().int().min(0).max(65535).default(9465),
    })
    .optional(),
  kafka: kafkaConnectionSchema.optional(),
  elasticsearch: elasticSettingsSchema.optional(),
});
export type IndexerConfig = z.output<typeof indexerConfigSchema>;

export function loadIndexerConfig(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): IndexerConfig {
  if (!file) return indexerConfigSchema.parse({});
  return loadConfigFile(file, indexerConfigSchema, { env, overrides: connectionEnvOverrides });
}
