import type { SignedCommand } from "./commands.ts";
import { murmur2 } from "./kafka/partitioner.ts";
import type { KafkaPort, OutboundMessage } from "./kafka/port.ts";

/**
 * Where a command travels on the control topic. The topic is partitioned by host: a host's commands go to the
 * partition its name hashes to, as Kafka's default partitioner would place a record keyed by that name (murmur2,
 * the Java client's), and each agent reads that one partition without a consumer group. A command for groups or
 * labels, or a message that names no host, goes to every partition: every agent must judge it. So a fleet-wide
 * rollout costs each agent the commands of the hosts that share its partition, not the whole fleet's.
 * controller/README.md ("The control plane") has the reasoning and the figures.
 */

/** The control topic's partition that carries `host`'s commands. */
export function controlPartition(host: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1)
    throw new Error(`invalid partition count ${partitions}`);
  return (murmur2(host) & 0x7fffffff) % partitions;
}

/**
 * The records that carry one control message: one per partition of the hosts it names, or one per partition when
 * it names none (groups, labels, or not a command at all: an agent must still see it to reject it).
 */
export function controlMessages(
  message: SignedCommand | string,
  partitions: number,
  headers?: Record<string, string>,
): OutboundMessage[] {
  const value = typeof message === "string" ? message : JSON.stringify(message);
  const hosts = typeof message === "string" ? undefined : message.command.target.hosts;
  const targets =
    hosts && hosts.length > 0
      ? [...new Map(hosts.map((host) => [controlPartition(host, partitions), host])).entries()]
      : Array.from({ length: partitions }, (_, partition) => [partition, undefined] as const);
  return targets.map(([partition, host]) => ({
    partition,
    key: host ?? null,
    value,
    ...(headers ? { headers } : {}),
  }));
}

/** The control topic's partition count, from the cluster's metadata; throws when the topic has none. */
export async function controlPartitionCount(kafka: KafkaPort, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const count = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions.length ?? 0;
    if (count === 0) throw new Error(`topic ${topic} has no partitions (does it exist?)`);
    return count;
  } finally {
    await admin.disconnect();
  }
}
