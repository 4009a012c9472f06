import { setTimeout as delay } from "node:timers/promises";
import { type Client, errors } from "@elastic/elasticsearch";
import { SpanKind } from "@opentelemetry/api";
import { type RecordOrigin, toDocument } from "../core/ecs/document.ts";
import type { StreamKind } from "../core/ecs/mappings.ts";
import type { ElasticSettings } from "../core/elastic/client.ts";
import { translateElasticError } from "../core/elastic/client.ts";
import { PermanentError } from "../core/errors.ts";
import { BufferPool } from "../core/kafka/buffer-pool.ts";
import type {
  KafkaConsumer as Consumer,
  BatchContext as EachBatchPayload,
  KafkaPort as Kafka,
  KafkaProducer as Producer,
} from "../core/kafka/port.ts";
import type { Component } from "../core/lifecycle.ts";
import type { Logger } from "../core/logger.ts";
import { traced } from "../core/observability/tracing.ts";
import { backoffDelay } from "../core/retry.ts";
import { Semaphore } from "../core/semaphore.ts";
import { topicNames } from "../core/topics.ts";
import { bulkBody, rawBytes } from "./bulk-body.ts";
import { CommitChains } from "./commit-chain.ts";
import type { IndexerConfig } from "./config.ts";
import { actionHead, type RawDocument, rawBatch, rawDocumentText, shipperLogDocument } from "./documents.ts";
import type { IndexLayout } from "./index-setup.ts";
import type { IndexerMetrics } from "./metrics.ts";

interface Pending {
  kind: StreamKind;
  /** The bulk action line; a raw document's is made from its bytes. */
  action: string | undefined;
  /** JSON text, or the shipper's document as it came from Kafka. */
  source: string | RawDocument;
  origin: RecordOrigin;
  key: string | null;
}

interface DeadLetter {
  origin: RecordOrigin;
  key: string | null;
  original: string;
  reason: string;
  type: string;
  status?: number;
  /** Elasticsearch's causes, outermost first (each `caused_by` of the item's error, as it said them). */
  causedBy?: ElasticCause;
}

/** An Elasticsearch error's cause: its type, reason and own cause, as the bulk item's error carries them. */
export interface ElasticCause {
  type: string;
  reason?: string;
  caused_by?: ElasticCause;
}

/** At most this many causes are kept (Elasticsearch's chains are short; a loop must not be followed forever). */
const MAX_CAUSES = 8;

/** The item error's `caused_by` chain, with only type and reason at each level. */
export function causeChain(error: unknown, depth = 0): ElasticCause | undefined {
  const cause = (error as { caused_by?: { type?: unknown; reason?: unknown } } | undefined)?.caused_by;
  if (!cause || typeof cause !== "object" || depth >= MAX_CAUSES) return undefined;
  const inner = causeChain(cause, depth + 1);
  return {
    type: typeof cause.type === "string" ? cause.type : "unknown",
    ...(typeof cause.reason === "string" ? { reason: cause.reason } : {}),
    ...(inner ? { caused_by: inner } : {}),
  };
}

/**
 * The dead-letter metric's reason: the error's type and its innermost cause's type ("document_parsing_exception
 * <- illegal_argument_exception"). Types are Elasticsearch's exception names: a bounded set, unlike reasons.
 */
export function reasonLabel(type: string, causedBy?: ElasticCause): string {
  let innermost = causedBy;
  while (innermost?.caused_by) innermost = innermost.caused_by;
  return innermost ? `${type} <- ${innermost.type}` : type;
}

const RETRYABLE_ITEM_STATUS = new Set([429, 500, 502, 503, 504]);

/**
 * What one bulk item's status says of its document. No item or no status for a document (an answer shorter than
 * the request, or one this code does not understand) is `unanswered`: neither written nor refused, so it is sent
 * again, never counted as indexed and never dead-lettered as if Elasticsearch had refused it.
 */
export function itemVerdict(
  status: number | undefined,
): "indexed" | "duplicate" | "retry" | "dead" | "unanswered" {
  if (status === undefined || !Number.isInteger(status) || status < 100) return "unanswered";
  if (status === 200 || status === 201) return "indexed";
  if (status === 409) return "duplicate";
  if (RETRYABLE_ITEM_STATUS.has(status)) return "retry";
  return "dead";
}

/**
 * Kafka → Elasticsearch. A partition's offset is committed only once its batch and every earlier one are written
 * (or dead-lettered), so nothing is committed past an unwritten record; the next batch is fetched and parsed while
 * the last requests of the one before are in flight. Documents are created with their deterministic id: a 409 means
 * "already there" and counts as written, so re-deliveries never duplicate. While Elasticsearch is unreachable the
 * batch is retried with backoff, heartbeating, so the partition is effectively paused and the group membership kept.
 */
export class Indexer implements Component {
  readonly name = "indexer";
  private readonly config: IndexerConfig;
  private readonly kafka: Kafka;
  private readonly elastic: Client;
  private readonly elasticSettings: ElasticSettings;
  private readonly logger: Logger;
  private readonly metrics: IndexerMetrics;
  private readonly layoutOf: () => IndexLayout;
  private layout: IndexLayout | undefined;
  private readonly topics: Record<string, StreamKind>;
  private readonly deadLetterTopic: string;
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private stopping = false;
  private lastBulkOk = true;
  private lastError: string | undefined;
  private readonly bulkSlots: Semaphore;
  /** Bulk bodies for reuse: one per slot and the next being built. */
  private readonly bodies: BufferPool;
  /** Per partition, the batches being written in the order they were read: when each may be committed. */
  private readonly commits = new CommitChains();
  /** Group joins so far: after one, kafkajs reads each partition again from its committed offset. */
  private generation = 0;
  /** Batches still being written after their handler returned: stop() waits for them. */
  private readonly writing = new Set<Promise<boolean>>();

  constructor(options: {
    config: IndexerConfig;
    kafka: Kafka;
    elastic: Client;
    elasticSettings: ElasticSettings;
    logger: Logger;
    metrics: IndexerMetrics;
    /** Where documents go: what setupIndices found, known once Elasticsearch answered (read at start). */
    layout: () => IndexLayout;
  }) {
    this.config = options.config;
    this.kafka = options.kafka;
    this.elastic = options.elastic;
    this.elasticSettings = options.elasticSettings;
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.layoutOf = options.layout;
    const prefix = options.config.topicPrefix;
    const topics = topicNames(prefix);
    this.topics = {
      [topics.logs]: "logs",
      [topics.lifecycle]: "lifecycle",
      [topics.spans]: "spans",
      [topics.metrics]: "metrics",
    };
    this.deadLetterTopic = topics.deadLetter;
    this.bulkSlots = new Semaphore(options.config.bulk.concurrency);
    this.bodies = new BufferPool({
      limitBytes:
        (options.config.bulk.concurrency + 1) * BufferPool.sizeClass(options.config.bulk.maxBytes * 1.25),
      minBytes: 64 << 10,
    });
  }

  get topicNames(): string[] {
    return [...Object.keys(this.topics), this.deadLetterTopic];
  }

  health() {
    return {
      healthy: !this.stopping && this.consumer !== undefined && this.lastBulkOk,
      details: { lastError: this.lastError ?? null },
    };
  }

  async start(): Promise<void> {
    this.layout = this.layoutOf();
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    this.consumer = this.kafka.consumer({
      groupId: this.config.groupId,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      maxBytesPerPartition: this.config.fetch.partitionBytes,
      maxBytes: this.config.fetch.maxBytes,
    });
    await this.consumer.connect();
    this.consumer.onGroupJoin((payload) => {
      this.generation++;
      this.logger.info(
        { groupId: payload.groupId, memberId: payload.memberId, assignment: payload.memberAssignment },
        "joined the consumer group",
      );
    });
    await this.consumer.subscribe({ topics: Object.keys(this.topics), fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // More partitions than bulk slots: the next batches are parsed while requests are in flight.
      partitionsConsumedConcurrently: 2 * this.config.bulk.concurrency,
      eachBatch: (payload) => this.onBatch(payload),
    });
  }

  async stop(deadline: AbortSignal): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const abort = () =>
      this.logger.warn("stop deadline reached while a batch was being written; it will be redelivered");
    deadline.addEventListener("abort", abort, { once: true });
    // No new batches; those being written finish (their retries notice `stopping`) and what was written is
    // committed while the group membership is still held. Then the group is left.
    await this.consumer?.stop().catch(() => {});
    await Promise.race([
      Promise.all(this.writing),
      new Promise((resolve) => deadline.addEventListener("abort", resolve, { once: true })),
    ]);
    await this.consumer?.disconnect().catch(() => {});
    await this.producer?.disconnect().catch(() => {});
    deadline.removeEventListener("abort", abort);
  }

  private onBatch(payload: EachBatchPayload): Promise<void> {
    const { topic, partition, messages } = payload.batch;
    // Batches of the spans topic are not traced: their spans would come back through it, without end.
    if (this.topics[topic] === "spans") return this.indexBatch(payload);
    return traced(
      `index ${topic}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          "messaging.system": "kafka",
          "messaging.destination.name": topic,
          "messaging.destination.partition.id": String(partition),
          "messaging.batch.message_count": messages.length,
        },
      },
      () => this.indexBatch(payload),
    );
  }

  private async indexBatch({
    batch,
    heartbeat,
    isRunning,
    isStale,
    resolveOffset,
  }: EachBatchPayload): Promise<void> {
    const kind = this.topics[batch.topic];
    if (!kind || batch.messages.length === 0) return;
    const dead: DeadLetter[] = [];
    const now = new Date();
    const layout = this.layout ?? this.layoutOf();
    const head = actionHead(layout.targets[kind]);
    const raws = rawBatch(layout.targets[kind], now);
    const abandoned = () => this.stopping || !isRunning() || isStale();
    // Each bulk request leaves as soon as its documents are made, while the rest of the batch is parsed:
    // Elasticsearch does not wait for a whole batch's parsing.
    const firstPass: Array<Promise<Pending[]>> = [];
    let chunk: Pending[] = [];
    let chunkBytes = 0;
    const add = (item: Pending) => {
      chunk.push(item);
      chunkBytes += pendingBytes(item);
    };
    for (const message of batch.messages) {
      const key = message.key ? message.key.toString() : null;
      const value = message.value;
      if (value === null) continue;
      // A message holds one document or several separated by "\n" (core/kafka/packing.ts).
      for (let start = 0, index = 0; start <= value.length; index++) {
        const newline = value.indexOf(10, start);
        const end = newline === -1 ? value.length : newline;
        const origin = { topic: batch.topic, partition: batch.partition, offset: message.offset, index };
        const raw = kind === "logs" ? shipperLogDocument(value, start, end, raws) : undefined;
        if (raw) add({ kind, key, origin, action: undefined, source: raw });
        else {
          const text = value.toString("utf8", start, end);
          try {
            const { id, document, flags } = toDocument(kind, text, origin, now);
            if (flags) for (const flag of flags) this.metrics.degraded.inc({ flag });
            add({
              kind,
              key,
              origin,
              action: `${head}${JSON.stringify(id)}}}`,
              source: JSON.stringify(document),
            });
          } catch (error) {
            if (!(error instanceof PermanentError)) throw error;
            dead.push({ origin, key, original: text, reason: error.message, type: error.code });
          }
        }
        start = end + 1;
      }
      if (chunkBytes >= this.config.bulk.maxBytes) {
        firstPass.push(handled(this.writeChunk(chunk, dead, heartbeat, abandoned)));
        chunk = [];
        chunkBytes = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    if (chunk.length > 0) firstPass.push(handled(this.writeChunk(chunk, dead, heartbeat, abandoned)));
    const last = batch.messages[batch.messages.length - 1]?.offset as string;
    // Kept per partition after this handler returns: a holder of its own, so that it keeps no batch alive.
    const outcome: { failure?: Error } = {};
    // This batch is written (or dead-lettered) in the background; false if abandoned (rebalanced or stopping:
    // whoever owns the partition next reads it again from the committed offset).
    const written = (async () => {
      const ok = await this.retryUntilWritten(
        Promise.all(firstPass).then((retries) => retries.flat()),
        dead,
        heartbeat,
        abandoned,
      );
      if (!ok) return false;
      await this.deadLetter(dead, heartbeat, abandoned);
      return true;
    })().catch((error: Error) => {
      // A heartbeat refused (the group is rebalancing) or the dead-letter write given up: not written, not
      // committed; the partition's next handler throws it to kafkajs, which rejoins and reads from the commit.
      if (!this.stopping) {
        this.logger.warn(
          { topic: batch.topic, partition: batch.partition, err: error.message },
          "batch abandoned",
        );
        outcome.failure = error;
      }
      return false;
    });
    // Committed only when this batch and every earlier one of the partition are written: never past an unwritten
    // record. A commit that fails is not retried: the next batch's commit covers this one.
    const commit = async () => {
      if (isStale() || !this.consumer) return;
      try {
        const offset = (BigInt(last) + 1n).toString();
        await this.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset }]);
        this.logger.debug({ topic: batch.topic, partition: batch.partition, offset }, "offset committed");
        this.metrics.lag.set(
          { topic: batch.topic, partition: String(batch.partition) },
          Math.max(0, Number(batch.highWatermark) - Number(last) - 1),
        );
      } catch (error) {
        this.logger.warn(
          { topic: batch.topic, partition: batch.partition, err: (error as Error).message },
          "commit failed",
        );
      }
    };
    const chained = this.commits.add(
      `${batch.topic}|${batch.partition}`,
      this.generation,
      written,
      outcome,
      commit,
      () => this.generation,
    );
    this.writing.add(chained.upToHere);
    void chained.upToHere.finally(() => this.writing.delete(chained.upToHere));
    // The fetch position moves on now, so the next batch is fetched and parsed while this one is written (kafkajs
    // fetches again only once the handlers of the last fetch returned). At most two batches per partition: the
    // handler returns once the partition's previous batch is written.
    resolveOffset(last);
    await chained.earlier;
    const failed = chained.earlierFailure();
    if (failed) throw failed;
  }

  /**
   * One bulk request in one of the indexer's slots, shared with every other partition's: one large partition
   * keeps them all busy once the others are done. Returns the documents to retry.
   */
  private writeChunk(
    chunk: Pending[],
    dead: DeadLetter[],
    heartbeat: () => Promise<void>,
    abandoned: () => boolean,
  ): Promise<Pending[]> {
    return this.bulkSlots.run(async () => {
      if (abandoned()) return chunk;
      const retry = await this.bulk(chunk, dead);
      await heartbeat();
      return retry;
    });
  }

  /** Retries, with backoff, what the first pass could not write (or dead-letter); false if abandoned first. */
  private async retryUntilWritten(
    firstPass: Promise<Pending[]>,
    dead: DeadLetter[],
    heartbeat: () => Promise<void>,
    abandoned: () => boolean,
  ): Promise<boolean> {
    let remaining = await firstPass;
    for (let attempt = 0; ; attempt++) {
      // Written is written, even while stopping: committed before the group is left, it is not read again.
      if (remaining.length === 0) {
        this.lastBulkOk = true;
        this.lastError = undefined;
        return true;
      }
      if (abandoned()) return false;
      const wait = backoffDelay(attempt, {
        initialDelayMs: 200,
        maxDelayMs: this.config.bulk.maxRetryDelayMs,
      });
      this.logger.warn(
        { documents: remaining.length, attempt, waitMs: wait, err: this.lastError },
        "retrying documents Elasticsearch did not take",
      );
      for (let waited = 0; waited < wait && !abandoned(); waited += 1_000) {
        await delay(Math.min(1_000, wait - waited));
        await heartbeat();
      }
      if (abandoned()) return false;
      const retries = await Promise.all(
        [...this.chunks(remaining)].map((chunk) => this.writeChunk(chunk, dead, heartbeat, abandoned)),
      );
      remaining = retries.flat();
    }
  }

  private *chunks(items: Pending[]): Generator<Pending[]> {
    let chunk: Pending[] = [];
    let bytes = 0;
    for (const item of items) {
      const size = pendingBytes(item);
      if (chunk.length > 0 && bytes + size > this.config.bulk.maxBytes) {
        yield chunk;
        chunk = [];
        bytes = 0;
      }
      chunk.push(item);
      bytes += size;
    }
    if (chunk.length > 0) yield chunk;
  }

  /** One bulk request; returns what should be retried, moves permanent failures to `dead`. */
  private async bulk(chunk: Pending[], dead: DeadLetter[]): Promise<Pending[]> {
    // Bodies come from a pool and go back once Elasticsearch has answered 2xx, which it does only after reading
    // the whole request: 5 MiB buffers left to the collector were much of the indexer's peak memory.
    let pooled: Buffer | undefined;
    const body = bulkBody(chunk, (bytes) => {
      pooled = this.bodies.take(bytes);
      return pooled;
    });
    const timer = this.metrics.bulkSeconds.startTimer();
    let response: Awaited<ReturnType<Client["bulk"]>>;
    try {
      // Only each item's status and error come back: the response of a 5 MB bulk shrinks to a few percent, less
      // for Elasticsearch to write and for us to parse.
      response = await this.elastic.bulk({
        operations: body as never,
        refresh: false,
        filter_path: ["errors", "items.*.status", "items.*.error"],
      });
    } catch (error) {
      timer();
      if (error instanceof errors.ResponseError && error.statusCode === 413 && chunk.length > 1) {
        const half = Math.ceil(chunk.length / 2);
        this.metrics.retries.inc({ status: "413" });
        return [
          ...(await this.bulk(chunk.slice(0, half), dead)),
          ...(await this.bulk(chunk.slice(half), dead)),
        ];
      }
      const translated = translateElasticError(error, this.elasticSettings);
      this.lastBulkOk = false;
      this.lastError = translated.message;
      this.metrics.retries.inc({
        status: error instanceof errors.ResponseError ? String(error.statusCode) : "unreachable",
      });
      return chunk;
    }
    timer();
    if (pooled) this.bodies.give(pooled);
    const retry: Pending[] = [];
    // Counted per request, not per document: a labelled counter's inc costs more than the rest of the loop.
    const indexed = new Map<StreamKind, number>();
    const duplicates = new Map<StreamKind, number>();
    const items = response.items ?? [];
    let unanswered = 0;
    chunk.forEach((item, i) => {
      const entry = items[i];
      const result = entry ? (entry.create ?? Object.values(entry)[0]) : undefined;
      const status = result?.status;
      const verdict = itemVerdict(status);
      if (verdict === "indexed") indexed.set(item.kind, (indexed.get(item.kind) ?? 0) + 1);
      else if (verdict === "duplicate") duplicates.set(item.kind, (duplicates.get(item.kind) ?? 0) + 1);
      else if (verdict === "retry") {
        this.metrics.retries.inc({ status: String(status) });
        retry.push(item);
      } else if (verdict === "unanswered") {
        unanswered++;
        retry.push(item);
      } else {
        const cause = result?.error as { type?: string; reason?: string } | undefined;
        const causedBy = causeChain(cause);
        dead.push({
          origin: item.origin,
          key: item.key,
          original: typeof item.source === "string" ? item.source : rawDocumentText(item.source),
          reason: cause?.reason ?? `status ${status}`,
          type: cause?.type ?? "bulk_item_error",
          status,
          ...(causedBy ? { causedBy } : {}),
        });
      }
    });
    if (unanswered > 0) {
      // Not known written and not known refused: sent again (the same ids: a copy already there answers 409).
      this.metrics.retries.inc({ status: "unanswered" }, unanswered);
      this.lastError = `Elasticsearch's bulk answer had no status for ${unanswered} of ${chunk.length} documents (${items.length} items)`;
      this.logger.warn({ documents: chunk.length, items: items.length, unanswered }, this.lastError);
    }
    for (const [kind, count] of indexed) this.metrics.indexed.inc({ kind }, count);
    for (const [kind, count] of duplicates) this.metrics.duplicates.inc({ kind }, count);
    return retry;
  }

  private async deadLetter(
    dead: DeadLetter[],
    heartbeat: () => Promise<void>,
    abandoned: () => boolean,
  ): Promise<void> {
    if (dead.length === 0) return;
    const messages = dead.map((entry) => ({
      key: entry.key,
      value: JSON.stringify({
        "@timestamp": new Date().toISOString(),
        error: {
          type: entry.type,
          reason: entry.reason,
          ...(entry.status ? { status: entry.status } : {}),
          ...(entry.causedBy ? { caused_by: entry.causedBy } : {}),
        },
        kafka: entry.origin,
        original: entry.original,
      }),
    }));
    for (let attempt = 0; ; attempt++) {
      try {
        await this.producer?.send({ topic: this.deadLetterTopic, acks: -1, messages });
        const reasons = dead.map((entry) => reasonLabel(entry.type, entry.causedBy));
        for (const reason of reasons) this.metrics.deadLettered.inc({ reason });
        this.logger.warn({ records: dead.length, reasons: [...new Set(reasons)] }, "records dead-lettered");
        return;
      } catch (error) {
        if (abandoned()) throw error;
        this.logger.warn({ err: (error as Error).message }, "dead-letter topic unavailable, retrying");
        await delay(backoffDelay(attempt, { initialDelayMs: 200, maxDelayMs: 5_000 }));
        await heartbeat();
      }
    }
  }
}

/** Marks a promise as handled now (it is awaited later, after more work): a rejection meanwhile is no crash. */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

/** About a document's size in the bulk body, its action line included (characters of text, bytes of raw). */
function pendingBytes({ action, source }: Pending): number {
  return typeof source === "string" ? (action?.length ?? 0) + source.length + 2 : rawBytes(source);
}
