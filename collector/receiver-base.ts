import type { Logger } from "../core/logger.ts";
import { bearerCheck } from "./auth.ts";
import type { CollectorConfig } from "./config.ts";
import type { CollectorMetrics } from "./metrics.ts";
import type { OtlpPipeline } from "./pipeline.ts";

export interface ReceiverOptions {
  config: CollectorConfig;
  pipeline: OtlpPipeline;
  logger: Logger;
  metrics: CollectorMetrics;
}

/** What both OTLP receivers (HTTP and gRPC) are made of: one pipeline, the configured bearer check, a port. */
export abstract class OtlpReceiverBase {
  protected readonly config: CollectorConfig;
  protected readonly pipeline: OtlpPipeline;
  protected readonly logger: Logger;
  protected readonly metrics: CollectorMetrics;
  protected readonly authorized: (authorization: string | undefined) => boolean;
  /** The port listened on, once started (0 in the config: one the system chose). */
  port = 0;

  constructor(options: ReceiverOptions) {
    this.config = options.config;
    this.pipeline = options.pipeline;
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.authorized = bearerCheck(options.config.auth?.bearerToken);
  }
}
