import { setTimeout as delay } from "node:timers/promises";
import { SpanKind } from "@opentelemetry/api";
import {
  CompressionTypes,
  type ICustomPartitioner,
  type Kafka,
  type Message,
  Partitioners,
  type Producer,
  type TopicMessages,
} from "kafkajs";
import type { Component } from "../lifecycle.ts";
import type { Logger } from "../logger.ts";
import { traced } from "../observability/tracing.ts";
import { backoffDelay } from "../retry.ts";

export type Compression = "zstd" | "gzip" | "none";

/**
 * A message value holds one JSON document, or several separated by "\n" (JSON text never contains a raw
 * newline); this header says how many. Consumers split with `unpackRecords`.
 */
export const RECORDS_HEADER = "lifeline-records";

export function unpackRecords(value: Buffer | string | null): string[] {
  if (value === null) return [];
  const text = typeof value === "string" ? value : value.toString("utf8");
  return text.includes("\n") ? text.split("\n") : [text];
}
const COMPRESSION = { zstd: CompressionTypes.ZSTD, gzip: CompressionTypes.GZIP, none: CompressionTypes.None };

export interface OutboundRecord {
  topic: string;
  key: string;
  value: string;
  headers?: Record<string, string>;
  /** Called once Kafka acknowledged the record (acks=all), in the order records were enqueued. */
  onAck: () => void;
}

export interface BatchProducerMetrics {
  sent(records: number, bytes: number): void;
  failed(error: unknown): void;
  deadLettered(records: number): void;
}

/**
 * An idempotent, acks=all producer that batches by size and linger and sends one batch at a time, so
 * acknowledgements arrive in enqueue order (a per-file watermark is then simply the last acknowledged offset).
 * A failed batch is retried, with backoff, until it goes through: nothing is dropped. `waitForRoom` is the
 * backpressure: it resolves while less than `inflightBytes` wait for acknowledgement.
 */
export class BatchProducer implements Component {
  readonly name = "kafka-producer";
  private readonly kafka: Kafka;
  private readonly logger: Logger;
  private readonly options: {
    batchBytes: number;
    lingerMs: number;
    inflightBytes: number;
    compression: Compression;
    /** Pack consecutive records of one key into messages of up to this many bytes; 0 sends one per message. */
    packBytes: number;
    /** Where a record too large for the broker goes, with the reason, instead of being dropped. */
    deadLetterTopic: string;
  };
  private readonly metrics: BatchProducerMetrics | undefined;
  private producer: Producer | undefined;
  private queue: Array<OutboundRecord & { bytes: number }> = [];
  private queuedBytes = 0;
  private inflight = 0;
  private roomWaiters: Array<() => void> = [];
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private hardStop = new AbortController();
  private consecutiveFailures = 0;
  lastSuccessAt = 0;
  lastError: string | undefined;

  constructor(options: {
    kafka: Kafka;
    logger: Logger;
    batchBytes: number;
    lingerMs: number;
    inflightBytes: number;
    compression: Compression;
    packBytes?: number;
    deadLetterTopic: string;
    metrics?: BatchProducerMetrics;
  }) {
    this.kafka = options.kafka;
    this.logger = options.logger;
    this.options = { ...options, packBytes: options.packBytes ?? 0 };
    this.metrics = options.metrics;
  }

  get inflightBytes(): number {
    return this.inflight;
  }

  get healthy(): boolean {
    return this.consecutiveFailures === 0;
  }

  async start(): Promise<void> {
    this.producer = this.newProducer();
    await this.producer.connect();
    this.loop = this.run();
  }

  enqueue(record: OutboundRecord): void {
    const bytes = record.value.length + record.key.length + 64;
    this.queue.push({ ...record, bytes });
    this.queuedBytes += bytes;
    this.inflight += bytes;
    // Wake the sender when it idles on an empty queue, or to cut the linger short once a batch is full.
    if (this.queue.length === 1 || this.queuedBytes >= this.options.batchBytes) this.wake?.();
  }

  waitForRoom(): Promise<void> {
    if (this.inflight < this.options.inflightBytes) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Sends what is queued, until the deadline; then gives up on the rest (it was never acknowledged). */
  async stop(deadline: AbortSignal): Promise<void> {
    this.stopping = true;
    this.wake?.();
    const onDeadline = () => this.hardStop.abort();
    deadline.addEventListener("abort", onDeadline, { once: true });
    try {
      await this.loop;
    } finally {
      deadline.removeEventListener("abort", onDeadline);
      for (const resolve of this.roomWaiters.splice(0)) resolve();
      await this.producer?.disconnect().catch(() => {});
      this.producer = undefined;
    }
  }

  private newProducer(): Producer {
    return this.kafka.producer({
      createPartitioner: cachedPartitioner,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2_000 },
    });
  }

  private async run(): Promise<void> {
    while (!this.hardStop.signal.aborted) {
      if (this.queue.length === 0) {
        if (this.stopping) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
        continue;
      }
      if (this.queuedBytes < this.options.batchBytes && !this.stopping && this.options.lingerMs > 0) {
        await Promise.race([
          delay(this.options.lingerMs),
          new Promise<void>((resolve) => {
            this.wake = resolve;
          }),
        ]);
        this.wake = undefined;
      }
      const batch = this.takeBatch();
      const sent = await this.sendUntilAcknowledged(batch);
      if (!sent) return;
      let bytes = 0;
      for (const record of batch) {
        bytes += record.bytes;
        record.onAck();
      }
      this.inflight -= bytes;
      this.metrics?.sent(batch.length, bytes);
      while (this.roomWaiters.length > 0 && this.inflight < this.options.inflightBytes)
        this.roomWaiters.shift()?.();
    }
  }

  private takeBatch(): Array<OutboundRecord & { bytes: number }> {
    let bytes = 0;
    let count = 0;
    while (
      count < this.queue.length &&
      (count === 0 || bytes + (this.queue[count]?.bytes ?? 0) <= this.options.batchBytes)
    ) {
      bytes += this.queue[count]?.bytes ?? 0;
      count++;
    }
    this.queuedBytes -= bytes;
    return this.queue.splice(0, count);
  }

  /** Resolves true once Kafka acknowledged the whole batch, false if stopped by the hard deadline first. */
  private async sendUntilAcknowledged(batch: Array<OutboundRecord & { bytes: number }>): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      if (this.hardStop.signal.aborted) return false;
      try {
        await traced(
          "kafka produce",
          {
            kind: SpanKind.PRODUCER,
            attributes: { "messaging.system": "kafka", "messaging.batch.message_count": batch.length },
          },
          () => this.send(batch),
        );
        this.consecutiveFailures = 0;
        this.lastSuccessAt = Date.now();
        this.lastError = undefined;
        return true;
      } catch (error) {
        if (isTooLarge(error) && batch.length > 1) {
          // Split: each half goes through on its own, in order.
          const half = Math.ceil(batch.length / 2);
          return (
            (await this.sendUntilAcknowledged(batch.slice(0, half))) &&
            (await this.sendUntilAcknowledged(batch.slice(half)))
          );
        }
        if (isTooLarge(error)) {
          await this.deadLetter(batch, error);
          return true;
        }
        this.consecutiveFailures++;
        this.lastError = (error as Error).message;
        this.metrics?.failed(error);
        const wait = backoffDelay(attempt, { retries: Infinity, initialDelayMs: 100, maxDelayMs: 5_000 });
        this.logger.warn(
          { err: (error as Error).message, attempt, waitMs: wait, records: batch.length },
          "kafka send failed, retrying",
        );
        if (this.consecutiveFailures % 5 === 0) {
          // A fresh producer gets a fresh producer id: recovers from sequence errors after a broker restart.
          await this.producer?.disconnect().catch(() => {});
          this.producer = this.newProducer();
          await this.producer.connect().catch(() => {});
        }
        await delay(wait, undefined, { signal: this.hardStop.signal }).catch(() => {});
      }
    }
  }

  private async send(batch: Array<OutboundRecord & { bytes: number }>): Promise<void> {
    const byTopic = new Map<string, Message[]>();
    const packs = new Map<
      string,
      { topic: string; key: string; values: string[]; bytes: number; headers?: Record<string, string> }
    >();
    const messagesOf = (topic: string) => {
      let messages = byTopic.get(topic);
      if (!messages) {
        messages = [];
        byTopic.set(topic, messages);
      }
      return messages;
    };
    const flush = (pack: {
      topic: string;
      key: string;
      values: string[];
      headers?: Record<string, string>;
    }) => {
      const single = pack.values.length === 1;
      messagesOf(pack.topic).push({
        key: pack.key,
        value: single ? (pack.values[0] as string) : pack.values.join("\n"),
        headers: {
          ...pack.headers,
          [RECORDS_HEADER]: String(pack.values.length),
        },
      });
    };
    for (const record of batch) {
      if (this.options.packBytes === 0) {
        messagesOf(record.topic).push({
          key: record.key,
          value: record.value,
          ...(record.headers ? { headers: record.headers } : {}),
        });
        continue;
      }
      // Consecutive records of one key (one file, one trace) share a message: Kafka's per-message cost is
      // paid per pack. A pack keeps headers (a traceparent) only while all its records agree on them.
      const packKey = `${record.topic}\u0000${record.key}`;
      const pack = packs.get(packKey);
      if (pack && pack.bytes + record.value.length <= this.options.packBytes) {
        if (!sameHeaders(pack.headers, record.headers)) delete pack.headers;
        pack.values.push(record.value);
        pack.bytes += record.value.length + 1;
        continue;
      }
      if (pack) flush(pack);
      packs.set(packKey, {
        topic: record.topic,
        key: record.key,
        values: [record.value],
        bytes: record.value.length,
        ...(record.headers ? { headers: record.headers } : {}),
      });
    }
    for (const pack of packs.values()) flush(pack);
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    if (!this.producer) throw new Error("producer not started");
    await this.producer.sendBatch({
      topicMessages,
      acks: -1,
      timeout: 30_000,
      compression: COMPRESSION[this.options.compression],
    });
  }

  private async deadLetter(batch: Array<OutboundRecord & { bytes: number }>, error: unknown): Promise<void> {
    const record = batch[0] as OutboundRecord & { bytes: number };
    this.logger.error(
      { topic: record.topic, bytes: record.bytes },
      "record larger than the broker accepts: dead-lettered",
    );
    const value = JSON.stringify({
      "@timestamp": new Date().toISOString(),
      error: { type: "record_too_large", message: (error as Error).message },
      original: {
        topic: record.topic,
        key: record.key,
        bytes: record.bytes,
        head: record.value.slice(0, 4_096),
      },
    });
    await this.sendUntilAcknowledged([
      { topic: this.options.deadLetterTopic, key: record.key, value, onAck: () => {}, bytes: value.length },
    ]);
    this.metrics?.deadLettered(1);
  }
}

/**
 * kafkajs's default partitioner (murmur2 of the key, as the Java client) with the answer cached per key: a file's
 * records share one key, so the hash runs once per file instead of once per line.
 */
const cachedPartitioner: ICustomPartitioner = () => {
  const partitioner = Partitioners.DefaultPartitioner();
  const cache = new Map<string, number>();
  return (args) => {
    if (args.message.partition !== undefined || args.message.key === null || args.message.key === undefined) {
      return partitioner(args);
    }
    const cacheKey = `${args.topic}\u0000${args.partitionMetadata.length}\u0000${String(args.message.key)}`;
    let partition = cache.get(cacheKey);
    if (partition === undefined) {
      partition = partitioner(args);
      if (cache.size >= 100_000) cache.clear();
      cache.set(cacheKey, partition);
    }
    return partition;
  };
};

function sameHeaders(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}

function isTooLarge(error: unknown): boolean {
  const type =
    (error as { type?: string; cause?: { type?: string } })?.type ??
    (error as { cause?: { type?: string } })?.cause?.type;
  return (
    type === "MESSAGE_TOO_LARGE" ||
    type === "RECORD_LIST_TOO_LARGE" ||
    /too large/i.test((error as Error)?.message ?? "")
  );
}
