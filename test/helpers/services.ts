import { randomBytes } from "node:crypto";
import type { Client } from "@elastic/elasticsearch";
import { inject } from "vitest";
import { createElastic } from "../../core/elastic/client.ts";
import { createKafka } from "../../core/kafka/client.ts";
import type { KafkaPort as Kafka } from "../../core/kafka/port.ts";
import { ensureTopics } from "../../core/kafka/topics.ts";

export function connections() {
  return inject("connections");
}

/** A name no other test (or earlier run) uses: tests never share a topic or an index. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
}

export function testKafka(): Kafka {
  return createKafka({ ...connections().kafka, clientId: "lifeline-test" });
}

export function testElastic(): Client {
  return createElastic(connections().elasticsearch);
}

/** Creates a fresh topic and waits until the broker serves all its partitions. */
export async function freshTopic(kafka: Kafka, prefix: string, numPartitions = 3): Promise<string> {
  const topic = uniqueName(`test.${prefix}`);
  await ensureTopics(kafka, [topic], numPartitions);
  return topic;
}
