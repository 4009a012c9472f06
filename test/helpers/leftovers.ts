import type { Client } from "@elastic/elasticsearch";
import type { KafkaPort as Kafka } from "../../core/kafka/port.ts";

const uniqueSuffix = /[-_.]([0-9a-z]{8})(?=$|[-_.])/g;

/** The time uniqueName() put in a name, when it has one (base36 milliseconds of a plausible date). */
export function createdAt(name: string, now = Date.now()): number | undefined {
  for (const match of name.matchAll(uniqueSuffix)) {
    const time = Number.parseInt(match[1] ?? "", 36);
    if (time > now - 365 * 86_400_000 && time <= now) return time;
  }
  return undefined;
}

const stale = (before: number) => (name: string) => {
  const time = createdAt(name);
  return time !== undefined && time < before;
};

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Every test names its topics, indices and templates with uniqueName(), so runs never share them; this removes
 * what runs that started before `before` left behind. Thousands of leftover partitions make a single broker
 * slow to publish new topics.
 */
export async function removeLeftovers(
  kafka: Kafka,
  elastic: Client,
  before: number,
): Promise<{ topics: number; indices: number; closedStreams: number; templates: number }> {
  const isStale = stale(before);
  const admin = kafka.admin();
  await admin.connect();
  let topics: string[];
  try {
    topics = (await admin.listTopics()).filter(isStale);
    for (const batch of chunks(topics, 200)) {
      // A topic that is already being deleted answers "unknown topic"; that is the outcome wanted.
      await admin.deleteTopics({ topics: batch, timeout: 60_000 }).catch(() => {});
    }
  } finally {
    await admin.disconnect();
  }
  const all = await elastic.indices.get({
    index: "*",
    expand_wildcards: ["open", "closed"],
    features: ["settings"],
  });
  const indices = Object.keys(all).filter((index) => !index.startsWith(".") && isStale(index));
  for (const batch of chunks(indices, 50)) await elastic.indices.delete({ index: batch });
  // A data stream's write index cannot be deleted without the _data_stream API; closed, it holds no shard
  // against the node's limit (1,000) and no memory. Runs otherwise slow Elasticsearch down, run after run.
  const streams = Object.entries(all)
    .filter(
      ([index, state]) =>
        index.startsWith(".ds-") && isStale(index) && state.settings?.index?.verified_before_close !== "true",
    )
    .map(([index]) => index);
  for (const batch of chunks(streams, 50)) await elastic.indices.close({ index: batch }).catch(() => {});
  // Templates still used by a data stream are refused; the integration-test distribution has no
  // _data_stream API to delete those streams (see the README's list of gaps).
  let templates = 0;
  for (const { name } of (await elastic.indices.getIndexTemplate()).index_templates) {
    if (!isStale(name)) continue;
    const deleted = await elastic.indices.deleteIndexTemplate({ name }).then(
      () => true,
      () => false,
    );
    if (deleted) templates++;
  }
  return { topics: topics.length, indices: indices.length, closedStreams: streams.length, templates };
}
