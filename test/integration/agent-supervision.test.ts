import { readFileSync, statSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { topicNames } from "../../core/topics.ts";
import {
  agentWorkspace,
  fixture,
  freePort,
  killWorkspaceServices,
  type LifecycleEvent,
  makeCommand,
  publish,
  readJournal,
  signed,
  waitForJournal,
  writeAgentConfig,
} from "../helpers/agent.ts";
import { type ProcessUnderTest, startLifeline } from "../helpers/indexer.ts";
import { testKafka } from "../helpers/services.ts";

/** What the keeper's events and heartbeats carry beyond the common envelope. */
type Event = LifecycleEvent & {
  process?: { pid?: number; exit_code?: number; signal?: string };
  lifeline: LifecycleEvent["lifeline"] & { restart?: { attempt: number; delay_ms?: number } };
  agent?: { supervision?: Record<string, { desired: string; phase: string; restarts_in_window: number }> };
};

const of = (events: LifecycleEvent[], action: string, service?: string) =>
  (events as Event[]).filter((e) => e.event.action === action && (!service || e.service?.name === service));
const completed = (id: string) => (events: LifecycleEvent[]) =>
  events.some((e) => e.lifeline.command_id === id && e.event.action === "command.completed");
const outcomeOf = (events: LifecycleEvent[], id: string) =>
  events.find((e) => e.lifeline.command_id === id && e.event.action === "command.completed")?.event.outcome;

/** The pid the agent recorded for a process-driver service (its pid file). */
function pidOf(stateDir: string, service: string): number {
  return (JSON.parse(readFileSync(`${stateDir}/run/${service}.pid`, "utf8")) as { pid: number }).pid;
}

/**
 * Absence is proven against the agent's own clock: heartbeats come after every watch interval and backoff in
 * these configs has passed, and they carry what the supervision is doing.
 */
async function heartbeatsAfter(journal: string, since: number, count: number): Promise<Event[]> {
  const events = await waitForJournal(
    journal,
    (e) => of(e, "agent.heartbeat").length >= since + count,
    60_000,
  );
  return of(events, "agent.heartbeat").slice(since);
}

describe("agent supervision: exits, liveness, restarts with backoff, crash loops, and commands win", () => {
  afterAll(killWorkspaceServices);
  const kafka = testKafka();
  const running: ProcessUnderTest[] = [];
  const launch = (config: string) => {
    const agent = startLifeline(["agent", "--config", config], "agent started");
    running.push(agent);
    return agent;
  };
  afterEach(async () => {
    for (const agent of running.splice(0)) await agent.stop("SIGKILL");
  });

  it("a service killed from outside is restarted after growing delays until a crash loop, then left down until a start command", async () => {
    const ws = agentWorkspace("crashloop");
    const port = await freePort();
    const httpPort = await freePort();
    const config = writeAgentConfig(
      ws,
      [
        {
          name: "api",
          command: [process.execPath, fixture("well-behaved.mjs")],
          env: { PORT: String(port) },
          health: { tcp: { port }, periodMs: 100, failureThreshold: 30 },
          watchIntervalMs: 100,
          restart: {
            policy: "always",
            initialDelayMs: 200,
            maxDelayMs: 800,
            maxRestarts: 3,
            windowMs: 120_000,
          },
        },
      ],
      { heartbeatIntervalMs: 1_500, http: { port: httpPort } },
    );
    await launch(config).started;
    const topic = topicNames(ws.prefix).control;
    const start = makeCommand(ws, "start", "api");
    await publish(kafka, topic, signed(ws, start));
    await waitForJournal(ws.journal, completed(start.id));
    expect(outcomeOf(readJournal(ws.journal), start.id)).toBe("success");

    const killed: number[] = [];
    for (let round = 1; round <= 3; round++) {
      const pid = pidOf(ws.stateDir, "api");
      killed.push(pid);
      process.kill(-pid, "SIGKILL");
      await waitForJournal(ws.journal, (e) => of(e, "service.restarted").length >= round);
    }
    // The fourth death within the window is a crash loop.
    process.kill(-pidOf(ws.stateDir, "api"), "SIGKILL");
    let events = await waitForJournal(ws.journal, (e) => of(e, "service.crash_loop").length === 1);

    const exits = of(events, "service.exited");
    expect(exits).toHaveLength(4);
    for (const exit of exits) {
      // The agent's own child: its signal is observed, and the event says no command asked for it.
      expect(exit.event.outcome).toBe("failure");
      expect(exit.process?.signal).toBe("SIGKILL");
      expect(exit.event.reason).toContain("no command asked for it");
    }
    const scheduled = of(events, "service.restart_scheduled").map((e) => e.lifeline.restart);
    expect(scheduled.map((r) => r?.attempt)).toEqual([1, 2, 3]);
    // Equal jitter: attempt n waits between half and all of 200 * 2^(n-1): 100-200, 200-400, 400-800 ms.
    scheduled.forEach((restart, n) => {
      expect(restart?.delay_ms).toBeGreaterThanOrEqual(100 * 2 ** n);
      expect(restart?.delay_ms).toBeLessThanOrEqual(200 * 2 ** n);
    });
    // Each restart ran the start's own steps (spawn, probe) on the incident's trace, which the exit opened.
    const restarted = of(events, "service.restarted");
    expect(restarted.map((e) => e.event.outcome)).toEqual(["success", "success", "success"]);
    for (const [n, exit] of exits.slice(0, 3).entries()) {
      const trace = exit.trace?.id;
      expect(trace).toBeDefined();
      expect(restarted[n]?.trace?.id).toBe(trace);
      expect(events.some((e) => e.event.action === "start.healthy" && e.trace?.id === trace)).toBe(true);
    }
    const loop = of(events, "service.crash_loop")[0] as Event;
    expect(loop.event.outcome).toBe("failure");
    expect(loop.event.reason).toMatch(/^3 restarts within 120000 ms: no more until a start command/);

    // Left down: heartbeats well after every possible backoff say crash_loop, and nothing was spawned since.
    const since = of(events, "agent.heartbeat").length;
    const beats = await heartbeatsAfter(ws.journal, since, 2);
    expect(beats.at(-1)?.agent?.supervision?.api).toMatchObject({ desired: "running", phase: "crash_loop" });
    // /health and /metrics say the same.
    const health = (await fetch(`http://127.0.0.1:${httpPort}/health`).then((r) => r.json())) as {
      status: string;
      services: Record<string, { phase: string; next_restart_at?: string }>;
    };
    expect(health.status).toBe("ok");
    expect(health.services.api?.phase).toBe("crash_loop");
    expect(Date.parse(health.services.api?.next_restart_at ?? "")).toBeGreaterThan(Date.now() + 500_000);
    const metrics = await fetch(`http://127.0.0.1:${httpPort}/metrics`).then((r) => r.text());
    expect(metrics).toContain('lifeline_agent_service_restarts_total{service="api"} 3');
    expect(metrics).toContain('lifeline_agent_service_up{service="api"} 0');
    expect(metrics).toMatch(
      /lifeline_agent_lifecycle_events_total\{action="service.exited",outcome="failure"\} 4/,
    );
    expect(metrics).toMatch(/process_resident_memory_bytes \d+/);
    expect(metrics).toMatch(
      /^lifeline_build_info\{component="agent",version="\d+\.\d+\.\d+",node_version="24\.[\d.]+"\} 1$/m,
    );
    events = readJournal(ws.journal);
    const loopAt = events.indexOf(loop);
    expect(events.slice(loopAt).some((e) => e.event.action === "start.spawned")).toBe(false);

    // A start command ends the crash loop: the service runs again, and is kept again.
    const again = makeCommand(ws, "start", "api");
    await publish(kafka, topic, signed(ws, again));
    events = await waitForJournal(ws.journal, completed(again.id));
    expect(outcomeOf(events, again.id)).toBe("success");
    const beat = await heartbeatsAfter(ws.journal, of(events, "agent.heartbeat").length, 1);
    expect(beat[0]?.agent?.supervision?.api).toMatchObject({ phase: "watching", restarts_in_window: 0 });
  });

  it("a service that stops answering while running fails its liveness probe and is restarted (the hung process killed after the grace period)", async () => {
    const ws = agentWorkspace("liveness");
    const port = await freePort();
    const config = writeAgentConfig(ws, [
      {
        name: "api",
        command: [process.execPath, fixture("well-behaved.mjs")],
        env: { PORT: String(port) },
        gracePeriodMs: 500,
        health: { tcp: { port }, periodMs: 100, failureThreshold: 30 },
        liveness: {
          http: { url: `http://127.0.0.1:${port}/` },
          periodMs: 100,
          timeoutMs: 300,
          failureThreshold: 3,
        },
        watchIntervalMs: 100,
        restart: { policy: "on-failure", initialDelayMs: 100, maxDelayMs: 200 },
      },
    ]);
    await launch(config).started;
    const start = makeCommand(ws, "start", "api");
    await publish(kafka, topicNames(ws.prefix).control, signed(ws, start));
    await waitForJournal(ws.journal, completed(start.id));
    const hung = pidOf(ws.stateDir, "api");
    // Still running, answering nothing: the process is stopped (SIGSTOP), not dead.
    process.kill(hung, "SIGSTOP");
    const events = await waitForJournal(ws.journal, (e) => of(e, "service.restarted").length === 1);
    const unhealthy = of(events, "service.unhealthy");
    expect(unhealthy).toHaveLength(1);
    expect(unhealthy[0]?.event.outcome).toBe("failure");
    expect(unhealthy[0]?.event.reason).toMatch(
      /^liveness probe failed 3 times in a row; restart 1 in \d+ ms/,
    );
    expect(of(events, "service.exited")).toHaveLength(0);
    const trace = unhealthy[0]?.trace?.id;
    const incident = (events as Event[]).filter((e) => e.trace?.id === trace).map((e) => e.event.action);
    // The hung process ignores SIGTERM (it is stopped): the stop escalates, then the start runs.
    expect(incident).toEqual([
      "service.unhealthy",
      "service.restart_scheduled",
      "stop.requested",
      "stop.signal_sent",
      "stop.escalated",
      "stop.completed",
      "start.spawned",
      "start.healthy",
      "service.restarted",
    ]);
    const fresh = pidOf(ws.stateDir, "api");
    expect(fresh).not.toBe(hung);
    const answer = await fetch(`http://127.0.0.1:${port}/`).then(
      (r) => r.json() as Promise<{ traceparent: string }>,
    );
    // The restarted service got the incident's trace context.
    expect(answer.traceparent).toContain(trace);
  });

  it("a stop command wins over a scheduled restart: the supervisor stands down and the service stays down", async () => {
    const ws = agentWorkspace("nofight");
    const port = await freePort();
    const config = writeAgentConfig(
      ws,
      [
        {
          name: "api",
          command: [process.execPath, fixture("well-behaved.mjs")],
          env: { PORT: String(port) },
          health: { tcp: { port }, periodMs: 100, failureThreshold: 30 },
          watchIntervalMs: 100,
          // The first restart waits 2.5-5 s: time for the stop to arrive while it is scheduled.
          restart: { policy: "always", initialDelayMs: 5_000, maxDelayMs: 5_000 },
        },
      ],
      { heartbeatIntervalMs: 2_000 },
    );
    await launch(config).started;
    const topic = topicNames(ws.prefix).control;
    const start = makeCommand(ws, "start", "api");
    await publish(kafka, topic, signed(ws, start));
    await waitForJournal(ws.journal, completed(start.id));
    process.kill(-pidOf(ws.stateDir, "api"), "SIGKILL");
    await waitForJournal(ws.journal, (e) => of(e, "service.restart_scheduled").length === 1);
    const stop = makeCommand(ws, "stop", "api");
    await publish(kafka, topic, signed(ws, stop));
    let events = await waitForJournal(ws.journal, completed(stop.id));
    expect(outcomeOf(events, stop.id)).toBe("success");
    // Three heartbeats (6 s) cover the longest delay the restart could have had.
    const beats = await heartbeatsAfter(ws.journal, of(events, "agent.heartbeat").length, 3);
    expect(beats.at(-1)?.agent?.supervision?.api).toMatchObject({ desired: "stopped", phase: "stopped" });
    events = readJournal(ws.journal);
    expect(of(events, "service.restarted")).toHaveLength(0);
    expect(of(events, "start.spawned")).toHaveLength(1);
  });

  it("a service waits for its local dependency to be healthy, each check recorded; preStart and postStop run with their deadlines", async () => {
    const ws = agentWorkspace("depends");
    const dbPort = await freePort();
    const apiPort = await freePort();
    const marker = `${ws.dir}/pre-start.txt`;
    const config = writeAgentConfig(ws, [
      {
        name: "db",
        command: [process.execPath, fixture("well-behaved.mjs")],
        env: { PORT: String(dbPort) },
        health: { http: { url: `http://127.0.0.1:${dbPort}/` }, periodMs: 100, failureThreshold: 30 },
      },
      {
        name: "api",
        command: [process.execPath, fixture("well-behaved.mjs")],
        env: { PORT: String(apiPort) },
        dependsOn: ["db"],
        health: { tcp: { port: apiPort }, periodMs: 100, failureThreshold: 30 },
        preStart: {
          exec: [
            process.execPath,
            "-e",
            `require("fs").writeFileSync(${JSON.stringify(marker)}, process.env.TRACEPARENT)`,
          ],
        },
        // Runs past its deadline: recorded as a failed hook, the verified stop stands.
        postStop: { exec: [process.execPath, "-e", "setTimeout(() => {}, 30000)"], timeoutMs: 300 },
      },
    ]);
    await launch(config).started;
    const topic = topicNames(ws.prefix).control;
    const startApi = makeCommand(ws, "start", "api");
    await publish(kafka, topic, signed(ws, startApi));
    await waitForJournal(ws.journal, (e) => of(e, "start.dependency_waiting", "api").length >= 2);
    const startDb = makeCommand(ws, "start", "db");
    await publish(kafka, topic, signed(ws, startDb));
    let events = await waitForJournal(
      ws.journal,
      (e) => completed(startApi.id)(e) && completed(startDb.id)(e),
    );
    expect(outcomeOf(events, startApi.id)).toBe("success");
    const api = events.filter((e) => e.lifeline.command_id === startApi.id).map((e) => e.event.action);
    expect(api.slice(0, 2)).toEqual(["command.received", "start.dependency_waiting"]);
    expect(api.slice(api.indexOf("start.dependency_ready"))).toEqual([
      "start.dependency_ready",
      "start.pre_start_hook",
      "start.spawned",
      "start.healthy",
      "command.completed",
    ]);
    const waits = events.filter(
      (e) => e.lifeline.command_id === startApi.id && e.event.action === "start.dependency_waiting",
    );
    expect(waits[0]?.event.reason).toMatch(/^db is stopped; check 2 in \d+ ms$/);
    // Ready only after db's own start was healthy.
    const dbHealthy = events.find(
      (e) => e.lifeline.command_id === startDb.id && e.event.action === "start.healthy",
    );
    const ready = events.find((e) => e.event.action === "start.dependency_ready");
    expect(events.indexOf(ready as LifecycleEvent)).toBeGreaterThan(
      events.indexOf(dbHealthy as LifecycleEvent),
    );
    expect(readFileSync(marker, "utf8")).toContain(
      events.find((e) => e.lifeline.command_id === startApi.id)?.trace?.id,
    );

    const stop = makeCommand(ws, "stop", "api");
    await publish(kafka, topic, signed(ws, stop));
    events = await waitForJournal(ws.journal, completed(stop.id));
    const hook = events.find(
      (e) => e.lifeline.command_id === stop.id && e.event.action === "stop.post_stop_hook",
    );
    expect(hook?.event.outcome).toBe("failure");
    expect(hook?.event.reason).toMatch(/aborted|timeout|SIGTERM/i);
    expect(hook?.event.duration).toBeLessThan(5_000 * 1e6);
    expect(outcomeOf(events, stop.id)).toBe("success");
  });

  it("journals stay bounded over 10,000 commands, and replays are refused after an agent restart", async () => {
    const ws = agentWorkspace("journals");
    const config = writeAgentConfig(
      ws,
      [{ name: "api", command: [process.execPath, fixture("well-behaved.mjs")], env: { PORT: "1" } }],
      { journalRotation: { maxBytes: 262_144, keep: 2 }, forgetCommandsAfterExpiryMs: 1_000 },
    );
    const agent = launch(config);
    await agent.started;
    const topic = topicNames(ws.prefix).control;
    const first = makeCommand(ws, "status", "api", { expiresAt: new Date(Date.now() + 3_000).toISOString() });
    await publish(kafka, topic, signed(ws, first));
    await waitForJournal(ws.journal, completed(first.id));
    const total = 10_000;
    let sentLast = first;
    for (let sent = 1; sent < total; sent += 500) {
      // Each batch expires 2 s after it is sent: by the end, most ids may be forgotten.
      const batch = Array.from({ length: Math.min(500, total - sent) }, () =>
        makeCommand(ws, "status", "api", { expiresAt: new Date(Date.now() + 2_000).toISOString() }),
      );
      await publish(kafka, topic, ...batch.map((c) => signed(ws, c)));
      sentLast = batch.at(-1) as typeof sentLast;
      // Settled either way: on a loaded machine a batch may reach the agent after its 2 s expiry and be
      // refused as expired, which journals it all the same.
      const lastOfBatch = sentLast.id;
      await waitForJournal(
        ws.journal,
        (events) =>
          events.some(
            (e) =>
              e.lifeline.command_id === lastOfBatch &&
              (e.event.action === "command.completed" || e.event.action === "command.rejected"),
          ),
        60_000,
      );
    }
    const last = makeCommand(ws, "status", "api");
    await publish(kafka, topic, signed(ws, last));
    await waitForJournal(ws.journal, completed(last.id));
    const commandsFile = `${ws.stateDir}/commands.ndjson`;
    const commandLines = readFileSync(commandsFile, "utf8").split("\n").filter(Boolean).length;
    const files = [ws.journal, `${ws.journal}.1`, `${ws.journal}.2`];
    const sizes = files.map((f) => statSync(f).size);
    expect(() => statSync(`${ws.journal}.3`)).toThrow();
    for (const size of sizes) expect(size).toBeLessThanOrEqual(262_144);
    // 10,000 commands, two records each, would be 20,000 lines without compaction. Compacted, the file holds the
    // ids still live (expiry 2 s + forget 1 s: how many depends on how fast the agent works through them), and
    // grows to twice that before the next compaction: under 4,000 lines alone, 4,195 measured in a loaded CI run.
    expect(commandLines).toBeLessThan(8_000);
    expect(readFileSync(commandsFile, "utf8")).not.toContain(first.id);
    await agent.stop("SIGTERM");

    const restarted = launch(config);
    await restarted.started;
    const before = readJournal(ws.journal).length;
    // `last` is still remembered: a duplicate. `first` is forgotten (expired long ago): refused as expired.
    await publish(kafka, topic, signed(ws, last), signed(ws, first));
    const events = await waitForJournal(
      ws.journal,
      (e) => e.slice(before).filter((x) => x.event.action.startsWith("command.")).length >= 2,
    );
    const replies = events.slice(before).filter((e) => e.event.action.startsWith("command."));
    expect(replies.map((e) => `${e.event.action}:${e.lifeline.command_id}`)).toEqual([
      `command.duplicate:${last.id}`,
      `command.rejected:${first.id}`,
    ]);
    expect(replies[1]?.event.reason).toBe("expired");
    expect(events.slice(before).some((e) => e.event.action === "command.received")).toBe(false);
  }, 300_000);
});
