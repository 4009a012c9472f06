/**
 * Reads every partition of a topic without a consumer group: the positions are taken when it starts and kept
 * here, so nothing the broker does to a group (a session that expires while the process is busy, a rebalance
 * that resets a partition with no committed offset to its end) can skip a record, and nothing is left on the
 * broker afterwards. One long poll covers all partitions (PartitionReader.fetchMany).
 *
 * For processes that read a topic for as long as they run (the controller following its commands' outcomes, a
 * CLI waiting for an answer) or up to where it ended (rebuilding state from history); not for daemons that must
 * resume where they stopped after a restart (those keep a position: agent/control-feed.ts, or a group).
 */
import type { Logger } from "pino";
import { backoffDelay } from "../retry.ts";
import { type InboundMessage, type KafkaPort, OffsetOutOfRangeError, type PartitionReader } from "./port.ts";

export interface TopicFollowerOptions {
  topic: string;
  /** Where each partition begins: its end when start() is called, or its first record at or after a time. */
  from: "end" | { timestampMs: number };
  /**
   * Read only up to each partition's end as it was at start(), then `done` resolves (a history read).
   * Otherwise follow until stop().
   */
  untilEnd?: boolean;
  /**
   * Called in offset order within a partition. A handler that throws is called again with the same record after a
   * backoff (one log line per streak), like a consumer group's redelivery: nothing is skipped, nothing after it in
   * its partition is handed on first.
   */
  onMessage(message: InboundMessage, partition: number): void | Promise<void>;
  logger?: Pick<Logger, "warn" | "info">;
  /** How long one fetch waits for a first record (default 1 s): the latency of stop(), not of records. */
  maxWaitMs?: number;
  /** How often the partition count is read again (default 30 s); a new partition is read from its beginning. */
  partitionsCheckMs?: number;
}

export class TopicFollower {
  private readonly reader: PartitionReader;
  private readonly options: TopicFollowerOptions;
  private readonly positions = new Map<number, bigint>();
  private readonly ends = new Map<number, bigint>();
  private running = false;
  private loop: Promise<void> | undefined;
  private checkedAt = 0;
  private turn = 0;
  /** Records handed to onMessage. */
  read = 0;
  /** Resolves when an `untilEnd` read reached every end, or when stop() was called. */
  readonly done: Promise<void>;
  private settle!: { resolve: () => void };

  constructor(kafka: KafkaPort, options: TopicFollowerOptions) {
    this.reader = kafka.partitionReader();
    this.options = options;
    this.done = new Promise<void>((resolve) => {
      this.settle = { resolve };
    });
  }

  /** Takes every partition's position; a record written after this resolves is read. */
  async start(): Promise<void> {
    const { topic, from } = this.options;
    const partitions = await this.reader.partitions(topic);
    this.checkedAt = Date.now();
    await Promise.all(
      Array.from({ length: partitions }, async (_, partition) => {
        const end = BigInt(await this.reader.offset(topic, partition, "latest"));
        const begin =
          from === "end"
            ? end
            : BigInt(await this.reader.offset(topic, partition, { timestampMs: from.timestampMs }));
        this.positions.set(partition, begin);
        this.ends.set(partition, end);
      }),
    );
    this.running = true;
    this.loop = this.run();
  }

  /** Stops after the fetch in flight (at most maxWaitMs) and closes the connections. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.reader.close().catch(() => {});
    this.settle.resolve();
  }

  private pending(): Array<{ partition: number; offset: string }> {
    const list: Array<{ partition: number; offset: string }> = [];
    for (const [partition, offset] of this.positions) {
      if (this.options.untilEnd && offset >= (this.ends.get(partition) ?? 0n)) continue;
      list.push({ partition, offset: offset.toString() });
    }
    // A fetch's byte limit is filled in the order the partitions are asked for: each poll begins one further on,
    // so a busy partition cannot keep the others waiting poll after poll.
    const turn = this.turn++ % Math.max(1, list.length);
    return [...list.slice(turn), ...list.slice(0, turn)];
  }

  private async run(): Promise<void> {
    const { topic, logger } = this.options;
    const maxWaitMs = this.options.maxWaitMs ?? 1_000;
    const checkMs = this.options.partitionsCheckMs ?? 30_000;
    let failures = 0;
    while (this.running) {
      const positions = this.pending();
      if (positions.length === 0) {
        this.running = false;
        this.settle.resolve();
        return;
      }
      try {
        if (!this.options.untilEnd && Date.now() - this.checkedAt >= checkMs) await this.checkPartitions();
        const answers = await this.reader.fetchMany({ topic, positions, maxWaitMs });
        for (const { partition, messages } of answers) {
          const end = this.ends.get(partition) ?? 0n;
          for (const message of messages) {
            if (this.options.untilEnd && BigInt(message.offset) >= end) break;
            await this.handle(message, partition);
            this.positions.set(partition, BigInt(message.offset) + 1n);
          }
        }
        if (failures > 0) logger?.info({ topic, failures }, "reading again");
        failures = 0;
      } catch (error) {
        if (error instanceof OffsetOutOfRangeError) {
          // Deleted by retention before it was read: say so, and go on from what is left.
          const earliest = BigInt(
            await this.reader.offset(topic, error.partition, "earliest").catch(() => "0"),
          );
          logger?.warn(
            { topic, partition: error.partition, from: error.offset, to: earliest.toString() },
            "records deleted before they were read: reading on from the partition's first record",
          );
          this.positions.set(error.partition, earliest);
          continue;
        }
        failures++;
        if (failures === 1)
          logger?.warn(
            { topic, err: (error as Error).message },
            error instanceof HandlerError
              ? "a record could not be handled: trying it again"
              : "cannot read from Kafka: retrying until it answers (is the broker up?)",
          );
        await new Promise((resolve) =>
          setTimeout(
            resolve,
            backoffDelay(failures, { initialDelayMs: 200, maxDelayMs: 5_000, jitter: "none" }),
          ),
        );
      }
    }
  }

  private async handle(message: InboundMessage, partition: number): Promise<void> {
    try {
      this.read++;
      await this.options.onMessage(message, partition);
    } catch (error) {
      throw new HandlerError(error);
    }
  }

  /** New partitions (the topic grew) are read from their beginning: all they hold was written since. */
  private async checkPartitions(): Promise<void> {
    this.checkedAt = Date.now();
    const partitions = await this.reader.partitions(this.options.topic);
    for (let partition = this.positions.size; partition < partitions; partition++) {
      this.positions.set(
        partition,
        BigInt(await this.reader.offset(this.options.topic, partition, "earliest")),
      );
      this.options.logger?.info({ topic: this.options.topic, partition }, "new partition: reading it");
    }
  }
}

class HandlerError extends Error {
  constructor(cause: unknown) {
    super((cause as Error)?.message ?? String(cause), { cause });
  }
}
