import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Client } from "@elastic/elasticsearch";
import { waitForPresence } from "../controller/presence.ts";
import { describeSummary, type RolloutSummary } from "../controller/run.ts";
import { formatTimeline, readTimeline, type Timeline, timelineHtml } from "../controller/timeline.ts";
import { resolveElastic, resolveKafka } from "../core/connections.ts";
import { createElastic } from "../core/elastic/client.ts";
import { createKafka } from "../core/kafka/client.ts";
import { topicNames } from "../core/topics.ts";
import { servicesDown, servicesUp } from "../local-services/manager.ts";
import { isAlive } from "../local-services/process.ts";
import { localServicesSettings } from "../local-services/settings.ts";
import {
  agentServicePids,
  type DemoManifest,
  type Launched,
  launchComponent,
  lifelineBin,
  readManifest,
  stopGroups,
  writeManifest,
} from "./processes.ts";
import { CONTROLLER_KEY_ID, type DemoWorkspace, writeDemoWorkspace } from "./workspace.ts";

interface RolloutJson {
  rolloutId: string;
  traceId: string;
  status: string;
  steps: Array<{ host: string; service: string; status: string; reason?: string; escalated?: boolean }>;
  summary: RolloutSummary;
}

interface SpanSource {
  "@timestamp": string;
  span: { id: string; name: string };
  parent?: { id: string };
  host?: { name: string };
  service?: { name: string };
  event?: { outcome?: string; duration?: number };
  lifeline?: { attributes?: Record<string, unknown> };
}

interface LogSource {
  "@timestamp": string;
  message?: string;
  trace?: { id?: string };
}

export async function runDemo(values: { keep: boolean; dir?: string }): Promise<number> {
  return new Demo(values.keep, values.dir).run();
}

/** `lifeline demo stop DIR`: stops what a --keep run left running. */
export async function stopDemo(dir: string): Promise<number> {
  return (await cleanUp(readManifest(dir), (line) => process.stdout.write(`${line}\n`))) ? 0 : 1;
}

class Demo {
  private readonly began = performance.now();
  private readonly dir: string;
  private manifest: DemoManifest | undefined;
  private readonly launched: Launched[] = [];

  private readonly keep: boolean;

  constructor(keep: boolean, dir: string | undefined) {
    this.keep = keep;
    if (dir) mkdirSync(dir, { recursive: true });
    this.dir = dir ? resolve(dir) : mkdtempSync(join(tmpdir(), "lifeline-demo-"));
  }

  private say(line = ""): void {
    process.stdout.write(`${line}\n`);
  }

  private step(number: number, title: string): void {
    const elapsed = ((performance.now() - this.began) / 1000).toFixed(1);
    this.say(`\n[${number}/6] ${title}  (${elapsed} s)`);
  }

  async run(): Promise<number> {
    const interrupted = () => {
      this.say("\ninterrupted: stopping what the demo started");
      void this.finish(false).then(() => process.exit(130));
    };
    process.once("SIGINT", interrupted);
    process.once("SIGTERM", interrupted);
    let ok = false;
    try {
      ok = await this.story();
    } catch (error) {
      this.say(`\ndemo failed: ${error instanceof Error ? error.message : String(error)}`);
      this.say(`component logs: ${join(this.dir, "logs")}`);
    } finally {
      process.off("SIGINT", interrupted);
      process.off("SIGTERM", interrupted);
    }
    const stopped = await this.finish(this.keep);
    return ok && stopped ? 0 : 1;
  }

  private async story(): Promise<boolean> {
    this.say(`Lifeline demo: workspace ${this.dir}`);
    this.step(1, "Kafka and Elasticsearch");
    const reports = await servicesUp(localServicesSettings(), process.env, (m) => this.say(`      ${m}`));
    for (const r of reports) {
      const how =
        r.mode === "external" ? "named by the environment" : r.reused ? "already running" : "started";
      this.say(
        `      ${r.name} ${r.version ?? ""} at ${r.address}: ${r.healthy ? "ready" : r.detail} (${how})`,
      );
    }
    if (!reports.every((r) => r.healthy)) throw new Error("Kafka or Elasticsearch is not healthy");
    const local = reports.filter((r) => r.mode === "local");
    const runId = Date.now().toString(36);
    const ws = await writeDemoWorkspace(this.dir, runId);
    this.manifest = {
      topicPrefix: ws.topicPrefix,
      namespace: ws.namespace,
      startedServers: local.length === 2 && local.every((r) => !r.reused),
      components: [],
      agentStateDirs: ws.hosts.map((h) => h.stateDir),
    };
    writeManifest(this.dir, this.manifest);

    this.step(2, "collector, indexer, and three hosts with an agent and a shipper each");
    const collectorUrl = `http://127.0.0.1:${ws.collectorPort}`;
    const baseEnv = { ...process.env, LIFELINE_LOG_LEVEL: "info" };
    // The agents and the controller send their own spans to the collector: the rollout's trace ends in
    // Elasticsearch next to its lifecycle events. Exported within half a second, so the read-back finds them.
    const tracedEnv = { ...baseEnv, LIFELINE_OTLP_ENDPOINT: collectorUrl, OTEL_BSP_SCHEDULE_DELAY: "500" };
    this.launch("collector", ["collector", "--config", ws.collectorConfig], "collector started", baseEnv);
    this.launch("indexer", ["indexer", "--config", ws.indexerConfig], "indexer started", baseEnv);
    for (const host of ws.hosts) {
      this.launch(`${host.host} agent`, ["agent", "--config", host.agentConfig], "agent started", tracedEnv);
      this.launch(
        `${host.host} shipper`,
        ["shipper", "--config", host.shipperConfig],
        "shipper started",
        baseEnv,
      );
    }
    await Promise.all(
      this.launched.map(async (l) => {
        await l.ready;
        this.say(`      ${l.name.padEnd(22)} pid ${l.child.pid}`);
      }),
    );
    this.say(
      `      OTLP/HTTP collector at ${collectorUrl}; topics ${ws.topicPrefix}.*; indices *-lifeline*-demo`,
    );
    await this.waitForHeartbeats(ws);

    this.step(3, "starting the demo services (rollout demo-start)");
    const started = await this.rollout(ws, "start", tracedEnv, false);
    for (const s of started.steps) this.say(`      ${s.host.padEnd(14)} ${s.service.padEnd(7)} ${s.status}`);
    if (started.status !== "success") throw new Error(`the start rollout ended ${started.status}`);

    this.step(4, "rolling restart: ledger, then api, then worker (live progress below)");
    const restart = await this.rollout(ws, "restart", tracedEnv, true);
    this.say(
      `      rollout ${restart.rolloutId}: ${restart.status}, trace ${restart.traceId}; ${describeSummary(restart.summary)}`,
    );
    for (const s of restart.steps)
      this.say(
        `      ${s.host.padEnd(14)} ${s.service.padEnd(7)} ${s.status}${s.escalated ? " [escalated]" : ""}${s.reason ? ` (${s.reason})` : ""}`,
      );

    this.step(5, "read back from Elasticsearch");
    const elastic = createElastic(resolveElastic());
    try {
      const timeline = await this.waitForTimeline(elastic, ws, restart);
      this.say(
        formatTimeline(timeline)
          .trimEnd()
          .split("\n")
          .map((l) => `      ${l}`)
          .join("\n"),
      );
      const traces = new Set(timeline.entries.map((e) => e.traceId));
      this.say(
        traces.size === 1 && traces.has(restart.traceId)
          ? `      all ${timeline.entries.length} events carry trace ${restart.traceId}`
          : `      events under ${traces.size} trace ids: ${[...traces].join(", ")}`,
      );
      for (const escalated of timeline.entries.filter((e) => e.action === "stop.escalated"))
        this.say(
          `      escalation: ${escalated.service} on ${escalated.host}: ${escalated.reason ?? "SIGKILL"}`,
        );
      await this.printSpans(elastic, ws, restart);
      await this.printLogsAroundRestarts(elastic, ws, timeline);
      const html = join(this.dir, "timeline.html");
      writeFileSync(html, timelineHtml(timeline));
      this.say(`\n      timeline page: ${html}`);
      this.printKibana(restart);
      return restart.status === "success" && started.status === "success" && traces.size === 1;
    } finally {
      await elastic.close();
    }
  }

  private launch(name: string, args: string[], readyMessage: string, env: NodeJS.ProcessEnv): void {
    const logFile = join(this.dir, "logs", `${name.replace(" ", "-")}.log`);
    const launched = launchComponent(name, args, { logFile, readyMessage, env });
    this.launched.push(launched);
    if (this.manifest && launched.child.pid) {
      this.manifest.components.push({ name, pid: launched.child.pid });
      writeManifest(this.dir, this.manifest);
    }
  }

  private async waitForHeartbeats(ws: DemoWorkspace): Promise<void> {
    const wanted = ws.hosts.map((h) => h.host);
    await waitForPresence(createKafka(resolveKafka()), topicNames(ws.topicPrefix).lifecycle, wanted);
    this.say(
      `      heartbeats on ${topicNames(ws.topicPrefix).lifecycle} from ${wanted.join(", ")}: the fleet is live`,
    );
  }

  private rollout(
    ws: DemoWorkspace,
    action: "start" | "restart",
    env: NodeJS.ProcessEnv,
    live: boolean,
  ): Promise<RolloutJson> {
    const args = ["rollout", "--plan", ws.plan(action), "--key", ws.keyFile, "--key-id", CONTROLLER_KEY_ID];
    const child = spawn(process.execPath, [lifelineBin, ...args, "--json"], {
      // Its progress lines are the story here; its own log records stay at warnings.
      env: { ...env, LIFELINE_TOPIC_PREFIX: ws.topicPrefix, LIFELINE_LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", live ? "inherit" : "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    return new Promise((resolve, reject) => {
      child.once("exit", (code) => {
        try {
          resolve(JSON.parse(stdout) as RolloutJson);
        } catch {
          reject(
            new Error(
              `lifeline rollout (${action}) exited ${code} without a result:\n${stderr.slice(-2_000)}`,
            ),
          );
        }
      });
    });
  }

  /** The indexer catches up within seconds; polled, Elasticsearch announces nothing. */
  private async waitForTimeline(elastic: Client, ws: DemoWorkspace, rollout: RolloutJson): Promise<Timeline> {
    const deadline = Date.now() + 90_000;
    let timeline: Timeline = { entries: [] };
    for (;;) {
      await elastic.indices.refresh({ index: `logs-lifeline.*-${ws.namespace}`, ignore_unavailable: true });
      timeline = await readTimeline(elastic, { rollout: rollout.rolloutId, namespace: ws.namespace });
      const completed = timeline.entries.filter((e) => e.action === "step.completed").length;
      const done = timeline.entries.some((e) => e.action === "rollout.completed");
      if (done && completed >= rollout.steps.length) return timeline;
      if (Date.now() > deadline)
        throw new Error(
          `after 90 s Elasticsearch holds ${timeline.entries.length} events of ${rollout.rolloutId}`,
        );
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  private async printSpans(elastic: Client, ws: DemoWorkspace, rollout: RolloutJson): Promise<void> {
    const index = `traces-lifeline-${ws.namespace}`;
    const hosts = new Set(rollout.steps.map((s) => s.host));
    const deadline = Date.now() + 30_000;
    let spans: SpanSource[] = [];
    // Complete once the controller's root span and a span from every host are in.
    while (Date.now() < deadline) {
      await elastic.indices.refresh({ index, ignore_unavailable: true });
      const found = await elastic.search<SpanSource>({
        index,
        ignore_unavailable: true,
        size: 1_000,
        query: { term: { "trace.id": rollout.traceId } },
        sort: [{ "@timestamp": "asc" }],
      });
      spans = found.hits.hits.map((h) => h._source as SpanSource);
      const seen = new Set(spans.map((s) => s.host?.name));
      if (spans.some((s) => !s.parent) && [...hosts].every((h) => seen.has(h))) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    this.say(
      `\n      spans of trace ${rollout.traceId} in ${index} (controller and agents): ${spans.length}`,
    );
    const children = new Map<string | undefined, SpanSource[]>();
    const ids = new Set(spans.map((s) => s.span.id));
    for (const span of spans) {
      const parent = span.parent && ids.has(span.parent.id) ? span.parent.id : undefined;
      children.set(parent, [...(children.get(parent) ?? []), span]);
    }
    const print = (parent: string | undefined, depth: number) => {
      for (const span of children.get(parent) ?? []) {
        const duration =
          span.event?.duration !== undefined ? `${Math.round(span.event.duration / 1e6)} ms` : "";
        const what = `${"  ".repeat(depth)}${span.span.name}`;
        const escalated = span.lifeline?.attributes?.["lifeline.escalated"] === true ? "  escalated" : "";
        this.say(
          `      ${what.padEnd(44)} ${(span.service?.name ?? "").padEnd(20)} ${duration.padStart(8)}${escalated}`,
        );
        print(span.span.id, depth + 1);
      }
    };
    print(undefined, 0);
  }

  /** Each host's service log from just before its command arrived to just after it completed. */
  private async printLogsAroundRestarts(
    elastic: Client,
    ws: DemoWorkspace,
    timeline: Timeline,
  ): Promise<void> {
    const index = `logs-lifeline.logs-${ws.namespace}`;
    for (const host of ws.hosts) {
      const received = timeline.entries.find((e) => e.host === host.host && e.action === "command.received");
      const completed = timeline.entries.find(
        (e) => e.host === host.host && e.action === "command.completed",
      );
      if (!received || !completed) continue;
      const from = new Date(Date.parse(received.at) - 1_200).toISOString();
      const to = new Date(Date.parse(completed.at) + 1_200).toISOString();
      // The new process's first line may still be on its way through the shipper and indexer.
      const deadline = Date.now() + 30_000;
      let lines: LogSource[] = [];
      while (Date.now() < deadline) {
        await elastic.indices.refresh({ index, ignore_unavailable: true });
        const found = await elastic.search<LogSource>({
          index,
          ignore_unavailable: true,
          size: 30,
          query: {
            bool: {
              filter: [
                { term: { "host.name": host.host } },
                { term: { "service.name": host.service } },
                { range: { "@timestamp": { gte: from, lte: to } } },
              ],
            },
          },
          sort: [{ "@timestamp": "asc" }],
        });
        lines = found.hits.hits.map((h) => h._source as LogSource);
        if (lines.some((l) => l.trace?.id === timeline.traceId)) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      this.say(`\n      ${host.service} on ${host.host}, its log around the restart (${index}):`);
      for (const line of lines) {
        const mark = line.trace?.id === timeline.traceId ? "   ← the rollout's trace" : "";
        this.say(`        ${line["@timestamp"].slice(11, 23)}  ${line.message ?? ""}${mark}`);
      }
    }
  }

  private printKibana(rollout: RolloutJson): void {
    const query = `trace.id : "${rollout.traceId}"`;
    const discover =
      "http://localhost:5601/app/discover#/?_g=(time:(from:now-1h,to:now))" +
      `&_a=(dataSource:(dataViewId:lifeline-lifecycle,type:dataView),query:(language:kuery,query:'${encodeURIComponent(query)}'))`;
    // Kibana shows only what its own Elasticsearch holds: the compose file's, not the local servers'.
    const elastic = resolveElastic().url;
    const composeElastic = elastic === "http://localhost:9200" || elastic === "http://127.0.0.1:9200";
    this.say(
      composeElastic
        ? "\n      The same in Kibana (docker compose's, which reads the Elasticsearch this demo wrote to: http://localhost:5601):"
        : `\n      This demo wrote to ${elastic}; docker compose's Kibana reads its own Elasticsearch. To see it there, run the\n      demo against the compose servers: LIFELINE_ES_URL=http://localhost:9200 LIFELINE_ES_USERNAME=elastic\n      LIFELINE_ES_PASSWORD=$ELASTIC_PASSWORD LIFELINE_KAFKA_BROKERS=localhost:9094 LIFELINE_KAFKA_SASL_MECHANISM=plain\n      LIFELINE_KAFKA_USERNAME=lifeline LIFELINE_KAFKA_PASSWORD=$KAFKA_PASSWORD lifeline demo. Then, in Kibana:`,
    );
    this.say(`        KQL in Discover, data view "Lifeline lifecycle events":  ${query}`);
    this.say(`        ${discover}`);
    this.say(
      `        dashboard "Lifeline: rollout", filtered to lifeline.rollout_id : "${rollout.rolloutId}"`,
    );
  }

  /** Stops what the demo started (or, with --keep, says how to). True when nothing is left running. */
  private async finish(keep: boolean): Promise<boolean> {
    this.step(6, keep ? "left running (--keep)" : "stopping everything the demo started");
    if (!this.manifest) return true;
    if (keep) {
      this.say(`      stop it with: npx lifeline demo stop ${this.dir}`);
      for (const l of this.launched) l.child.unref();
      return true;
    }
    return cleanUp(this.manifest, (line) => this.say(line));
  }
}

/** Stops the demo's services, components and topics, and the local servers if the demo started them. */
async function cleanUp(manifest: DemoManifest, say: (line: string) => void): Promise<boolean> {
  // Agents first (so none acts on a service going away), then the services they leave running by design, then
  // the shippers, the indexer and the collector.
  const agents = manifest.components.filter((c) => c.name.endsWith(" agent")).map((c) => c.pid);
  const others = manifest.components.filter((c) => !c.name.endsWith(" agent")).map((c) => c.pid);
  const left = await stopGroups(agents, 10_000);
  const services = agentServicePids(manifest.agentStateDirs);
  left.push(...(await stopGroups(services, 3_000)), ...(await stopGroups(others, 10_000)));
  const components = [...agents, ...others];
  say(`      stopped ${services.length} demo services and ${components.length} Lifeline processes`);
  try {
    const admin = createKafka(resolveKafka()).admin();
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${manifest.topicPrefix}.`));
    await admin.deleteTopics({ topics });
    await admin.disconnect();
    say(
      `      deleted topics ${manifest.topicPrefix}.* (${topics.length}); the documents stay in *-lifeline*-demo`,
    );
  } catch (error) {
    say(
      `      could not delete the demo's topics: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (manifest.startedServers) {
    const down = await servicesDown(localServicesSettings(), (m) => say(`      ${m}`));
    left.push(...down.leftover);
  }
  const alive = left.filter(isAlive);
  say(alive.length === 0 ? "      nothing left running" : `      still running: pids ${alive.join(", ")}`);
  return alive.length === 0;
}
