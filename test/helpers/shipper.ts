import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { unpackRecords } from "../../core/kafka/packing.ts";
import type { KafkaConsumer as Consumer, KafkaPort as Kafka } from "../../core/kafka/port.ts";
import { ensureTopics } from "../../core/kafka/topics.ts";
import { type ProcessUnderTest, startLifeline } from "./cli.ts";
import { uniqueName } from "./services.ts";

export type ShipperUnderTest = ProcessUnderTest;

export function shipperWorkspace(name: string) {
  const dir = mkdtempSync(join(tmpdir(), `lifeline-${name}-`));
  const logs = join(dir, "logs");
  mkdirSync(logs);
  return { dir, logs, checkpointDir: join(dir, "state"), prefix: uniqueName(`test-${name}`) };
}

export function writeShipperConfig(dir: string, config: Record<string, unknown>): string {
  const file = join(dir, "shipper.yaml");
  writeFileSync(file, stringify(config));
  return file;
}

/** Runs the real `lifeline shipper` as a child process, so tests can SIGKILL it. */
export function startShipper(configFile: string, env: NodeJS.ProcessEnv = process.env): ShipperUnderTest {
  return startLifeline(["shipper", "--config", configFile], "shipper started", env);
}

/** The port of a shipper's metrics endpoint (started with `http: { port: 0 }`), as its log says it. */
export function metricsPort(shipper: ShipperUnderTest): number {
  return Number(/"port":(\d+),"msg":"metrics and health endpoint listening"/.exec(shipper.output())?.[1]);
}

/** One read of the shipper's /metrics: a counter's value for `input` by its name (NaN when absent). */
export async function inputCounters(port: number, input: string): Promise<(name: string) => number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return (name) => Number(new RegExp(`^${name}\\{input="${input}"\\} (\\d+)`, "m").exec(text)?.[1]);
}

export interface ConsumedRecord {
  key: string;
  value: Record<string, unknown>;
  headers: Record<string, string>;
  partition: number;
  offset: string;
}

/** Reads a topic from its beginning in the background; tests await what they need from it, never sleep. */
export class TopicReader {
  readonly records: ConsumedRecord[] = [];
  private readonly consumer: Consumer;
  private readonly topic: string;
  private waiters: Array<() => void> = [];
  private failure: Error | undefined;
  /** Per partition, the offset of the last message consumed. */
  private readonly consumedUpTo = new Map<number, bigint>();

  private readonly kafka: Kafka;

  constructor(kafka: Kafka, topic: string) {
    this.kafka = kafka;
    this.topic = topic;
    this.consumer = kafka.consumer({ groupId: uniqueName("test-reader"), maxBytes: 50 << 20 });
  }

  async start(): Promise<this> {
    await ensureTopics(this.kafka, [this.topic]);
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    this.consumer
      .run({
        eachBatch: async ({ batch }) => {
          for (const message of batch.messages) {
            const headers: Record<string, string> = {};
            for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
            for (const document of unpackRecords(message.value)) {
              this.records.push({
                key: String(message.key),
                value: JSON.parse(document) as Record<string, unknown>,
                headers,
                partition: batch.partition,
                offset: message.offset,
              });
            }
            this.consumedUpTo.set(batch.partition, BigInt(message.offset));
          }
          for (const wake of this.waiters.splice(0)) wake();
        },
      })
      .catch((error: Error) => {
        this.failure = error;
        for (const wake of this.waiters.splice(0)) wake();
      });
    return this;
  }

  /** Resolves once `done(records)` holds; fails after timeoutMs saying how many records came. */
  async waitFor(done: (records: ConsumedRecord[]) => boolean, timeoutMs = 60_000): Promise<ConsumedRecord[]> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.records)) {
      if (this.failure) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out after ${timeoutMs} ms with ${this.records.length} records from ${this.topic}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.records;
  }

  /**
   * Everything the topic holds now, read: its end offsets are asked for, then awaited. With the writer stopped
   * first, nothing can come after: counts taken then are final (a duplicate cannot arrive later unseen).
   */
  async readToEnd(timeoutMs = 60_000): Promise<ConsumedRecord[]> {
    const admin = this.kafka.admin();
    await admin.connect();
    let ends: Array<{ partition: number; last: bigint }>;
    try {
      ends = (await admin.fetchTopicOffsets(this.topic))
        .filter(({ high, low }) => BigInt(high) > BigInt(low))
        .map(({ partition, high }) => ({ partition, last: BigInt(high) - 1n }));
    } finally {
      await admin.disconnect();
    }
    return this.waitFor(
      () => ends.every(({ partition, last }) => (this.consumedUpTo.get(partition) ?? -1n) >= last),
      timeoutMs,
    );
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}

/** Reads a topic from its beginning until `done` says enough. */
export async function consumeUntil(
  kafka: Kafka,
  topic: string,
  done: (records: ConsumedRecord[]) => boolean,
  timeoutMs = 60_000,
): Promise<ConsumedRecord[]> {
  const reader = await new TopicReader(kafka, topic).start();
  try {
    return [...(await reader.waitFor(done, timeoutMs))];
  } finally {
    await reader.stop();
  }
}
