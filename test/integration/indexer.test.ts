import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { deterministicId } from "../../core/events.ts";
import { ensureTopics } from "../../core/kafka/topics.ts";
import { topicNames } from "../../core/topics.ts";
import {
  CuttableProxy,
  countDocuments,
  HeldBulks,
  type ProcessUnderTest,
  produceLogRecords,
  ShortBulkAnswers,
  startLifeline,
  throughRelay,
  waitForCount,
  waitForGroupCaughtUp,
} from "../helpers/indexer.ts";
import { connections, testElastic, testKafka, uniqueName } from "../helpers/services.ts";
import { shipperWorkspace, TopicReader } from "../helpers/shipper.ts";

/**
 * Plain indices unless asked otherwise: this Elasticsearch cannot delete a data stream, so every test run would
 * leave its streams behind (the poison test keeps the data-stream path covered, with 5 documents).
 */
function setup(
  name: string,
  extra: Record<string, unknown> = {},
  mode: "indices" | "data-streams" = "indices",
) {
  const ws = shipperWorkspace(name);
  const namespace = uniqueName(name).replaceAll("-", "_");
  const groupId = uniqueName(`indexer-${name}`);
  const config = join(ws.dir, "indexer.yaml");
  writeFileSync(
    config,
    stringify({ topicPrefix: ws.prefix, groupId, namespace, indices: { replicas: 0, mode }, ...extra }),
  );
  const logs = mode === "indices" ? `lifeline-logs-${namespace}` : `logs-lifeline.logs-${namespace}`;
  return { ...ws, namespace, groupId, config, logs };
}

describe("indexer: Kafka → Elasticsearch, counted", () => {
  const kafka = testKafka();
  const elastic = testElastic();
  const running: ProcessUnderTest[] = [];
  const launch = (config: string, env: NodeJS.ProcessEnv = process.env) => {
    const indexer = startLifeline(["indexer", "--config", config], "indexer started", env);
    running.push(indexer);
    return indexer;
  };
  afterEach(async () => {
    for (const indexer of running.splice(0)) await indexer.stop("SIGKILL");
  });
  afterAll(async () => {
    await elastic.close();
  });

  it("100,000 records become exactly 100,000 documents; a restart re-reads nothing twice", async () => {
    const t = setup("hundredk");
    await ensureTopics(kafka, [topicNames(t.prefix).logs]);
    await produceLogRecords(kafka, topicNames(t.prefix).logs, 100_000);
    const indexer = launch(t.config);
    await indexer.started;
    expect(await waitForCount(elastic, t.logs, 100_000)).toBe(100_000);
    await waitForGroupCaughtUp(kafka, t.groupId, topicNames(t.prefix).logs);
    expect(await countDocuments(elastic, t.logs)).toBe(100_000);
  });

  it("small fetches (fetch.partitionBytes 64 KiB): every record still one document, the group caught up", async () => {
    const t = setup("smallfetch", { fetch: { partitionBytes: 64 * 1024, maxBytes: 128 * 1024 } });
    await ensureTopics(kafka, [topicNames(t.prefix).logs]);
    await produceLogRecords(kafka, topicNames(t.prefix).logs, 30_000);
    const indexer = launch(t.config);
    await indexer.started;
    expect(await waitForCount(elastic, t.logs, 30_000)).toBe(30_000);
    await waitForGroupCaughtUp(kafka, t.groupId, topicNames(t.prefix).logs);
    expect(await countDocuments(elastic, t.logs)).toBe(30_000);
  });

  it("SIGKILL mid-batch and restart: still exactly 100,000, none missing", async () => {
    const t = setup("kill9", { bulk: { maxBytes: 256 * 1024 } });
    await ensureTopics(kafka, [topicNames(t.prefix).logs]);
    await produceLogRecords(kafka, topicNames(t.prefix).logs, 100_000);
    const first = launch(t.config);
    await first.started;
    await waitForCount(elastic, t.logs, 20_000);
    first.process.kill("SIGKILL");
    await first.exited;
    const second = launch(t.config);
    await second.started;
    await waitForGroupCaughtUp(kafka, t.groupId, topicNames(t.prefix).logs);
    expect(await countDocuments(elastic, t.logs)).toBe(100_000);
    const seqs = await elastic.search({
      index: t.logs,
      size: 0,
      aggs: { distinct: { cardinality: { field: "event.id", precision_threshold: 40000 } } },
    });
    expect((seqs.aggregations?.distinct as { value: number } | undefined)?.value).toBeGreaterThan(99_000);
  });

  it("Elasticsearch unreachable for 30 s mid-stream: the batch waits, nothing lost, nothing committed early", async () => {
    const t = setup("esdown");
    const url = new URL(connections().elasticsearch.url);
    const proxy = new CuttableProxy({ host: url.hostname, port: Number(url.port) });
    const port = await proxy.start();
    await ensureTopics(kafka, [topicNames(t.prefix).logs]);
    await produceLogRecords(kafka, topicNames(t.prefix).logs, 30_000);
    const env = throughRelay(port, connections().elasticsearch);
    const indexer = launch(t.config, env);
    await indexer.started;
    await waitForCount(elastic, t.logs, 30_000);
    await proxy.cut();
    const cutAt = Date.now();
    await produceLogRecords(kafka, topicNames(t.prefix).logs, 30_000, { files: 7 }); // same ids 0..29999 for files 0..6: replays
    await produceLogRecords(kafka, topicNames(t.prefix).logs, 20_000, { files: 3, perMessage: 50 });
    // The outage is the scenario's length; the indexer retries against a closed port meanwhile.
    await delay(Math.max(0, 30_000 - (Date.now() - cutAt)));
    expect(indexer.process.exitCode).toBeNull();
    expect(indexer.output()).toContain("retrying documents Elasticsearch did not take");
    await proxy.restore();
    await waitForGroupCaughtUp(kafka, t.groupId, topicNames(t.prefix).logs, 120_000);
    const distinct = new Set<string>();
    for (let i = 0; i < 30_000; i++) distinct.add(`${i % 10}/${i}`);
    for (let i = 0; i < 30_000; i++) distinct.add(`${i % 7}/${i}`);
    for (let i = 0; i < 20_000; i++) distinct.add(`${i % 3}/${i}`);
    expect(await countDocuments(elastic, t.logs)).toBe(distinct.size);
    await proxy.cut();
  });

  it("bulk answers that leave out half the items: those documents are sent again, never taken as written", async () => {
    const t = setup("shortanswer", { bulk: { maxBytes: 256 * 1024 } });
    const proxy = new ShortBulkAnswers(connections().elasticsearch.url, 3);
    const port = await proxy.start();
    try {
      await ensureTopics(kafka, [topicNames(t.prefix).logs]);
      await produceLogRecords(kafka, topicNames(t.prefix).logs, 20_000);
      const indexer = launch(t.config, throughRelay(port, connections().elasticsearch));
      await indexer.started;
      await waitForGroupCaughtUp(kafka, t.groupId, topicNames(t.prefix).logs);
      expect(proxy.remaining).toBe(0);
      expect(proxy.dropped).toBeGreaterThan(0);
      expect(indexer.output()).toContain("bulk answer had no status for");
      // The left-out documents were written the first time: sent again, they answer 409; none is lost or doubled.
      expect(await countDocuments(elastic, t.logs)).toBe(20_000);
    } finally {
      await proxy.stop();
    }
  });

  it("a later batch written while an earlier one is still refused: nothing committed past the earlier one; SIGKILL then, restart: exact count", async () => {
    const t = setup("heldbatch", { bulk: { maxBytes: 256 * 1024 } });
    const topic = topicNames(t.prefix).logs;
    await ensureTopics(kafka, [topic], 1);
    // The request carrying the first batch's last document (no id the second batch shares) is refused until the
    // end of the test.
    const proxy = new HeldBulks(
      connections().elasticsearch.url,
      `"_id":"${deterministicId("test", 9, 4_999)}"`,
    );
    const port = await proxy.start();
    try {
      await produceLogRecords(kafka, topic, 5_000);
      const indexer = launch(t.config, throughRelay(port, connections().elasticsearch));
      await indexer.started;
      await proxy.firstRefusal();
      // A second batch, produced in one request while the first is held (one request: one batch; the indexer
      // holds at most two per partition, so a batch after it would wait): ids of its own, one trace id to count
      // it by.
      const later = "4bf92f3577b34da6a3ce929d0e0e4736";
      const producer = kafka.producer();
      await producer.connect();
      const messages = Array.from({ length: 30 }, (_, pack) => ({
        key: "later",
        value: Array.from({ length: 100 }, (_, n) =>
          JSON.stringify({
            "@timestamp": "2026-12-06T10:00:00Z",
            message: `later ${pack * 100 + n}`,
            event: { id: `later-${pack * 100 + n}` },
            trace: { id: later },
            host: { name: "test-host" },
          }),
        ).join("\n"),
      }));
      await producer.send({ topic, messages });
      await producer.disconnect();
      await waitForCount(elastic, t.logs, 3_000, 60_000, { term: { "trace.id": later } });
      const admin = kafka.admin();
      await admin.connect();
      const [committed] = await admin.fetchOffsets({ groupId: t.groupId, topics: [topic] });
      await admin.disconnect();
      // The second batch is written; the first is not: no offset past the first batch's start may be committed.
      expect(Number(committed?.partitions[0]?.offset ?? "-1")).toBeLessThanOrEqual(0);
      expect(proxy.refused).toBeGreaterThan(0);
      indexer.process.kill("SIGKILL");
      await indexer.exited;
      const again = launch(t.config);
      await again.started;
      await waitForGroupCaughtUp(kafka, t.groupId, topic);
      expect(await countDocuments(elastic, t.logs)).toBe(8_000);
    } finally {
      await proxy.stop();
    }
  });

  it("a mapping conflict and a non-JSON record go to the dead-letter topic with reasons; the rest is indexed", async () => {
    const t = setup("poison", {}, "data-streams");
    await ensureTopics(kafka, [topicNames(t.prefix).logs, topicNames(t.prefix).deadLetter]);
    const good = (i: number) =>
      JSON.stringify({
        "@timestamp": "2026-11-27T05:00:00Z",
        message: `ok ${i}`,
        event: { id: `good-${i}` },
        host: { name: "h" },
      });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: topicNames(t.prefix).logs,
      messages: [
        { key: "a", value: [good(1), good(2)].join("\n") },
        { key: "a", value: "this is { not json" },
        {
          key: "a",
          value: [
            good(3),
            JSON.stringify({
              message: "bad offset",
              event: { id: "conflict" },
              log: { offset: "not-a-number" },
            }),
            good(4),
          ].join("\n"),
        },
        { key: "a", value: good(5) },
      ],
    });
    await producer.disconnect();
    const dead = await new TopicReader(kafka, topicNames(t.prefix).deadLetter).start();
    try {
      const indexer = launch(t.config);
      await indexer.started;
      await waitForGroupCaughtUp(kafka, t.groupId, topicNames(t.prefix).logs);
      expect(await countDocuments(elastic, t.logs)).toBe(5);
      const letters = await dead.waitFor((r) => r.length >= 2);
      expect(letters).toHaveLength(2);
      const byType = Object.fromEntries(
        letters.map((l) => [(l.value.error as { type: string }).type, l.value]),
      );
      expect(Object.keys(byType).sort()).toEqual(["document_parsing_exception", "indexer.not_json"]);
      expect(byType["indexer.not_json"]?.original).toBe("this is { not json");
      expect((byType.document_parsing_exception?.error as { reason: string } | undefined)?.reason).toContain(
        "log.offset",
      );
      // Elasticsearch's cause, not only its outer "failed to parse field".
      expect(
        (byType.document_parsing_exception?.error as { caused_by?: unknown } | undefined)?.caused_by,
      ).toEqual({ type: "illegal_argument_exception", reason: 'For input string: "not-a-number"' });
      expect(byType.document_parsing_exception?.kafka).toMatchObject({
        topic: topicNames(t.prefix).logs,
        partition: expect.any(Number),
        index: 1,
      });
      expect(indexer.process.exitCode).toBeNull();
    } finally {
      await dead.stop();
    }
  });

  it("two indexers share the partitions, with a rebalance in the middle: exact count", async () => {
    const t = setup("rebalance", { bulk: { maxBytes: 128 * 1024, concurrency: 2 } });
    await ensureTopics(kafka, [topicNames(t.prefix).logs]);
    await produceLogRecords(kafka, topicNames(t.prefix).logs, 60_000, { files: 12 });
    const first = launch(t.config);
    await first.started;
    await waitForCount(elastic, t.logs, 5_000);
    const second = launch(t.config);
    await second.started;
    // Re-deliveries during the rebalance: the same 40,000 records again (same ids), which must not add documents.
    await produceLogRecords(kafka, topicNames(t.prefix).logs, 40_000, { files: 12 });
    await waitForGroupCaughtUp(kafka, t.groupId, topicNames(t.prefix).logs, 180_000);
    expect(await countDocuments(elastic, t.logs)).toBe(60_000);
    expect(first.process.exitCode).toBeNull();
    expect(second.process.exitCode).toBeNull();
  });

  it("spans and logs of one trace are found by one trace.id query; plain indices where data streams are off", async () => {
    const t = setup("trace");
    await ensureTopics(kafka, [topicNames(t.prefix).logs, topicNames(t.prefix).spans]);
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    await produceLogRecords(kafka, topicNames(t.prefix).logs, 100, {
      traceId: (i) => (i % 10 === 0 ? traceId : undefined),
    });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: topicNames(t.prefix).spans,
      messages: [
        {
          key: traceId,
          value: JSON.stringify({
            "@timestamp": "2026-11-27T05:00:00.000Z",
            event: { id: "span-1", outcome: "success" },
            trace: { id: traceId },
            span: {
              id: "00f067aa0ba902b7",
              name: "GET /items",
              kind: "server",
              start_ns: "1795756800000000000",
              end_ns: "1795756800012000000",
            },
            service: { name: "app" },
          }),
        },
      ],
    });
    await producer.disconnect();
    const indexer = launch(t.config);
    await indexer.started;
    await waitForCount(elastic, `lifeline-logs-${t.namespace}`, 100);
    await waitForCount(elastic, `lifeline-traces-${t.namespace}`, 1);
    const found = await elastic.search({
      index: `lifeline-*-${t.namespace}`,
      query: { term: { "trace.id": traceId } },
      size: 100,
    });
    const indices = found.hits.hits.map((hit) => hit._index);
    expect(indices.filter((index) => index === `lifeline-logs-${t.namespace}`)).toHaveLength(10);
    expect(indices.filter((index) => index === `lifeline-traces-${t.namespace}`)).toHaveLength(1);
    const span = found.hits.hits.find((hit) => hit._index.startsWith("lifeline-traces"))?._source as {
      event: { duration: number };
    };
    expect(span.event.duration).toBe(12_000_000);
  });
});
