import { PermanentError } from "../core/errors.ts";
import type { BatchProducer, RecordWriter } from "../core/kafka/batch-producer.ts";
import { type Topics, topicNames } from "../core/topics.ts";
import type { CollectorConfig } from "./config.ts";
import type { CollectorMetrics } from "./metrics.ts";
import { type ConvertedRecords, convert, decodeRequest, type Encoding, type Signal } from "./otlp.ts";

/** What an accepted export request's answer says: how many items were taken, how many refused and why. */
export interface ExportResult {
  accepted: number;
  rejected: number;
  rejectedReason?: string;
}

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
  /**
   * Where the next request's records are written: a request is converted and its records copied into the
   * producer's packs without an await in between, so one buffer serves every request in turn.
   */
  private scratch: Buffer | undefined;

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

  /**
   * Decodes, converts and produces; resolves once Kafka acknowledged every record, with what the answer says
   * (partial success). The records' text is in the producer's packs once enqueued: nothing here holds it while
   * Kafka is awaited.
   */
  async export(signal: Signal, encoding: Encoding, body: Buffer): Promise<ExportResult> {
    let acknowledged: Promise<void>;
    let result: ExportResult;
    try {
      const conversion = convert(signal, decodeRequest(signal, encoding, body), this.scratch);
      result = {
        accepted: conversion.records.length,
        rejected: conversion.rejected,
        ...(conversion.rejectedReason ? { rejectedReason: conversion.rejectedReason } : {}),
      };
      if (result.rejected > 0) this.metrics.itemsRejected.inc({ signal }, result.rejected);
      try {
        acknowledged = this.produce(signal, conversion.records);
      } finally {
        this.scratch = conversion.records.release();
      }
    } catch (error) {
      if (error instanceof PermanentError) throw new Refusal(400, RPC.invalidArgument, error.message);
      throw error;
    }
    await acknowledged;
    this.metrics.itemsAccepted.inc({ signal }, result.accepted);
    return result;
  }

  /**
   * Enqueues every record (or refuses at once, retryable, when Kafka cannot take them) and returns the promise of
   * their acknowledgement.
   */
  private produce(signal: Signal, records: ConvertedRecords): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    if (!this.producer.healthy) {
      throw new Refusal(
        503,
        RPC.unavailable,
        `Kafka is unavailable (${this.producer.lastError ?? "failing"}); retry later`,
        5,
      );
    }
    if (this.producer.inflightBytes + records.bytes > this.config.limits.inflightBytes) {
      throw new Refusal(429, RPC.resourceExhausted, "too much data waiting for Kafka; retry later", 1);
    }
    const topic = topicNames(this.config.topicPrefix)[TOPIC_OF[signal]];
    const ackTimeoutMs = this.config.limits.ackTimeoutMs;
    let waiting = records.length;
    let resolveAll: () => void = () => {};
    let timer: NodeJS.Timeout | undefined;
    const acknowledged = new Promise<void>((resolve, reject) => {
      resolveAll = resolve;
      timer = setTimeout(
        () =>
          reject(
            new Refusal(
              503,
              RPC.unavailable,
              `Kafka did not acknowledge within ${ackTimeoutMs} ms; retry later`,
              5,
            ),
          ),
        ackTimeoutMs,
      );
    });
    const writer = new RecordCopier(records);
    try {
      for (let index = 0; index < records.length; index++) {
        // A callback of its own: the producer acknowledges consecutive records of a key that share one callback
        // with a single call.
        const onAck = () => {
          if (--waiting === 0) resolveAll();
        };
        writer.index = index;
        writer.bytes = records.end(index) - records.start(index);
        this.producer.enqueueWritten(topic, records.key(index), undefined, writer, onAck, 0);
      }
    } catch (error) {
      clearTimeout(timer);
      throw error;
    }
    this.metrics.inflightBytes.set(this.producer.inflightBytes);
    return acknowledged.finally(() => {
      clearTimeout(timer);
      this.metrics.inflightBytes.set(this.producer.inflightBytes);
    });
  }
}

/** One converted record at a time, as the producer's RecordWriter: its text copied from the request's buffer. */
class RecordCopier implements RecordWriter {
  index = 0;
  bytes = 0;
  private readonly records: ConvertedRecords;

  constructor(records: ConvertedRecords) {
    this.records = records;
  }

  writeInto(target: Buffer, offset: number): void {
    this.records.copy(this.index, target, offset);
  }
}
