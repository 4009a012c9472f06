import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { readSince } from "../../core/kafka/read-since.ts";
import { topicNames } from "../../core/topics.ts";
import {
  agentWorkspace,
  fixture,
  freePort,
  killWorkspaceServices,
  waitForPresence,
  writeAgentConfig,
} from "../helpers/agent.ts";
import { launchChromium } from "../helpers/chromium.ts";
import { runLifeline } from "../helpers/cli.ts";
import { startCollector } from "../helpers/collector.ts";
import { type ProcessUnderTest, startLifeline, waitForCount } from "../helpers/indexer.ts";
import { testElastic, testKafka, uniqueName } from "../helpers/services.ts";

interface SpanDocument {
  span: { id: string; name: string };
  parent?: { id: string };
  service: { name: string };
  event: { outcome: string };
}

describe("one trace from rollout to process exit", { timeout: 240_000 }, () => {
  const running: ProcessUnderTest[] = [];
  const elastic = testElastic();
  afterAll(async () => {
    for (const child of running) await child.stop("SIGKILL");
    await elastic.close();
    killWorkspaceServices();
  });

  it("a restart rollout's trace in Elasticsearch: rollout → wave → command → agent phases, with its lifecycle events and log line", async () => {
    const ws = agentWorkspace("trace");
    const namespace = uniqueName("trace").replaceAll("-", "_");
    const collector = await startCollector(ws.dir, { topicPrefix: ws.prefix });
    running.push(collector);
    const tracing = {
      ...process.env,
      LIFELINE_OTLP_ENDPOINT: collector.url,
      LIFELINE_TOPIC_PREFIX: ws.prefix,
    };

    const port = await freePort();
    const serviceLog = join(ws.dir, "logs", "api.log");
    const agentConfig = writeAgentConfig(ws, [
      {
        name: "api",
        command: [process.execPath, fixture("well-behaved.mjs")],
        env: { PORT: String(port) },
        logFile: serviceLog,
        port,
        gracePeriodMs: 3_000,
        // Up to 3 s to listen: a restart's new node process on two busy cores can take over 300 ms.
        health: { tcp: { port }, periodMs: 100, failureThreshold: 30 },
      },
    ]);
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
        groupId: uniqueName("trace-indexer"),
        namespace,
        indices: { replicas: 0, mode: "indices" },
      }),
    );
    const agent = startLifeline(["agent", "--config", agentConfig], "agent started", tracing);
    const shipper = startLifeline(["shipper", "--config", shipperConfig], "shipper started", tracing);
    const indexer = startLifeline(["indexer", "--config", indexerConfig], "indexer started", tracing);
    running.push(agent, shipper, indexer);
    await Promise.all([agent.started, shipper.started, indexer.started]);

    await waitForPresence(testKafka(), topicNames(ws.prefix).lifecycle, [ws.host]);
    const keyFile = join(ws.dir, "controller.key");
    writeFileSync(keyFile, ws.keys.privateKeyPem);
    const fleetFile = join(ws.dir, "fleet.yaml");
    writeFileSync(fleetFile, stringify({ hosts: [{ name: ws.host, groups: ["shop"], services: ["api"] }] }));
    const rollout = async (action: string, fleet: string | undefined = fleetFile, expectedCode = 0) => {
      const planFile = join(ws.dir, `${action}.yaml`);
      writeFileSync(
        planFile,
        stringify({
          name: `shop-${action}`,
          action,
          targets: { groups: ["shop"] },
          services: [{ name: "api" }],
          deadlines: { deliveryMs: 10_000, executionMs: 15_000 },
        }),
      );
      const result = await runLifeline(
        [
          "rollout",
          "--plan",
          planFile,
          ...(fleet ? ["--fleet", fleet] : []),
          "--key",
          keyFile,
          "--key-id",
          "test-controller",
          "--json",
        ],
        tracing,
      );
      expect(result.code, result.stderr).toBe(expectedCode);
      return JSON.parse(result.stdout) as {
        rolloutId: string;
        traceId: string;
        status: string;
        steps: Array<{ host: string; commandId: string; status: string; reason?: string }>;
      };
    };
    await rollout("start");
    const restart = await rollout("restart");
    expect(restart.status).toBe("success");
    const traceId = restart.traceId;

    // Spans: the controller's 3, the agent's command span and its 3 phases.
    const spansIndex = `lifeline-traces-${namespace}`;
    const inTrace = { term: { "trace.id": traceId } };
    const deadline = Date.now() + 60_000;
    let spans: SpanDocument[] = [];
    while (Date.now() < deadline) {
      await elastic.indices.refresh({ index: spansIndex, ignore_unavailable: true }).catch(() => {});
      const found = await elastic
        .search<SpanDocument>({ index: spansIndex, query: inTrace, size: 100, ignore_unavailable: true })
        .catch(() => undefined);
      spans = found?.hits.hits.map((hit) => hit._source as SpanDocument) ?? [];
      if (spans.length >= 7) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const byName = new Map(spans.map((span) => [span.span.name, span]));
    const parentName = (name: string) => {
      const parentId = byName.get(name)?.parent?.id;
      return spans.find((span) => span.span.id === parentId)?.span.name ?? "(none)";
    };
    const agentSpan = "agent restart api";
    expect(Object.fromEntries([...byName.keys()].map((name) => [name, parentName(name)]))).toEqual({
      "rollout shop-restart": "(none)",
      "wave 1 restart api": "rollout shop-restart",
      [`restart api on ${ws.host}`]: "wave 1 restart api",
      [agentSpan]: `restart api on ${ws.host}`,
      "stop: SIGTERM, grace 3000 ms": agentSpan,
      spawn: agentSpan,
      "health probe": agentSpan,
    });
    expect(byName.get("rollout shop-restart")?.service.name).toBe("lifeline-controller");
    expect(byName.get(agentSpan)?.service.name).toBe("lifeline-agent");
    expect(spans.every((span) => span.event.outcome === "success")).toBe(true);

    // The lifecycle events of the rollout, the controller's and the agent's, carry the same trace id.
    const lifecycle = `lifeline-lifecycle-${namespace}`;
    await waitForCount(elastic, lifecycle, 1);
    let actions: string[] = [];
    const eventsDeadline = Date.now() + 60_000;
    while (Date.now() < eventsDeadline) {
      await elastic.indices.refresh({ index: lifecycle });
      const found = await elastic.search<{ event: { action: string } }>({
        index: lifecycle,
        query: inTrace,
        sort: [{ "@timestamp": "asc" }],
        size: 100,
      });
      actions = found.hits.hits.map((hit) => hit._source?.event.action as string);
      if (actions.includes("rollout.completed") && actions.includes("command.completed")) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(actions).toEqual(
      expect.arrayContaining([
        "rollout.planned",
        "wave.started",
        "command.sent",
        "command.received",
        "stop.signal_sent",
        "stop.completed",
        "start.spawned",
        "start.healthy",
        "command.completed",
        "rollout.completed",
      ]),
    );
    // The restarted service got the agent span's context: its log line joins the same trace.
    const agentSpanId = spans.find((span) => span.span.name === agentSpan)?.span.id;
    const logs = `lifeline-logs-${namespace}`;
    const lineDeadline = Date.now() + 60_000;
    let lines: string[] = [];
    while (Date.now() < lineDeadline && lines.length === 0) {
      await elastic.indices.refresh({ index: logs, ignore_unavailable: true }).catch(() => {});
      const found = await elastic
        .search<{ message: string }>({ index: logs, query: inTrace, ignore_unavailable: true })
        .catch(() => undefined);
      lines = found?.hits.hits.map((hit) => hit._source?.message as string) ?? [];
      if (lines.length === 0) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(lines).toEqual([`listening on ${port} traceparent=00-${traceId}-${agentSpanId}-01`]);

    // The timeline read back from Elasticsearch: every step in order, one trace; its page drawn by Chromium.
    const html = join(ws.dir, "timeline.html");
    const timeline = await runLifeline([
      "timeline",
      "--rollout",
      restart.rolloutId,
      "--namespace",
      namespace,
      "--html",
      html,
    ]);
    expect(timeline.code, timeline.stderr).toBe(0);
    const printed = timeline.stdout.split("\n").filter((line) => line.trim());
    // The last line counts the steps from their final events.
    expect(printed.at(-1)).toBe("1 steps: 1 succeeded, 0 failed, 0 unknown, 0 cancelled");
    const steps = printed.slice(2, -1).map((line) => line.split(/\s{2,}/));
    expect(steps.map((cells) => cells.find((cell) => /^[a-z]+\.[a-z_]+$/.test(cell)))).toEqual([
      "rollout.planned",
      "wave.started",
      "command.sent",
      "command.received",
      "stop.requested",
      "stop.signal_sent",
      "stop.completed",
      "start.spawned",
      "start.healthy",
      "command.completed",
      "step.completed",
      "rollout.completed",
    ]);
    expect(timeline.stdout.split("\n")[0]).toContain(`trace ${traceId}`);
    // The step's one final outcome in Elasticsearch: under the rollout's trace, with the agent's evidence.
    const finals = await elastic.search<{
      trace: { id: string };
      lifeline: { evidence?: string; step_status?: string };
    }>({
      index: `lifeline-lifecycle-${namespace}`,
      query: {
        bool: {
          filter: [
            { term: { "lifeline.rollout_id": restart.rolloutId } },
            { term: { "event.action": "step.completed" } },
          ],
        },
      },
    });
    expect(finals.hits.hits.map((hit) => hit._source)).toEqual([
      expect.objectContaining({
        trace: { id: traceId },
        lifeline: expect.objectContaining({
          step_status: "success",
          evidence: expect.stringMatching(/^command\.completed from \S+: tcp probe 127\.0\.0\.1:\d+ passed$/),
        }),
      }),
    ]);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`file://${html}`);
      expect(await page.locator("rect.command").count()).toBe(1);
      expect(await page.locator('rect.command[data-outcome="success"]').count()).toBe(1);
      expect(await page.locator('rect.phase[data-phase="stop"]').count()).toBe(1);
      expect(await page.locator('rect.phase[data-phase="start"]').count()).toBe(1);
      expect(await page.locator("rect.wave").count()).toBe(1);
      expect(await page.locator("#succeeded").textContent()).toBe("1");
      expect((await page.screenshot({ fullPage: true })).length).toBeGreaterThan(10_000);
    } finally {
      await browser.close();
    }

    // Presence: without a fleet file the fleet is the live agents; a declared host with no heartbeat is
    // undeliverable, reported and never sent anything, and the rollout is incomplete.
    const fromHeartbeats = await rollout("restart", undefined);
    expect(fromHeartbeats.status).toBe("success");
    expect(fromHeartbeats.steps.map((step) => step.host)).toEqual([ws.host]);
    const withGhost = join(ws.dir, "fleet-ghost.yaml");
    writeFileSync(
      withGhost,
      stringify({
        hosts: [
          { name: ws.host, groups: ["shop"], services: ["api"] },
          { name: "ghost-host", groups: ["shop"], services: ["api"] },
        ],
      }),
    );
    const incomplete = await rollout("restart", withGhost, 1);
    expect(incomplete.status).toBe("incomplete");
    expect(incomplete.steps.map((step) => [step.host, step.status, step.reason ?? ""]).sort()).toEqual([
      ["ghost-host", "undeliverable", "no agent heartbeat in the last 60 s"],
      [ws.host, "success", "restarted: started"],
    ]);
    // One final record per step, the undeliverable one included (once, not twice).
    const finalHosts: string[] = [];
    await readSince(testKafka(), topicNames(ws.prefix).lifecycle, Date.now() - 600_000, (text) => {
      const event = JSON.parse(text);
      if (event.lifeline?.rollout_id === incomplete.rolloutId && event.event?.action === "step.completed")
        finalHosts.push(event.lifeline.step?.host);
    });
    expect(finalHosts.sort()).toEqual(["ghost-host", ws.host].sort());
  });
});
