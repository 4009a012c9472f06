import { waitUntil } from "../poll.ts";
import type { KafkaAdmin as Admin, KafkaPort as Kafka } from "./port.ts";

/**
 * Creates the topics that do not exist yet (idempotent) and returns once every partition of every topic has a
 * leader that the broker serves. Kafka acknowledges a creation before the broker has published it, and a
 * busy broker can take seconds to do so; a client that subscribes in between gets "does not host this
 * topic-partition". Partitions are the unit of parallelism downstream; LIFELINE_TOPIC_PARTITIONS sets how many
 * a new topic gets.
 */
export async function ensureTopics(
  kafka: Kafka,
  topics: string[],
  numPartitions = Number(process.env.LIFELINE_TOPIC_PARTITIONS ?? 6),
  timeoutMs = 60_000,
  /** Topic settings for the topics created here (`message.timestamp.type`, say); existing ones keep theirs. */
  config: Record<string, string> = {},
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((topic) => !existing.has(topic));
    if (missing.length > 0) {
      // Not kafkajs's waitForLeaders: it gives up on "unknown topic", which a KRaft broker answers until its
      // metadata has caught up with the creation (seen on a fresh broker with several components starting).
      await admin.createTopics({
        waitForLeaders: false,
        topics: missing.map((topic) => ({
          topic,
          numPartitions,
          replicationFactor: -1,
          configEntries: Object.entries(config).map(([name, value]) => ({ name, value })),
        })),
      });
    }
    const served = await waitUntil(() => allPartitionsLed(admin, topics), { timeoutMs, intervalMs: 100 });
    if (!served) throw new Error(`topics not served after ${timeoutMs} ms: ${topics.join(", ")}`);
  } finally {
    await admin.disconnect();
  }
}

async function allPartitionsLed(admin: Admin, topics: string[]): Promise<true | undefined> {
  const { topics: described } = await admin.fetchTopicMetadata({ topics });
  const led = described.every(
    (topic) =>
      topic.partitions.length > 0 &&
      topic.partitions.every((partition) => partition.leader >= 0 && partition.partitionErrorCode === 0),
  );
  return led ? true : undefined;
}
