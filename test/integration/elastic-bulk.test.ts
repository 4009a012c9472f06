import { afterAll, describe, expect, it } from "vitest";
import { deterministicId } from "../../core/events.ts";
import { newTraceId } from "../../core/trace-context.ts";
import { testElastic, uniqueName } from "../helpers/services.ts";

describe("elasticsearch bulk through the project's client factory", () => {
  const client = testElastic();
  const index = uniqueName("lifeline-test-bulk");
  afterAll(async () => {
    await client.indices.delete({ index, ignore_unavailable: true });
    await client.close();
  });

  it("indexes a bulk of documents with deterministic ids, and a replay adds none", async () => {
    await client.indices.create({
      index,
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings: {
        properties: {
          "@timestamp": { type: "date" },
          message: { type: "text" },
          trace: { properties: { id: { type: "keyword" } } },
          log: { properties: { offset: { type: "long" } } },
        },
      },
    });
    const traceId = newTraceId();
    const documents = Array.from({ length: 1_000 }, (_, offset) => ({
      "@timestamp": new Date(Date.UTC(2026, 0, 1, 0, 0, 0, offset)).toISOString(),
      message: `line ${offset}`,
      trace: { id: offset % 10 === 0 ? traceId : newTraceId() },
      log: { offset },
    }));
    const operations = documents.flatMap((doc) => [
      { create: { _index: index, _id: deterministicId("host-a", "file-1", doc.log.offset) } },
      doc,
    ]);

    const first = await client.bulk({ operations, refresh: "wait_for" });
    expect(first.errors).toBe(false);
    expect(first.items.filter((item) => item.create?.status === 201)).toHaveLength(1_000);

    const replay = await client.bulk({ operations, refresh: "wait_for" });
    expect(replay.items.every((item) => item.create?.status === 409)).toBe(true);

    expect((await client.count({ index })).count).toBe(1_000);
    const byTrace = await client.search({
      index,
      query: { term: { "trace.id": traceId } },
      size: 0,
      track_total_hits: true,
    });
    expect(byTrace.hits.total).toEqual({ value: 100, relation: "eq" });
  });
});
