import { afterAll, describe, expect, it } from "vitest";
import type { KafkaPort } from "../../core/kafka/port.ts";
import { readSince } from "../../core/kafka/read-since.ts";
import { TopicFollower } from "../../core/kafka/topic-follower.ts";
import { freshTopic, testKafka } from "../helpers/services.ts";

async function produce(kafka: KafkaPort, topic: string, values: string[]): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  try {
    // Keys spread the records over every partition.
    await producer.send({ topic, messages: values.map((value, i) => ({ key: `k${i}`, value })) });
  } finally {
    await producer.disconnect();
  }
}

// core/kafka/topic-follower.ts: every partition read without a consumer group, positions kept in the process.
describe("TopicFollower: a whole topic read without a consumer group", () => {
  const kafka = testKafka();
  const followers: TopicFollower[] = [];
  afterAll(async () => {
    for (const follower of followers) await follower.stop();
  });

  it("from the end: every record written after start() exactly once, in order within each partition, none from before, and no group on the broker", async () => {
    const topic = await freshTopic(kafka, "follower", 3);
    const admin = kafka.admin();
    await admin.connect();
    const groupsBefore = new Set(await admin.listGroups());
    await produce(
      kafka,
      topic,
      Array.from({ length: 30 }, (_, i) => `before-${i}`),
    );
    const seen: Array<{ value: string; partition: number; offset: bigint }> = [];
    let allIn: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      allIn = resolve;
    });
    const follower = new TopicFollower(kafka, {
      topic,
      from: "end",
      maxWaitMs: 200,
      onMessage: (message, partition) => {
        seen.push({ value: String(message.value), partition, offset: BigInt(message.offset) });
        if (seen.length >= 600) allIn();
      },
    });
    followers.push(follower);
    await follower.start();
    // Two sends: the second lands while the follower is polling.
    await produce(
      kafka,
      topic,
      Array.from({ length: 300 }, (_, i) => `after-${i}`),
    );
    await produce(
      kafka,
      topic,
      Array.from({ length: 300 }, (_, i) => `later-${i}`),
    );
    await done;
    await follower.stop();

    expect(seen).toHaveLength(600);
    expect(new Set(seen.map((s) => s.value)).size).toBe(600);
    expect(seen.filter((s) => s.value.startsWith("before-"))).toEqual([]);
    expect(new Set(seen.map((s) => s.partition))).toEqual(new Set([0, 1, 2]));
    for (const partition of [0, 1, 2]) {
      const offsets = seen.filter((s) => s.partition === partition).map((s) => s.offset);
      expect(offsets).toEqual([...offsets].sort((a, b) => (a < b ? -1 : 1)));
    }
    const groupsAfter = (await admin.listGroups()).filter((g) => !groupsBefore.has(g));
    await admin.disconnect();
    // Other tests run meanwhile and make their own groups: none may be this topic's.
    expect(groupsAfter.filter((g) => g.includes(topic))).toEqual([]);
    expect(follower.read).toBe(600);
  });

  it("readSince: the records since a time, up to the end as it was when called, then returns", async () => {
    const topic = await freshTopic(kafka, "follower-since", 3);
    await produce(
      kafka,
      topic,
      Array.from({ length: 50 }, (_, i) => `old-${i}`),
    );
    const texts: string[] = [];
    await readSince(kafka, topic, 0, (text) => texts.push(text));
    expect(texts).toHaveLength(50);
    expect(new Set(texts).size).toBe(50);
    // A time after every record: nothing, at once.
    const none: string[] = [];
    await readSince(kafka, topic, Date.now() + 60_000, (text) => none.push(text));
    expect(none).toEqual([]);
  });

  it("a handler that throws gets the same record again after a backoff; nothing is skipped or handed on before it", async () => {
    const topic = await freshTopic(kafka, "follower-throws", 1);
    const handled: string[] = [];
    let failuresLeft = 2;
    let allIn: () => void = () => {};
    const finished = new Promise<void>((resolve) => {
      allIn = resolve;
    });
    const follower = new TopicFollower(kafka, {
      topic,
      from: "end",
      maxWaitMs: 200,
      onMessage: (message) => {
        const value = String(message.value);
        handled.push(value);
        if (value === "bad" && failuresLeft-- > 0) throw new Error("cannot handle bad yet");
        if (value === "after") allIn();
      },
    });
    followers.push(follower);
    await follower.start();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [{ value: "good" }, { value: "bad" }, { value: "after" }],
    });
    await producer.disconnect();
    await finished;
    expect(handled).toEqual(["good", "bad", "bad", "bad", "after"]);
  });
});
