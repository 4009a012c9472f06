import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { controlPartition } from "../core/control-plane.ts";
import { type InboundMessage, OffsetOutOfRangeError, type PartitionReader } from "../core/kafka/port.ts";
import type { Logger } from "../core/logger.ts";
import { retry } from "../core/retry.ts";

/** Where the agent reads the control topic from, kept beside its command log so a restart goes on from there. */
interface Position {
  topic: string;
  partitions: number;
  partition: number;
  /** The next offset to read. */
  offset: string;
  /** When the agent last read up to `offset`. */
  at: string;
}

export interface ControlFeedOptions {
  reader: PartitionReader;
  topic: string;
  host: string;
  stateDir: string;
  logger: Logger;
  /** Every message of the host's partition, in order: commands for this host and for the others that share it. */
  onMessage(message: InboundMessage): void;
  /**
   * How long one fetch waits for a message (the long poll: a message ends it at once). An idle agent sends one
   * fetch this often: 10 s is 10,000 requests a second for 100,000 agents (a consumer group's heartbeats every
   * 3 s were 33,000).
   */
  maxWaitMs?: number;
  /** How often the topic's partition count is checked again (a grown topic moves the host's partition). */
  recheckMs?: number;
  /** Read again from this long before the last read when the partition moves (commands deduplicate and expire). */
  overlapMs?: number;
}

/**
 * The agent's read of the control topic: its host's partition only (core/control-plane.ts), fetched without a
 * consumer group. The position is saved in the state folder after each batch is handed over: a crash in between
 * reads that batch again, and the command log's deduplication keeps a command from running twice. First start:
 * the partition's end, as a new consumer group would start.
 */
export class ControlFeed {
  private readonly options: Required<Omit<ControlFeedOptions, "onMessage">> &
    Pick<ControlFeedOptions, "onMessage">;
  private readonly file: string;
  private position: Position | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private checkedAt = 0;
  /** Records of the control topic read (this host's and the partition's other hosts'). */
  recordsRead = 0;

  constructor(options: ControlFeedOptions) {
    this.options = { maxWaitMs: 10_000, recheckMs: 30_000, overlapMs: 60_000, ...options };
    this.file = join(options.stateDir, "control-position.json");
  }

  /** For /health: where the agent reads, and how much it has read. */
  report(): Record<string, unknown> {
    const p = this.position;
    return p
      ? {
          topic: p.topic,
          partition: p.partition,
          partitions: p.partitions,
          offset: p.offset,
          recordsRead: this.recordsRead,
        }
      : { topic: this.options.topic, position: "not resolved yet" };
  }

  /** Resolves once the position is resolved and one fetch from it completed: a command sent after is seen. */
  async start(): Promise<void> {
    this.running = true;
    await this.retrying("resolve its position", () => this.resolvePosition());
    // The first fetch does not wait for a message: it proves the position is readable.
    await this.retrying("read", () => this.readOnce(10));
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    // Closing ends a fetch that is waiting (the long poll), so stopping does not wait for it.
    await this.options.reader.close().catch(() => {});
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      await this.retrying("read", async () => {
        if (Date.now() - this.checkedAt >= this.options.recheckMs) await this.resolvePosition();
        await this.readOnce();
      });
    }
  }

  /** Runs `step` until it succeeds or the feed stops, with backoff and one line per failure. */
  private async retrying(what: string, step: () => Promise<void>): Promise<void> {
    await retry(
      async () => {
        while (this.running) {
          try {
            return await step();
          } catch (error) {
            // A position gone from the partition is moved to its first offset and tried again at once.
            if (!(this.running && (await this.movedToEarliest(error)))) throw error;
          }
        }
      },
      {
        retries: Number.POSITIVE_INFINITY,
        initialDelayMs: 500,
        maxDelayMs: 30_000,
        jitter: "none",
        shouldRetry: () => this.running,
        onRetry: (error, _attempt, delay) =>
          this.options.logger.warn(
            { topic: this.options.topic, partition: this.position?.partition, err: (error as Error).message },
            `cannot ${what} on the control topic ${this.options.topic} (check kafka.brokers and the topic's leaders); retrying in ${delay} ms`,
          ),
      },
    ).catch((error: unknown) => {
      if (this.running) throw error;
    });
  }

  /** True when `error` says the saved position no longer exists and it was moved to the partition's first offset. */
  private async movedToEarliest(error: unknown): Promise<boolean> {
    if (!(error instanceof OffsetOutOfRangeError && this.position)) return false;
    const earliest = await this.options.reader
      .offset(this.position.topic, this.position.partition, "earliest")
      .catch(() => undefined);
    if (earliest === undefined) return false;
    this.options.logger.warn(
      {
        topic: this.position.topic,
        partition: this.position.partition,
        was: this.position.offset,
        earliest,
      },
      "control topic position no longer exists (retention, or the topic was made again): reading from the partition's first offset; expired commands are rejected, run ones are recognised",
    );
    this.save({ ...this.position, offset: earliest });
    return true;
  }

  private async resolvePosition(): Promise<void> {
    const { reader, topic, host } = this.options;
    const partitions = await reader.partitions(topic);
    this.checkedAt = Date.now();
    const partition = controlPartition(host, partitions);
    const current = this.position ?? this.load();
    if (current && current.topic === topic && current.partition === partition) {
      if (current.partitions !== partitions) this.save({ ...current, partitions });
      else this.position = current;
      return;
    }
    if (current && current.topic === topic) {
      // The topic grew: this host's commands now go elsewhere. Read the new partition from a little before the
      // last read, so nothing sent there meanwhile is missed.
      const since = Date.parse(current.at) - this.options.overlapMs;
      const offset = await reader.offset(topic, partition, { timestampMs: since });
      this.options.logger.warn(
        {
          topic,
          partitions,
          partition,
          was: current.partition,
          since: new Date(since).toISOString(),
          offset,
        },
        "control topic partition count changed: reading this host's new partition",
      );
      this.save({ topic, partitions, partition, offset, at: new Date().toISOString() });
      return;
    }
    const offset = await reader.offset(topic, partition, "latest");
    this.options.logger.info(
      { topic, partitions, partition, offset },
      "reading the control topic from its end",
    );
    this.save({ topic, partitions, partition, offset, at: new Date().toISOString() });
  }

  private async readOnce(maxWaitMs = this.options.maxWaitMs): Promise<void> {
    const position = this.position;
    if (!position) throw new Error("no position");
    const { messages } = await this.options.reader.fetch({
      topic: position.topic,
      partition: position.partition,
      offset: position.offset,
      maxWaitMs,
    });
    if (this.position !== position) return;
    for (const message of messages) {
      this.recordsRead += 1;
      this.options.onMessage(message);
    }
    const last = messages.at(-1);
    const offset = last ? String(BigInt(last.offset) + 1n) : position.offset;
    if (last || Date.now() - Date.parse(position.at) > this.options.overlapMs / 2)
      this.save({ ...position, offset, at: new Date().toISOString() });
  }

  private load(): Position | undefined {
    if (!existsSync(this.file)) return undefined;
    try {
      const saved = JSON.parse(readFileSync(this.file, "utf8")) as Position;
      if (typeof saved.offset === "string" && typeof saved.partition === "number") return saved;
    } catch (error) {
      this.options.logger.warn(
        { file: this.file, err: (error as Error).message },
        "control position unreadable",
      );
    }
    return undefined;
  }

  private save(position: Position): void {
    this.position = position;
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(position)}\n`);
    renameSync(tmp, this.file);
  }
}
