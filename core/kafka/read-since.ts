import { unpackRecords } from "./packing.ts";
import type { KafkaPort as Kafka } from "./port.ts";
import { TopicFollower } from "./topic-follower.ts";

/**
 * Reads every record a topic received since `sinceMs` (by Kafka timestamp), up to its end as it was when called,
 * and returns. For rebuilding state from a topic: presence from heartbeats, a rollout's history. No consumer
 * group: nothing is left on the broker.
 */
export async function readSince(
  kafka: Kafka,
  topic: string,
  sinceMs: number,
  onRecord: (text: string, timestampMs: number) => void,
  timeoutMs = 30_000,
): Promise<void> {
  const follower = new TopicFollower(kafka, {
    topic,
    from: { timestampMs: sinceMs },
    untilEnd: true,
    onMessage: (message) => {
      const timestampMs = Number(message.timestamp);
      for (const text of unpackRecords(message.value)) onRecord(text, timestampMs);
    },
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await follower.start();
    await Promise.race([
      follower.done,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${topic} not read to its end within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await follower.stop();
  }
}
