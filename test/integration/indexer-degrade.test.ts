import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { createLogger } from "../../core/logger.ts";
import { layout, setupIndices } from "../../indexer/index-setup.ts";
import { freePort } from "../helpers/agent.ts";
import { type ProcessUnderTest, startLifeline, waitForCount } from "../helpers/indexer.ts";
import { testElastic, uniqueName } from "../helpers/services.ts";
import { shipperWorkspace, startShipper, writeShipperConfig } from "../helpers/shipper.ts";

function nested(levels: number): Record<string, unknown> {
  let value: unknown = "leaf";
  for (let i = levels - 1; i >= 0; i--) value = { [`k${i}`]: value };
  return value as Record<string, unknown>;
}

describe("indexer: documents Elasticsearch would refuse are stored, degraded and flagged", () => {
  const elastic = testElastic();
  const running: ProcessUnderTest[] = [];
  afterEach(async () => {
    for (const child of running.splice(0)) await child.stop("SIGKILL");
  });
  afterAll(async () => {
    await elastic.close();
  });

  it("JSON log lines with a 40 KB string field and a 30-deep object, through the real shipper and indexer: searchable by their message, flagged", async () => {
    const ws = shipperWorkspace("degrade");
    const namespace = uniqueName("degrade").replaceAll("-", "_");
    const path = join(ws.logs, "app.log");
    const line = (message: string, extra: Record<string, unknown>) =>
      `${JSON.stringify({ time: "2026-12-06T05:00:00Z", level: "info", msg: message, ...extra })}\n`;
    writeFileSync(path, "");
    const shipper = startShipper(
      writeShipperConfig(ws.dir, {
        host: { name: "degrade-host" },
        checkpointDir: ws.checkpointDir,
        topicPrefix: ws.prefix,
        inputs: [{ name: "app", paths: [path], parser: "json" }],
      }),
    );
    running.push(shipper);
    await shipper.started;
    const indexerConfig = join(ws.dir, "indexer.yaml");
    const port = await freePort();
    // Plain indices: a test's data streams cannot be removed from this Elasticsearch (README, test services).
    writeFileSync(
      indexerConfig,
      stringify({
        topicPrefix: ws.prefix,
        groupId: uniqueName("indexer-degrade"),
        namespace,
        indices: { replicas: 0, mode: "indices" },
        http: { port },
      }),
    );
    const indexer = startLifeline(["indexer", "--config", indexerConfig], "indexer started");
    running.push(indexer);
    await indexer.started;
    appendFileSync(path, line("long value line", { payload: "x".repeat(40_000), user: "ann" }));
    appendFileSync(path, line("deep object line", { tree: nested(30) }));
    appendFileSync(path, line("ordinary line", { user: "bob" }));

    const index = layout(namespace, false).targets.logs;
    expect(await waitForCount(elastic, `${index}*`, 3)).toBe(3);
    const find = async (text: string) => {
      const { hits } = await elastic.search<Record<string, unknown>>({
        index: `${index}*`,
        query: { match_phrase: { message: text } },
      });
      expect(hits.hits).toHaveLength(1);
      return hits.hits[0]?._source as { lifeline: { flags?: string[]; fields: Record<string, unknown> } };
    };
    const long = await find("long value line");
    expect(long.lifeline.flags).toEqual(["long_value_not_indexed"]);
    expect(long.lifeline.fields.payload).toHaveLength(40_000);
    const deep = await find("deep object line");
    expect(deep.lifeline.flags).toEqual(["depth_limited"]);
    expect(JSON.stringify(deep.lifeline.fields)).toContain('\\"k29\\":\\"leaf\\"');
    const ordinary = await find("ordinary line");
    expect(ordinary.lifeline.flags).toBeUndefined();
    // The rest of a degraded document is still searchable by its fields, and by its flag.
    const byField = await elastic.count({
      index: `${index}*`,
      query: { term: { "lifeline.fields.user": "ann" } },
    });
    expect(byField.count).toBe(1);
    const flagged = await elastic.count({
      index: `${index}*`,
      query: { exists: { field: "lifeline.flags" } },
    });
    expect(flagged.count).toBe(2);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain('lifeline_indexer_documents_degraded_total{flag="long_value_not_indexed"} 1');
    expect(metrics).toContain('lifeline_indexer_documents_degraded_total{flag="depth_limited"} 1');
  });

  it("two namespaces with different replicas keep their own: one indexer's setup does not change the other's new indices", async () => {
    const logger = createLogger("test");
    const [a, b] = [uniqueName("replicas-a"), uniqueName("replicas-b")].map((n) => n.replaceAll("-", "_"));
    await setupIndices(
      elastic,
      { namespace: a as string, retention: "7d", replicas: 0, mode: "indices" },
      logger,
    );
    await setupIndices(
      elastic,
      { namespace: b as string, retention: "7d", replicas: 1, mode: "indices" },
      logger,
    );
    const replicasOf = async (namespace: string) => {
      const index = `${layout(namespace, false).targets.logs}-000001`;
      await elastic.indices.create({ index });
      const settings = await elastic.indices.getSettings({ index });
      return settings[index]?.settings?.index?.number_of_replicas;
    };
    // a was set up first: before, b's setup rewrote the shared component template and a's new indices got 1.
    expect(await replicasOf(a as string)).toBe("0");
    expect(await replicasOf(b as string)).toBe("1");
  });
});
