import { PermanentError } from "../core/errors.ts";
import type { BatchProducer } from "../core/kafka/batch-producer.ts";
import { type Topics, topicNames } from "../core/topics.ts";
import type { CollectorConfig } from "./config.ts";
import type { CollectorMetrics } from "./metrics.ts";
import { type Conversion, convert, decodeRequest, type Encoding, type Signal } from "./otlp.ts";

// google.rpc.Code values for the Status body.
/** Where each signal's records go: <prefix>.spans, .logs, .metrics. */
export const TOPIC_OF: Record<Signal, keyof Topics> = { traces: "spans", logs: "logs", metrics: "metrics" };

export const RPC = { invalidArgument: 3, resourceExhausted: 8, unavailable: 14, unauthenticated: 16 };

/** An answer other than 200: the HTTP status, a Status message, and Retry-After for the retryable ones. */
export class Refusal extends Error {
  readonly status: number;
  readonly rpcCode: number;
  readonly retryAfterSeconds: number | undefined;
  constructor(status: number, rpcCode: number, message: string, retryAfterSeconds?: number) {
    super(message);
    this.status = status;
    this.rpcCode = rpcCode;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * What every OTLP transport shares: an export request's body decoded, converted to records and produced to Kafka,
 * resolved only once Kafka acknowledged every record. A request that cannot be taken is a Refusal that says what
 * to answer: the HTTP status, the google.rpc code (the gRPC status), and for the retryable ones how long to wait.
 */
export class OtlpPipeline {
  private readonly config: CollectorConfig;
  private readonly producer: BatchProducer;
  private readonly metrics: CollectorMetrics;

  constructor(options: { config: CollectorConfig; producer: BatchProducer; metrics: CollectorMetrics }) {
    this.config = options.config;
    this.producer = options.producer;
    this.metrics = options.metrics;
  }

  get kafkaHealthy(): boolean {
    return this.producer.healthy;
  }

  get kafkaState(): { healthy: boolean; lastError: string | undefined; inflightBytes: number } {
    return {
      healthy: this.producer.healthy,
      lastError: this.producer.lastError,
      inflightBytes: this.producer.inflightBytes,
    };
  }

  /** Decodes, converts and produces; resolves with the conversion (for partial success) once Kafka acknowledged. */
  async export(signal: Signal, encoding: Encoding, body: Buffer): Promise<Conversion> {
    let conversion: Conversion;
    try {
      const decoded = decodeRequest(signal, encoding, body);
      conversion = convert(signal, decoded);
    } catch (error) {
      if (error instanceof PermanentError) throw new Refusal(400, RPC.invalidArgument, error.message);
      throw error;
    }
    if (conversion.rejected > 0) this.metrics.itemsRejected.inc({ signal }, conversion.rejected);
    await this.produce(signal, conversion);
    this.metrics.itemsAccepted.inc({ signal }, conversion.records.length);
    return conversion;
  }

  /** Resolves once Kafka acknowledged every record; refuses (retryable) when Kafka cannot take them. */
  private async produce(signal: Signal, conversion: Conversion): Promise<void> {
    const records = conversion.records;
    if (records.length === 0) return;
    if (!this.producer.healthy) {
      throw new Refusal(
        503,
        RPC.unavailable,
        `Kafka is unavailable (${this.producer.lastError ?? "failing"}); retry later`,
        5,
      );
    }
    const bytes = records.reduce((sum, record) => sum + record.value.length, 0);
    if (this.producer.inflightBytes + bytes > this.config.limits.inflightBytes) {
      throw new Refusal(429, RPC.resourceExhausted, "too much data waiting for Kafka; retry later", 1);
    }
    const topic = topicNames(this.config.topicPrefix)[TOPIC_OF[signal]];
    let waiting = records.length;
    let timer: NodeJS.Timeout | undefined;
    const acknowledged = new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Refusal(
              503,
              RPC.unavailable,
              `Kafka did not acknowledge within ${this.config.limits.ackTimeoutMs} ms; retry later`,
              5,
            ),
          ),
        this.config.limits.ackTimeoutMs,
      );
      for (const record of records) {
        this.producer.enqueue({
          topic,
          key: record.key,
          value: record.value,
          onAck: () => {
            if (--waiting === 0) resolve();
          },
        });
      }
    });
    this.metrics.inflightBytes.set(this.producer.inflightBytes);
    try {
      await acknowledged;
    } finally {
      clearTimeout(timer);
      this.metrics.inflightBytes.set(this.producer.inflightBytes);
    }
  }
}
