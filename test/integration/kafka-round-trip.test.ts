import { describe, expect, it } from "vitest";
import { BatchProducer } from "../../core/kafka/batch-producer.ts";
import { murmur2 } from "../../core/kafka/partitioner.ts";
import { ensureTopics } from "../../core/kafka/topics.ts";
import { createLogger } from "../../core/logger.ts";
import { formatTraceparent, newSpanId, newTraceId } from "../../core/trace-context.ts";
import { freshTopic, testKafka, uniqueName } from "../helpers/services.ts";
import { TopicReader } from "../helpers/shipper.ts";

describe("kafka round trip through the project's client factory", () => {
  it("delivers every produced record exactly once, in order per key, with its headers", async () => {
    const kafka = testKafka();
    const topic = await freshTopic(kafka, "round-trip", 3);
    const keys = Array.from({ length: 10 }, (_, i) => `file-${i}`);
    const perKey = 200;
    const traceparents = new Map<string, string>();

    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let seq = 0; seq < perKey; seq++) {
      const messages = keys.map((key) => {
        const traceparent = formatTraceparent({ traceId: newTraceId(), spanId: newSpanId(), flags: 1 });
        traceparents.set(`${key}/${seq}`, traceparent);
        return { key, value: JSON.stringify({ key, seq }), headers: { traceparent } };
      });
      await producer.send({ topic, acks: -1, compression: "gzip", messages });
    }
    await producer.disconnect();

    const expected = keys.length * perKey;
    const received = new Map<string, number[]>();
    let count = 0;
    const consumer = kafka.consumer({ groupId: uniqueName("test-group") });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ message }) => {
            const record = JSON.parse(String(message.value)) as { key: string; seq: number };
            expect(String(message.key)).toBe(record.key);
            expect(String(message.headers?.traceparent)).toBe(
              traceparents.get(`${record.key}/${record.seq}`),
            );
            received.set(record.key, [...(received.get(record.key) ?? []), record.seq]);
            if (++count === expected) resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();

    expect(count).toBe(expected);
    for (const key of keys) {
      expect(received.get(key)).toEqual(Array.from({ length: perKey }, (_, i) => i));
    }
  });
});

describe("ensureTopics", () => {
  it("several processes creating the same new topics at once all return once the broker serves them", async () => {
    // As three agents and a shipper starting together on a fresh broker: one creates, the others race it.
    const topics = [uniqueName("test-race-a"), uniqueName("test-race-b")];
    const clients = Array.from({ length: 6 }, () => testKafka());
    await Promise.all(clients.map((kafka) => ensureTopics(kafka, topics, 3)));
    const admin = testKafka().admin();
    await admin.connect();
    const { topics: described } = await admin.fetchTopicMetadata({ topics });
    await admin.disconnect();
    expect(described.map((t) => t.partitions.length)).toEqual([3, 3]);
  });
});

describe("BatchProducer.advance: a position without a record", () => {
  it("is acknowledged after the records enqueued before it under its key, and at once when none waits", async () => {
    const kafka = testKafka();
    const topic = await freshTopic(kafka, "advance", 1);
    const producer = new BatchProducer({
      kafka,
      logger: createLogger("test", { level: "warn" }),
      batchBytes: 1 << 20,
      // Long enough that the record is still waiting when the position is advanced.
      lingerMs: 300,
      inflightBytes: 1 << 20,
      compression: "none",
      packBytes: 64 * 1024,
      lanes: 1,
      deadLetterTopic: `${topic}-dead-letters`, // named after this test's own topic, not a prefix's
    });
    await producer.start();
    try {
      const seen: Array<[string, number]> = [];
      let acknowledged: () => void = () => {};
      const aAcknowledged = new Promise<void>((resolve) => {
        acknowledged = resolve;
      });
      const onAck = (position: number) => {
        seen.push(["file-a", position]);
        acknowledged();
      };
      producer.enqueue({ topic, key: "a", value: '{"line":1}', onAck, position: 10 });
      producer.advance(topic, "a", onAck, 20); // a line left out after it: not before it
      producer.advance(topic, "b", (position) => seen.push(["file-b", position]), 5); // nothing waits for "b"
      expect(seen).toEqual([["file-b", 5]]);
      await aAcknowledged;
      // One watermark move, to the position after the left-out line, once the record before it was acknowledged.
      expect(seen).toEqual([
        ["file-b", 5],
        ["file-a", 20],
      ]);
    } finally {
      await producer.stop(AbortSignal.timeout(5_000));
    }
  });
});

describe("BatchProducer: a topic packed by partition", () => {
  it("puts many keys' records in few messages, each key in its own partition and in order, acknowledged in order", async () => {
    const kafka = testKafka();
    const partitions = 3;
    const topic = await freshTopic(kafka, "packed-by-partition", partitions);
    const producer = new BatchProducer({
      kafka,
      logger: createLogger("test", { level: "warn" }),
      batchBytes: 1 << 20,
      lingerMs: 50,
      inflightBytes: 8 << 20,
      compression: "zstd",
      packBytes: 63 * 1024,
      lanes: 2,
      topics: [topic],
      deadLetterTopic: `${topic}-dead-letters`,
    });
    // 40 files writing 50 lines each, a line at a time in turn, as a thousand live files do; one more key alone.
    const keys = Array.from({ length: 40 }, (_, i) => `host|file-${i}`);
    const perKey = 50;
    const acked = new Map<string, number[]>();
    const waiters: Array<() => void> = [];
    const ackedUpTo = (key: string, position: number) =>
      new Promise<void>((resolve) => {
        const check = () => ((acked.get(key) ?? []).at(-1) === position ? resolve() : waiters.push(check));
        check();
      });
    // A watermark: one call may stand for several records of its key (the last one's position).
    const onAckOf = new Map(
      [...keys, "host|alone"].map((key) => [
        key,
        (position: number) => {
          acked.set(key, [...(acked.get(key) ?? []), position]);
          for (const check of waiters.splice(0)) check();
        },
      ]),
    );
    const onAck = (key: string) => onAckOf.get(key) as (position: number) => void;
    await producer.start();
    try {
      for (let seq = 0; seq < perKey; seq++)
        for (const key of keys)
          producer.enqueue({
            topic,
            key,
            value: JSON.stringify({ key, seq }),
            onAck: onAck(key),
            position: seq,
          });
      await Promise.all(keys.map((key) => ackedUpTo(key, perKey - 1)));
      // Enqueued once the others are acknowledged: its message holds its record only, and keeps its key.
      const alone = { key: "host|alone", seq: 0 };
      producer.enqueue({
        topic,
        key: alone.key,
        value: JSON.stringify(alone),
        onAck: onAck(alone.key),
        position: 0,
      });
      await ackedUpTo(alone.key, 0);
    } finally {
      await producer.stop(AbortSignal.timeout(10_000));
    }
    for (const key of keys) {
      const positions = acked.get(key) ?? [];
      expect(positions, `acknowledgements of ${key}`).toEqual([...new Set(positions)].sort((a, b) => a - b));
    }

    const reader = await new TopicReader(kafka, topic).start();
    const records = await reader.readToEnd();
    await reader.stop();
    expect(records).toHaveLength(keys.length * perKey + 1);
    const messages = new Map<string, Set<string>>();
    const seqs = new Map<string, number[]>();
    for (const record of records) {
      const { key, seq } = record.value as { key: string; seq: number };
      expect(record.partition, `partition of ${key}`).toBe((murmur2(key) & 0x7fffffff) % partitions);
      seqs.set(key, [...(seqs.get(key) ?? []), seq]);
      const message = `${record.partition}/${record.offset}`;
      messages.set(message, (messages.get(message) ?? new Set()).add(key));
      // A message names a key only when every record in it is that key's.
      const keysInMessage = messages.get(message) as Set<string>;
      if (keysInMessage.size > 1) expect(record.key, `key of message ${message}`).toBe("null");
    }
    for (const key of keys) expect(seqs.get(key)).toEqual(Array.from({ length: perKey }, (_, i) => i));
    const alone = records.find((record) => (record.value as { key: string }).key === "host|alone");
    expect(alone?.key).toBe("host|alone");
    // Packed by key it would take at least a message per key: 41.
    expect(messages.size).toBeLessThan(keys.length);
  });
});
