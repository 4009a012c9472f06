import { randomUUID } from "node:crypto";
import { deleteRunGroup } from "./groups.ts";
import { unpackRecords } from "./packing.ts";
import type { KafkaPort as Kafka } from "./port.ts";

/**
 * Reads every record a topic received since `sinceMs` (by Kafka timestamp), up to its end as it was when called,
 * and returns. For rebuilding state from a topic: presence from heartbeats, a rollout's history.
 */
export async function readSince(
  kafka: Kafka,
  topic: string,
  sinceMs: number,
  onRecord: (text: string, timestampMs: number) => void,
  timeoutMs = 30_000,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  let starts: Array<{ partition: number; offset: string }>;
  let ends: Array<{ partition: number; high: string }>;
  try {
    starts = await admin.fetchTopicOffsetsByTimestamp(topic, sinceMs);
    ends = await admin.fetchTopicOffsets(topic);
  } finally {
    await admin.disconnect();
  }
  const end = new Map(ends.map((p) => [p.partition, BigInt(p.high)]));
  const remaining = new Map<number, { from: bigint; to: bigint }>();
  for (const start of starts) {
    const to = end.get(start.partition) ?? 0n;
    const from = start.offset === "-1" ? to : BigInt(start.offset);
    if (from < to) remaining.set(start.partition, { from, to });
  }
  if (remaining.size === 0) return;

  const groupId = `lifeline-reader-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: false });
    let finish: () => void = () => {};
    const done = new Promise<void>((resolve, reject) => {
      finish = resolve;
      setTimeout(
        () => reject(new Error(`${topic} not read to its end within ${timeoutMs} ms`)),
        timeoutMs,
      ).unref();
    });
    // A new group starts at the end; seeking (allowed once run has started) moves each partition back.
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const range = remaining.get(batch.partition);
        if (!range) return;
        for (const message of batch.messages) {
          if (BigInt(message.offset) >= range.to) break;
          const timestampMs = Number(message.timestamp);
          for (const text of unpackRecords(message.value)) onRecord(text, timestampMs);
        }
        const last = batch.messages[batch.messages.length - 1];
        if (last && BigInt(last.offset) + 1n >= range.to) remaining.delete(batch.partition);
        if (remaining.size === 0) finish();
      },
    });
    for (const [partition, range] of remaining)
      consumer.seek({ topic, partition, offset: range.from.toString() });
    await done;
  } finally {
    await consumer.disconnect();
    await deleteRunGroup(kafka, groupId).catch((error: Error) =>
      process.stderr.write(`lifeline: consumer group ${groupId} left on the broker: ${error.message}\n`),
    );
  }
}
