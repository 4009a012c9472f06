import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { topicNames } from "../../core/topics.ts";
import { parseTraceparent } from "../../core/trace-context.ts";
import {
  agentWorkspace,
  fixture,
  freePort,
  killWorkspaceServices,
  makeCommand,
  publish,
  signed,
  waitForJournal,
  writeAgentConfig,
} from "../helpers/agent.ts";
import { type ProcessUnderTest, startLifeline, waitForCount } from "../helpers/indexer.ts";
import { testElastic, testKafka, uniqueName } from "../helpers/services.ts";

describe("agent → journal → shipper → Kafka → indexer → Elasticsearch", () => {
  const running: ProcessUnderTest[] = [];
  const elastic = testElastic();
  afterAll(async () => {
    for (const process of running) await process.stop("SIGKILL");
    await elastic.close();
    killWorkspaceServices();
  });

  it("a start's lifecycle events and the service's own log line are found under the command's trace id", async () => {
    const ws = agentWorkspace("e2e");
    const port = await freePort();
    const serviceLog = join(ws.dir, "logs", "api.log");
    const agentConfig = writeAgentConfig(ws, [
      {
        name: "api",
        command: [process.execPath, fixture("well-behaved.mjs")],
        env: { PORT: String(port) },
        logFile: serviceLog,
        port,
        health: { tcp: { port }, periodMs: 100, failureThreshold: 30 },
      },
    ]);
    const namespace = uniqueName("e2e").replaceAll("-", "_");
    const shipperConfig = join(ws.dir, "shipper.yaml");
    writeFileSync(
      shipperConfig,
      stringify({
        host: { name: ws.host },
        checkpointDir: join(ws.dir, "shipper-state"),
        topicPrefix: ws.prefix,
        reconcileIntervalMs: 300,
        inputs: [
          { name: "agent-journal", kind: "lifecycle", paths: [ws.journal] },
          { name: "api", paths: [serviceLog], service: { name: "api" } },
        ],
      }),
    );
    const indexerConfig = join(ws.dir, "indexer.yaml");
    writeFileSync(
      indexerConfig,
      stringify({
        topicPrefix: ws.prefix,
        groupId: uniqueName("e2e-indexer"),
        namespace,
        indices: { replicas: 0, mode: "indices" },
      }),
    );

    const agent = startLifeline(["agent", "--config", agentConfig], "agent started");
    running.push(agent);
    await agent.started;
    const shipper = startLifeline(["shipper", "--config", shipperConfig], "shipper started");
    const indexer = startLifeline(["indexer", "--config", indexerConfig], "indexer started");
    running.push(shipper, indexer);
    await Promise.all([shipper.started, indexer.started]);

    const start = makeCommand(ws, "start", "api", { rolloutId: "rollout-e2e" });
    await publish(testKafka(), topicNames(ws.prefix).control, signed(ws, start));
    await waitForJournal(ws.journal, (events) =>
      events.some((e) => e.lifeline.command_id === start.id && e.event.action === "command.completed"),
    );
    const traceId = parseTraceparent(start.traceparent)?.traceId as string;

    const lifecycle = `lifeline-lifecycle-${namespace}`;
    const logs = `lifeline-logs-${namespace}`;
    // The lifecycle stream also holds the agent's own events (started, heartbeats): count this trace's.
    const ofTrace = { term: { "trace.id": traceId } };
    await waitForCount(elastic, lifecycle, 4, 120_000, ofTrace);
    await waitForCount(elastic, logs, 1, 120_000, ofTrace);
    const found = await elastic.search({
      index: `${lifecycle},${logs}`,
      query: { term: { "trace.id": traceId } },
      sort: [{ "@timestamp": "asc" }],
      size: 50,
    });
    const hits = found.hits.hits.map((hit) => ({
      index: hit._index,
      source: hit._source as Record<string, unknown>,
    }));
    const steps = hits
      .filter((hit) => hit.index.includes("lifecycle"))
      .map((hit) => (hit.source.event as { action: string }).action);
    expect(steps).toEqual(["command.received", "start.spawned", "start.healthy", "command.completed"]);
    const lines = hits.filter((hit) => hit.index === logs).map((hit) => hit.source.message as string);
    expect(lines).toEqual([
      expect.stringMatching(new RegExp(`^listening on ${port} traceparent=00-${traceId}-`)),
    ]);
    const completed = hits.find(
      (hit) => (hit.source.event as { action: string }).action === "command.completed",
    )?.source;
    expect(completed).toMatchObject({
      lifeline: { command_id: start.id, rollout_id: "rollout-e2e" },
      host: { name: ws.host },
      service: { name: "api" },
    });
    // The command's one final outcome names its evidence, searchable as a field.
    const withEvidence = await elastic.search({
      index: lifecycle,
      query: {
        bool: {
          filter: [
            ofTrace,
            { term: { "event.action": "command.completed" } },
            { term: { "lifeline.evidence": `tcp probe 127.0.0.1:${port} passed` } },
          ],
        },
      },
    });
    expect(withEvidence.hits.hits).toHaveLength(1);

    const stop = makeCommand(ws, "stop", "api");
    await publish(testKafka(), topicNames(ws.prefix).control, signed(ws, stop));
    await waitForJournal(ws.journal, (events) =>
      events.some((e) => e.lifeline.command_id === stop.id && e.event.action === "command.completed"),
    );
  });
});
