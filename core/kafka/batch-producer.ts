import { setTimeout as delay } from "node:timers/promises";
import { SpanKind } from "@opentelemetry/api";
import type { Kafka, Message, Producer, TopicMessages } from "kafkajs";
import type { Component } from "../lifecycle.ts";
import type { Logger } from "../logger.ts";
import { traced } from "../observability/tracing.ts";
import { backoffDelay } from "../retry.ts";
import { BufferPool } from "./buffer-pool.ts";
import { KAFKAJS_COMPRESSION, kafkajsOf } from "./kafkajs-adapter.ts";
import { RECORDS_HEADER } from "./packing.ts";
import { murmur2, murmur2Partitioner } from "./partitioner.ts";
import type { Compression, KafkaPort } from "./port.ts";

export type { Compression } from "./port.ts";

const COMPRESSION = KAFKAJS_COMPRESSION;

export interface OutboundRecord {
  topic: string;
  key: string;
  value: string;
  headers?: Record<string, string> | undefined;
  /**
   * Called once Kafka acknowledged the record (acks=all), in enqueue order per key, with its `position`. Consecutive
   * records of one key that pass the very same callback are acknowledged by one call with the last one's
   * position: a watermark (the shipper's offsets), without a callback kept per record.
   */
  onAck: (position: number) => void;
  position?: number;
}

/** A record that knows its size in bytes and writes itself at an offset of a pack buffer. */
export interface RecordWriter {
  readonly bytes: number;
  writeInto(target: Buffer, offset: number): void;
}

export interface BatchProducerMetrics {
  sent(records: number, bytes: number): void;
  failed(error: unknown): void;
  deadLettered(records: number): void;
}

/**
 * Records written into one buffer as they are enqueued: one Kafka message. Their JSON text lives only until it is
 * copied here, so nothing per record waits in the heap for the acknowledgement. A pack holds one key's records, or,
 * in a topic packed by partition, the records of every key of one partition.
 */
interface Pack {
  topic: string;
  /** The key of every record in it; undefined once records of another key joined it (the message has no key). */
  key: string | undefined;
  /** In a topic packed by partition: the partition it goes to (the one Kafka's partitioner gives its keys). */
  partition: number | undefined;
  headers: Record<string, string> | undefined;
  buffer: Buffer;
  bytes: number;
  /** What it counts against the in-flight budget: its bytes and a per-message overhead. */
  cost: number;
  records: number;
  acks: Array<(position: number) => void>;
  positions: number[];
  lane: Lane;
}

/**
 * One sender: its own idempotent kafkajs producer (one request in flight) and the packs waiting for it. Each key
 * belongs to one lane, so a file's records stay in order; lanes send side by side.
 */
interface Lane {
  producer: Producer | undefined;
  /** Packs that take no more records, in the order they were closed. */
  ready: Pack[];
  queuedBytes: number;
  wake: (() => void) | undefined;
  /** `sendQueued` was called since the last batch was taken: what is queued goes without the linger. */
  sendNow: boolean;
  loop: Promise<void> | undefined;
  consecutiveFailures: number;
}

/**
 * A topic whose records are packed by partition: per partition, the pack still taking records and the newest pack
 * not yet acknowledged (open, queued or in flight).
 */
interface PartitionedTopic {
  partitions: number;
  open: Array<Pack | undefined>;
  newest: Array<Pack | undefined>;
}

const FIRST_PACK_BYTES = 4 * 1024;

const MESSAGE_OVERHEAD_BYTES = 64;

/**
 * An idempotent, acks=all producer that packs, batches by size and linger and sends one batch at a time per lane
 * (a key always goes through the same lane), so a key's acknowledgements arrive in enqueue order (a per-file
 * watermark is then simply the last acknowledged offset).
 * A failed batch is retried, with backoff, until it goes through: nothing is dropped. `waitForRoom` is the
 * backpressure: it resolves while less than `inflightBytes` wait for acknowledgement.
 */
export class BatchProducer implements Component {
  readonly name = "kafka-producer";
  private readonly kafka: Kafka;
  private readonly port: KafkaPort;
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
    topics: string[];
  };
  private readonly metrics: BatchProducerMetrics | undefined;
  private readonly lanes: Lane[];
  /** Packs still taking records, one per topic and key, in the order they were opened (topics packed by key). */
  private open = new Map<string, Pack>();
  /** Per topic and key, the newest pack not yet acknowledged (open, queued or in flight): see `advance`. */
  private readonly newest = new Map<string, Pack>();
  /** Topics packed by partition (their partition counts learned at start), and their packs. */
  private readonly partitioned = new Map<string, PartitionedTopic>();
  /** The pack the last record joined, and that record's key: the next record of that key joins it too. */
  private lastPack: Pack | undefined;
  private lastKey: string | undefined;
  private readonly buffers: BufferPool;
  /** `enqueue`'s record as a RecordWriter, reused: its text is copied into the pack at once. */
  private readonly stringWriter = {
    value: "",
    bytes: 0,
    writeInto(target: Buffer, offset: number) {
      target.write(this.value, offset);
    },
  };
  private inflight = 0;
  private roomWaiters: Array<() => void> = [];
  private stopping = false;
  private hardStop = new AbortController();
  lastSuccessAt = 0;
  lastError: string | undefined;

  constructor(options: {
    kafka: KafkaPort;
    logger: Logger;
    batchBytes: number;
    lingerMs: number;
    inflightBytes: number;
    compression: Compression;
    packBytes?: number;
    /**
     * Topics whose records are packed by partition rather than by key (with packBytes): their partition counts are
     * learned at start, and consecutive records of any keys of one partition share a message, each key still in
     * the partition Kafka's partitioner gives it. Many files (or traces) each writing a little then make a few
     * large messages instead of one small message per key per linger. Other topics are packed by key.
     */
    topics?: string[];
    /**
     * Producers sending side by side, keys spread over them (1: one request in flight, acknowledgements in enqueue
     * order). With idempotence each has one request in flight; with many keys, more lanes keep Kafka busier.
     */
    lanes?: number;
    deadLetterTopic: string;
    metrics?: BatchProducerMetrics;
  }) {
    // The batch producer is shaped around kafkajs (its lanes, its per-partition grouping): the client behind the port.
    this.kafka = kafkajsOf(options.kafka);
    this.port = options.kafka;
    this.logger = options.logger;
    this.options = {
      ...options,
      packBytes: options.packBytes ?? 0,
      topics: options.topics ?? [],
      // Uncompressed, a partition's share of a batch must stay under the broker's default message.max.bytes
      // (1 MiB): past it every send is refused, split and sent again (far slower: bench/tuning.md).
      batchBytes:
        options.compression === "none" ? Math.min(options.batchBytes, 900 << 10) : options.batchBytes,
    };
    this.metrics = options.metrics;
    // Pack buffers, reused once Kafka acknowledged them.
    this.buffers = new BufferPool({ limitBytes: Math.min(options.inflightBytes, 2 << 20), minBytes: 1024 });
    this.lanes = Array.from({ length: Math.max(1, options.lanes ?? 1) }, () => ({
      producer: undefined,
      ready: [],
      queuedBytes: 0,
      wake: undefined,
      sendNow: false,
      loop: undefined,
      consecutiveFailures: 0,
    }));
  }

  get inflightBytes(): number {
    return this.inflight;
  }

  get healthy(): boolean {
    return this.lanes.every((lane) => lane.consecutiveFailures === 0);
  }

  async start(): Promise<void> {
    await this.learnPartitions();
    for (const lane of this.lanes) {
      lane.producer = this.newProducer();
      await lane.producer.connect();
    }
    for (const lane of this.lanes) lane.loop = this.run(lane);
  }

  enqueue(record: OutboundRecord): void {
    const writer = this.stringWriter;
    writer.value = record.value;
    writer.bytes = Buffer.byteLength(record.value);
    this.enqueueWritten(record.topic, record.key, record.headers, writer, record.onAck, record.position ?? 0);
    writer.value = "";
  }

  /**
   * `enqueue` for a record whose size is known and that writes itself into the pack: the shipper's plain-text
   * lines never become a string (LogDocumentTemplate.preparePlain).
   */
  enqueueWritten(
    topic: string,
    key: string,
    headers: Record<string, string> | undefined,
    writer: RecordWriter,
    onAck: (position: number) => void,
    position: number,
  ): void {
    const bytes = writer.bytes;
    let pack: Pack | undefined;
    let partition: number | undefined;
    const last = this.lastPack;
    if (last && this.lastKey === key && last.topic === topic) pack = last;
    else {
      const partitioned = this.partitioned.get(topic);
      if (partitioned) {
        partition = partitionOf(key, partitioned.partitions);
        pack = partitioned.open[partition];
      } else pack = this.open.get(`${topic}\u0000${key}`);
    }
    if (pack && pack.bytes + 1 + bytes > this.options.packBytes) {
      partition = pack.partition;
      this.close(pack);
      pack = undefined;
    }
    if (pack) {
      if (pack.key !== key) pack.key = undefined;
      this.joinHeaders(pack, headers);
      if (pack.buffer.length < pack.bytes + 1 + bytes) this.grow(pack, pack.bytes + 1 + bytes);
      pack.buffer[pack.bytes] = 10;
      writer.writeInto(pack.buffer, pack.bytes + 1);
      pack.bytes += 1 + bytes;
      pack.records++;
      this.account(pack, bytes + 1);
    } else {
      pack = this.newPack(topic, key, headers, bytes, partition);
      writer.writeInto(pack.buffer, 0);
      pack.bytes = bytes;
      this.account(pack, bytes + key.length + MESSAGE_OVERHEAD_BYTES);
    }
    this.noteAck(pack, onAck, position);
    this.lastKey = key;
  }

  /**
   * A position with no record (a line filtered out): `onAck(position)` runs once every record enqueued before it
   * under `key` is acknowledged, in order with them; at once if none is waiting. No record joins a pack this way.
   */
  advance(topic: string, key: string, onAck: (position: number) => void, position: number): void {
    const partitioned = this.partitioned.get(topic);
    const pack = partitioned
      ? partitioned.newest[partitionOf(key, partitioned.partitions)]
      : this.newest.get(`${topic}\u0000${key}`);
    if (!pack) {
      onAck(position);
      return;
    }
    const last = pack.acks.length - 1;
    if (last >= 0 && pack.acks[last] === onAck) pack.positions[last] = position;
    else {
      pack.acks.push(onAck);
      pack.positions.push(position);
    }
  }

  private joinHeaders(pack: Pack, headers: Record<string, string> | undefined): void {
    if (pack.headers !== headers && !sameHeaders(pack.headers, headers)) pack.headers = undefined;
  }

  /** `partition`: known only in a topic packed by partition (undefined: worked out here if it is one). */
  private newPack(
    topic: string,
    key: string,
    headers: Record<string, string> | undefined,
    bytes: number,
    partition?: number,
  ): Pack {
    const partitioned = this.partitioned.get(topic);
    if (partitioned && partition === undefined) partition = partitionOf(key, partitioned.partitions);
    const pack: Pack = {
      topic,
      key,
      partition,
      headers,
      buffer: this.buffers.take(Math.max(bytes, Math.min(FIRST_PACK_BYTES, this.options.packBytes))),
      bytes: 0,
      cost: 0,
      records: 1,
      acks: [],
      positions: [],
      lane: partition === undefined ? this.laneOf(key) : (this.lanes[partition % this.lanes.length] as Lane),
    };
    if (partitioned && partition !== undefined) {
      partitioned.open[partition] = pack;
      partitioned.newest[partition] = pack;
      return pack;
    }
    const name = `${topic}\u0000${key}`;
    if (this.options.packBytes > 0) this.open.set(name, pack);
    else pack.lane.ready.push(pack);
    this.newest.set(name, pack);
    return pack;
  }

  /** A key's lane in a topic packed by key (in one packed by partition, the partition's). */
  private laneOf(key: string): Lane {
    const lanes = this.lanes;
    if (lanes.length === 1) return lanes[0] as Lane;
    let hash = 0;
    for (let i = 0; i < key.length; i++) hash = (Math.imul(hash, 31) + key.charCodeAt(i)) | 0;
    return lanes[(hash >>> 0) % lanes.length] as Lane;
  }

  private noteAck(pack: Pack, onAck: (position: number) => void, position: number): void {
    const last = pack.acks.length - 1;
    if (last >= 0 && pack.acks[last] === onAck) pack.positions[last] = position;
    else {
      pack.acks.push(onAck);
      pack.positions.push(position);
    }
    this.lastPack = this.options.packBytes > 0 ? pack : undefined;
  }

  /** Less than `inflightBytes` wait for acknowledgement: what `waitForRoom` would resolve at once. */
  get hasRoom(): boolean {
    return this.inflight < this.options.inflightBytes;
  }

  waitForRoom(): Promise<void> {
    if (this.inflight < this.options.inflightBytes) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /**
   * What is queued now is sent without waiting out the linger (as soon as its lane has no request in flight): the
   * caller knows nothing more is coming soon, as when a pass over the changed files has read them all.
   */
  sendQueued(): void {
    for (const lane of this.lanes) {
      if (lane.queuedBytes === 0) continue;
      lane.sendNow = true;
      lane.wake?.();
    }
  }

  /** Sends what is queued, until the deadline; then gives up on the rest (it was never acknowledged). */
  async stop(deadline: AbortSignal): Promise<void> {
    this.stopping = true;
    for (const lane of this.lanes) lane.wake?.();
    const onDeadline = () => this.hardStop.abort();
    deadline.addEventListener("abort", onDeadline, { once: true });
    try {
      await Promise.all(this.lanes.map((lane) => lane.loop));
    } finally {
      deadline.removeEventListener("abort", onDeadline);
      for (const resolve of this.roomWaiters.splice(0)) resolve();
      for (const lane of this.lanes) {
        await lane.producer?.disconnect().catch(() => {});
        lane.producer = undefined;
      }
    }
  }

  private account(pack: Pack, bytes: number): void {
    const lane = pack.lane;
    const wasEmpty = lane.queuedBytes === 0;
    pack.cost += bytes;
    lane.queuedBytes += bytes;
    this.inflight += bytes;
    // Wake the sender when it idles on an empty queue, or to cut the linger short once a batch is full.
    if (wasEmpty || lane.queuedBytes >= this.options.batchBytes) lane.wake?.();
  }

  private grow(pack: Pack, needed: number): void {
    const buffer = this.buffers.take(
      Math.max(needed, Math.min(2 * pack.buffer.length, this.options.packBytes)),
    );
    pack.buffer.copy(buffer, 0, 0, pack.bytes);
    this.buffers.give(pack.buffer);
    pack.buffer = buffer;
  }

  private close(pack: Pack): void {
    this.forgetOpen(pack);
    pack.lane.ready.push(pack);
  }

  /** The pack takes no more records. */
  private forgetOpen(pack: Pack): void {
    if (pack.partition === undefined) this.open.delete(`${pack.topic}\u0000${pack.key}`);
    else {
      const open = this.partitioned.get(pack.topic)?.open;
      if (open?.[pack.partition] === pack) open[pack.partition] = undefined;
    }
    if (this.lastPack === pack) this.lastPack = undefined;
  }

  /** The pack is acknowledged: if it was its key's (or partition's) newest, nothing of that key waits any more. */
  private forgetNewest(pack: Pack): void {
    if (pack.partition === undefined) {
      const name = `${pack.topic}\u0000${pack.key}`;
      if (this.newest.get(name) === pack) this.newest.delete(name);
      return;
    }
    const newest = this.partitioned.get(pack.topic)?.newest;
    if (newest?.[pack.partition] === pack) newest[pack.partition] = undefined;
  }

  /** The partition counts of the topics packed by partition (packed records only), from the cluster's metadata. */
  private async learnPartitions(): Promise<void> {
    if (this.options.packBytes <= 0 || this.options.topics.length === 0) return;
    const admin = this.port.admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: this.options.topics });
      for (const { name, partitions } of topics) {
        if (partitions.length === 0 || this.partitioned.has(name)) continue;
        this.partitioned.set(name, {
          partitions: partitions.length,
          open: new Array(partitions.length).fill(undefined),
          newest: new Array(partitions.length).fill(undefined),
        });
      }
    } finally {
      await admin.disconnect();
    }
  }

  private newProducer(): Producer {
    return this.kafka.producer({
      createPartitioner: murmur2Partitioner,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2_000 },
    });
  }

  private async run(lane: Lane): Promise<void> {
    while (!this.hardStop.signal.aborted) {
      if (lane.queuedBytes === 0) {
        if (this.stopping) return;
        await new Promise<void>((resolve) => {
          lane.wake = resolve;
        });
        lane.wake = undefined;
        continue;
      }
      if (
        lane.queuedBytes < this.options.batchBytes &&
        !this.stopping &&
        !lane.sendNow &&
        this.options.lingerMs > 0
      ) {
        // The timer goes when the lane is woken: left running, a long linger would hold the process at its exit.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.options.lingerMs);
          lane.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        lane.wake = undefined;
      }
      lane.sendNow = false;
      const batch = this.takeBatch(lane);
      const sent = await this.sendUntilAcknowledged(batch, lane);
      if (!sent) return;
      let cost = 0;
      let bytes = 0;
      let records = 0;
      for (const pack of batch) {
        cost += pack.cost;
        bytes += pack.bytes;
        records += pack.records;
        for (let i = 0; i < pack.acks.length; i++) pack.acks[i]?.(pack.positions[i] ?? 0);
        this.forgetNewest(pack);
        this.buffers.give(pack.buffer);
      }
      this.inflight -= cost;
      this.metrics?.sent(records, bytes);
      while (this.roomWaiters.length > 0 && this.inflight < this.options.inflightBytes)
        this.roomWaiters.shift()?.();
    }
  }

  /** Closed packs first, in order; open ones join only when every closed pack fits (a key's order holds). */
  private takeBatch(lane: Lane): Pack[] {
    const ready = lane.ready;
    let cost = 0;
    let count = 0;
    while (count < ready.length) {
      const next = (ready[count] as Pack).cost;
      if (count > 0 && cost + next > this.options.batchBytes) break;
      cost += next;
      count++;
    }
    const batch = ready.splice(0, count);
    if (ready.length === 0) {
      const take = (pack: Pack): boolean => {
        if (batch.length > 0 && cost + pack.cost > this.options.batchBytes) return false;
        cost += pack.cost;
        batch.push(pack);
        this.forgetOpen(pack);
        return true;
      };
      let full = false;
      for (const pack of this.open.values()) {
        if (pack.lane === lane && !take(pack)) {
          full = true;
          break;
        }
      }
      for (const { open } of this.partitioned.values()) {
        for (const pack of open) {
          if (full) break;
          if (pack?.lane === lane && !take(pack)) full = true;
        }
      }
    }
    lane.queuedBytes -= cost;
    return batch;
  }

  /** Resolves true once Kafka acknowledged the whole batch, false if stopped by the hard deadline first. */
  private async sendUntilAcknowledged(batch: Pack[], lane: Lane): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      if (this.hardStop.signal.aborted) return false;
      try {
        await traced(
          "kafka produce",
          {
            kind: SpanKind.PRODUCER,
            attributes: { "messaging.system": "kafka", "messaging.batch.message_count": batch.length },
          },
          () => this.send(batch, lane),
        );
        lane.consecutiveFailures = 0;
        this.lastSuccessAt = Date.now();
        this.lastError = undefined;
        return true;
      } catch (error) {
        if (isTooLarge(error) && batch.length > 1) {
          // Split: each half goes through on its own, in order.
          const half = Math.ceil(batch.length / 2);
          return (
            (await this.sendUntilAcknowledged(batch.slice(0, half), lane)) &&
            (await this.sendUntilAcknowledged(batch.slice(half), lane))
          );
        }
        const halves = isTooLarge(error) ? splitPack(batch[0] as Pack) : undefined;
        if (halves) return this.sendUntilAcknowledged(halves, lane);
        if (isTooLarge(error)) {
          await this.deadLetter(batch[0] as Pack, error, lane);
          return true;
        }
        lane.consecutiveFailures++;
        this.lastError = (error as Error).message;
        this.metrics?.failed(error);
        const wait = backoffDelay(attempt, { initialDelayMs: 100, maxDelayMs: 5_000 });
        this.logger.warn(
          { err: (error as Error).message, attempt, waitMs: wait, messages: batch.length },
          "kafka send failed, retrying",
        );
        if (lane.consecutiveFailures % 5 === 0) {
          // A fresh producer gets a fresh producer id: recovers from sequence errors after a broker restart.
          await lane.producer?.disconnect().catch(() => {});
          lane.producer = this.newProducer();
          await lane.producer.connect().catch(() => {});
        }
        await delay(wait, undefined, { signal: this.hardStop.signal }).catch(() => {});
      }
    }
  }

  private async send(batch: Pack[], lane: Lane): Promise<void> {
    const byTopic = new Map<string, Message[]>();
    for (const pack of batch) {
      let messages = byTopic.get(pack.topic);
      if (!messages) {
        messages = [];
        byTopic.set(pack.topic, messages);
      }
      messages.push({
        key: pack.key ?? null,
        ...(pack.partition === undefined ? {} : { partition: pack.partition }),
        value: pack.buffer.subarray(0, pack.bytes),
        headers: { ...pack.headers, [RECORDS_HEADER]: String(pack.records) },
      });
    }
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    if (!lane.producer) throw new Error("producer not started");
    await lane.producer.sendBatch({
      topicMessages,
      acks: -1,
      timeout: 30_000,
      compression: COMPRESSION[this.options.compression],
    });
  }

  private async deadLetter(pack: Pack, error: unknown, lane: Lane): Promise<void> {
    this.logger.error(
      { topic: pack.topic, bytes: pack.bytes },
      "record larger than the broker accepts: dead-lettered",
    );
    const value = JSON.stringify({
      "@timestamp": new Date().toISOString(),
      error: { type: "record_too_large", message: (error as Error).message },
      original: {
        topic: pack.topic,
        key: pack.key ?? null,
        bytes: pack.bytes,
        head: pack.buffer.subarray(0, 4_096).toString("utf8"),
      },
    });
    const buffer = Buffer.from(value);
    await this.sendUntilAcknowledged(
      [
        {
          topic: this.options.deadLetterTopic,
          key: pack.key,
          partition: undefined,
          headers: undefined,
          buffer,
          bytes: buffer.length,
          cost: 0,
          records: 1,
          acks: [],
          positions: [],
          lane,
        },
      ],
      lane,
    );
    this.metrics?.deadLettered(1);
  }
}

/** Kafka's partition of a key among `partitions` (murmur2Partitioner's). */
function partitionOf(key: string, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

/** A pack of several records the broker refused as too large: two packs, split between records (no acks). */
function splitPack(pack: Pack): Pack[] | undefined {
  if (pack.records < 2) return undefined;
  const cut = pack.buffer.indexOf(10, Math.floor(pack.bytes / 2));
  const at = cut !== -1 && cut < pack.bytes ? cut : pack.buffer.subarray(0, pack.bytes).lastIndexOf(10);
  if (at <= 0) return undefined;
  const part = (buffer: Buffer): Pack => {
    let records = 1;
    for (let i = buffer.indexOf(10); i !== -1; i = buffer.indexOf(10, i + 1)) records++;
    return { ...pack, buffer, bytes: buffer.length, records, acks: [], positions: [] };
  };
  return [part(pack.buffer.subarray(0, at)), part(pack.buffer.subarray(at + 1, pack.bytes))];
}

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
