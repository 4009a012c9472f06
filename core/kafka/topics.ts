import type { Kafka } from "kafkajs";

/**
 * Creates the topics that do not exist yet (idempotent). Partitions are the unit of parallelism downstream;
 * LIFELINE_TOPIC_PARTITIONS sets how many a new topic gets.
 */
export async function ensureTopics(
  kafka: Kafka,
  topics: string[],
  numPartitions = Number(process.env.LIFELINE_TOPIC_PARTITIONS ?? 6),
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((topic) => !existing.has(topic));
    if (missing.length === 0) return;
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((topic) => ({ topic, numPartitions, replicationFactor: -1 })),
    });
  } finally {
    await admin.disconnect();
  }
}
