import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { groupAlive } from "../../agent/drivers/process.ts";
import { generateSigningKeys, signCommand } from "../../core/commands.ts";
import { topicNames } from "../../core/topics.ts";
import { parseTraceparent } from "../../core/trace-context.ts";
import {
  agentWorkspace,
  fixture,
  freePort,
  killWorkspaceServices,
  type LifecycleEvent,
  makeCommand,
  publish,
  signed,
  waitForJournal,
  writeAgentConfig,
} from "../helpers/agent.ts";
import { type ProcessUnderTest, startLifeline } from "../helpers/indexer.ts";
import { testKafka } from "../helpers/services.ts";

const forCommand = (events: LifecycleEvent[], id: string) =>
  events.filter((e) => e.lifeline.command_id === id);
const actions = (events: LifecycleEvent[]) => events.map((e) => `${e.event.action}:${e.event.outcome}`);
const completed = (id: string) => (events: LifecycleEvent[]) =>
  forCommand(events, id).some((e) => e.event.action === "command.completed");

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

// Health probes allow 3 s to listen (failureThreshold 30 at 100 ms): a fixture's node can take over 300 ms to start
// on two cores shared with Kafka, Elasticsearch and the other test files (the Wine bed among them).
describe("agent: signed commands on real processes, every step in the journal", () => {
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

  it("starts a well-behaved service gated on health, stops it gracefully, and a second stop is already_stopped", async () => {
    const ws = agentWorkspace("good");
    const port = await freePort();
    const config = writeAgentConfig(ws, [
      {
        name: "api",
        command: [process.execPath, fixture("well-behaved.mjs")],
        env: { PORT: String(port) },
        port,
        gracePeriodMs: 5_000,
        health: { http: { url: `http://127.0.0.1:${port}/` }, periodMs: 100, failureThreshold: 30 },
      },
    ]);
    await launch(config).started;
    const topic = topicNames(ws.prefix).control;
    const start = makeCommand(ws, "start", "api");
    await publish(kafka, topic, signed(ws, start));
    let events = await waitForJournal(ws.journal, completed(start.id));
    expect(actions(forCommand(events, start.id))).toEqual([
      "command.received:success",
      "start.spawned:success",
      "start.healthy:success",
      "command.completed:success",
    ]);
    const trace = parseTraceparent(start.traceparent)?.traceId;
    for (const event of forCommand(events, start.id)) {
      expect(event.trace?.id).toBe(trace);
      expect(event.parent?.id).toBe(parseTraceparent(start.traceparent)?.spanId);
    }
    // The service got the command's trace context.
    const body = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as { traceparent: string };
    expect(parseTraceparent(body.traceparent)?.traceId).toBe(trace);

    const stop = makeCommand(ws, "stop", "api");
    const again = makeCommand(ws, "stop", "api");
    await publish(kafka, topic, signed(ws, stop), signed(ws, again));
    events = await waitForJournal(ws.journal, completed(again.id));
    expect(actions(forCommand(events, stop.id))).toEqual([
      "command.received:success",
      "stop.requested:success",
      "stop.signal_sent:success",
      "stop.completed:success",
      "command.completed:success",
    ]);
    expect(forCommand(events, stop.id).find((e) => e.event.action === "stop.completed")?.event.reason).toBe(
      "exited",
    );
    expect(forCommand(events, again.id).pop()?.event.reason).toBe("already_stopped");
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });

  it("hooks: pre-stop is called with the trace before the signal; a failing post-start makes the start a failure", async () => {
    const ws = agentWorkspace("hooks");
    const port = await freePort();
    const calls: Array<{ traceparent?: string }> = [];
    const { createServer } = await import("node:http");
    const hookServer = createServer((request, response) => {
      calls.push({ traceparent: request.headers.traceparent as string | undefined });
      response.end("deregistered");
    });
    await new Promise<void>((resolve) => hookServer.listen(0, "127.0.0.1", resolve));
    const hookPort = (hookServer.address() as { port: number }).port;
    const failingPort = await freePort();
    const config = writeAgentConfig(ws, [
      {
        name: "api",
        command: [process.execPath, fixture("well-behaved.mjs")],
        env: { PORT: String(port) },
        health: { tcp: { port }, periodMs: 100, failureThreshold: 30 },
        preStop: { http: { url: `http://127.0.0.1:${hookPort}/deregister` } },
      },
      {
        name: "api2",
        command: [process.execPath, fixture("well-behaved.mjs")],
        env: { PORT: String(failingPort) },
        health: { tcp: { port: failingPort }, periodMs: 100, failureThreshold: 30 },
        postStart: { exec: [process.execPath, "-e", "process.exit(4)"] },
      },
    ]);
    await launch(config).started;
    const start = makeCommand(ws, "start", "api");
    const stop = makeCommand(ws, "stop", "api");
    const failing = makeCommand(ws, "start", "api2");
    await publish(
      kafka,
      topicNames(ws.prefix).control,
      signed(ws, start),
      signed(ws, stop),
      signed(ws, failing),
    );
    const events = await waitForJournal(ws.journal, (e) => completed(stop.id)(e) && completed(failing.id)(e));
    hookServer.close();
    expect(actions(forCommand(events, stop.id))).toEqual([
      "command.received:success",
      "stop.requested:success",
      "stop.pre_stop_hook:success",
      "stop.signal_sent:success",
      "stop.completed:success",
      "command.completed:success",
    ]);
    expect(parseTraceparent(calls[0]?.traceparent)?.traceId).toBe(
      parseTraceparent(stop.traceparent)?.traceId,
    );
    expect(actions(forCommand(events, failing.id)).slice(-2)).toEqual([
      "start.post_start_hook:failure",
      "command.completed:failure",
    ]);
    expect(forCommand(events, failing.id).pop()?.event.reason).toMatch(
      /post-start hook failed: .*exited with 4/,
    );
    const cleanup = makeCommand(ws, "stop", "api2");
    await publish(kafka, topicNames(ws.prefix).control, signed(ws, cleanup));
    await waitForJournal(ws.journal, completed(cleanup.id));
  });

  it("a service that ignores SIGTERM is killed after the grace period, recorded as escalated", async () => {
    const ws = agentWorkspace("stubborn");
    const port = await freePort();
    const config = writeAgentConfig(ws, [
      {
        name: "stubborn",
        command: [process.execPath, fixture("stubborn.mjs")],
        env: { PORT: String(port) },
        port,
        gracePeriodMs: 5_000,
        health: { tcp: { port }, periodMs: 100, failureThreshold: 30 },
      },
    ]);
    await launch(config).started;
    const start = makeCommand(ws, "start", "stubborn");
    const stop = makeCommand(ws, "stop", "stubborn", { parameters: { gracePeriodMs: 600 } });
    await publish(kafka, topicNames(ws.prefix).control, signed(ws, start), signed(ws, stop));
    const events = await waitForJournal(ws.journal, completed(stop.id));
    expect(actions(forCommand(events, stop.id))).toEqual([
      "command.received:success",
      "stop.requested:success",
      "stop.signal_sent:success",
      "stop.escalated:success",
      "stop.completed:success",
      "command.completed:success",
    ]);
    const escalated = forCommand(events, stop.id).find((e) => e.event.action === "stop.escalated");
    expect(escalated?.event.duration).toBeGreaterThanOrEqual(600e6);
    expect(forCommand(events, stop.id).pop()?.event.reason).toBe("stopped (escalated)");

    // A restart right after an escalation: the killed process's late exit is not taken for the new one's.
    const restart = makeCommand(ws, "restart", "stubborn", { parameters: { gracePeriodMs: 300 } });
    const again = makeCommand(ws, "start", "stubborn");
    await publish(kafka, topicNames(ws.prefix).control, signed(ws, again), signed(ws, restart));
    const after = await waitForJournal(ws.journal, completed(restart.id));
    expect(forCommand(after, restart.id).pop()).toMatchObject({
      event: { outcome: "success", reason: "restarted: started" },
    });
  });

  it("a service that forks children leaves none behind", async () => {
    const ws = agentWorkspace("forker");
    const port = await freePort();
    const pidsFile = join(ws.dir, "children.json");
    const config = writeAgentConfig(ws, [
      {
        name: "forker",
        command: [process.execPath, fixture("forker.mjs")],
        env: { PORT: String(port), PIDS_FILE: pidsFile },
        gracePeriodMs: 800,
        health: { tcp: { port }, periodMs: 100, failureThreshold: 30 },
      },
    ]);
    await launch(config).started;
    const start = makeCommand(ws, "start", "forker");
    await publish(kafka, topicNames(ws.prefix).control, signed(ws, start));
    const events = await waitForJournal(ws.journal, completed(start.id));
    const leader = forCommand(events, start.id).find((e) => e.event.action === "start.spawned")?.process
      ?.pid as number;
    const children = JSON.parse(readFileSync(pidsFile, "utf8")) as number[];
    expect(children.every(isAlive)).toBe(true);
    const stop = makeCommand(ws, "stop", "forker");
    await publish(kafka, topicNames(ws.prefix).control, signed(ws, stop));
    const after = await waitForJournal(ws.journal, completed(stop.id));
    expect(forCommand(after, stop.id).pop()?.event.outcome).toBe("success");
    expect(children.filter(isAlive)).toEqual([]);
    expect(groupAlive(leader)).toBe(false);
  });

  it("a slow service is healthy only when its probe passes; a crashing one is a failure, never started", async () => {
    const ws = agentWorkspace("slow");
    const port = await freePort();
    const config = writeAgentConfig(ws, [
      {
        name: "slow",
        command: [process.execPath, fixture("slow.mjs")],
        env: { PORT: String(port) },
        health: { tcp: { port }, periodMs: 100, failureThreshold: 50 },
      },
      {
        name: "crasher",
        command: [process.execPath, fixture("crasher.mjs")],
        health: { tcp: { port: await freePort() }, periodMs: 100, failureThreshold: 100 },
      },
    ]);
    await launch(config).started;
    const slow = makeCommand(ws, "start", "slow");
    const crash = makeCommand(ws, "start", "crasher");
    await publish(kafka, topicNames(ws.prefix).control, signed(ws, slow), signed(ws, crash));
    const events = await waitForJournal(ws.journal, (e) => completed(slow.id)(e) && completed(crash.id)(e));
    const healthy = forCommand(events, slow.id).find((e) => e.event.action === "start.healthy");
    expect(healthy?.event.duration).toBeGreaterThanOrEqual(1_400e6);
    expect(forCommand(events, slow.id).pop()?.event.outcome).toBe("success");
    expect(actions(forCommand(events, crash.id))).toEqual([
      "command.received:success",
      "start.spawned:success",
      "start.exited:failure",
      "command.completed:failure",
    ]);
    expect(forCommand(events, crash.id).pop()?.event.reason).toBe(
      "process exited with exit code 3 while starting",
    );
  });

  it("without a health probe a start must outlive minUptimeMs: a crash on start is a failure with its exit code and last output", async () => {
    const ws = agentWorkspace("uptime");
    const port = await freePort();
    const config = writeAgentConfig(ws, [
      // No probe on either: only staying up proves a start.
      { name: "crasher", command: [process.execPath, fixture("crasher.mjs")], minUptimeMs: 1_500 },
      {
        name: "api",
        command: [process.execPath, fixture("well-behaved.mjs")],
        env: { PORT: String(port) },
        minUptimeMs: 500,
      },
    ]);
    await launch(config).started;
    const crash = makeCommand(ws, "start", "crasher");
    const start = makeCommand(ws, "start", "api");
    await publish(kafka, topicNames(ws.prefix).control, signed(ws, crash), signed(ws, start));
    const events = await waitForJournal(ws.journal, (e) => completed(crash.id)(e) && completed(start.id)(e));
    expect(actions(forCommand(events, crash.id))).toEqual([
      "command.received:success",
      "start.spawned:success",
      "start.exited:failure",
      "command.completed:failure",
    ]);
    const exited = forCommand(events, crash.id).find(
      (e) => e.event.action === "start.exited",
    ) as LifecycleEvent & {
      process: { exit_code?: number };
      lifeline: { output?: string[] };
    };
    expect(exited.process.exit_code).toBe(3);
    expect(exited.lifeline.output).toContain("fatal: cannot open database");
    expect(forCommand(events, crash.id).pop()?.event.reason).toBe(
      "process exited with exit code 3 while starting",
    );
    const healthy = forCommand(events, start.id).find(
      (e) => e.event.action === "start.healthy",
    ) as LifecycleEvent & {
      lifeline: { evidence?: string };
    };
    expect(healthy.lifeline.evidence).toMatch(/^pid \d+ alive \d+ ms after start \(minUptimeMs 500\)$/);
    expect(healthy.event.duration).toBeGreaterThanOrEqual(500e6);
    const stop = makeCommand(ws, "stop", "api");
    await publish(kafka, topicNames(ws.prefix).control, signed(ws, stop));
    await waitForJournal(ws.journal, completed(stop.id));
  });

  it("a stop records the exit code: a clean exit is a success, a non-zero exit during a graceful stop is a failure", async () => {
    const ws = agentWorkspace("exitcode");
    const [cleanPort, crashPort] = [await freePort(), await freePort()];
    const service = (name: string, port: number, code: number) => ({
      name,
      command: [process.execPath, fixture("exit-code.mjs")],
      env: { PORT: String(port), EXIT_CODE: String(code) },
      port,
      health: { tcp: { port }, periodMs: 100, failureThreshold: 30 },
    });
    const config = writeAgentConfig(ws, [service("clean", cleanPort, 0), service("crashy", crashPort, 3)]);
    await launch(config).started;
    const starts = [makeCommand(ws, "start", "clean"), makeCommand(ws, "start", "crashy")];
    await publish(kafka, topicNames(ws.prefix).control, ...starts.map((c) => signed(ws, c)));
    await waitForJournal(ws.journal, (e) => starts.every((c) => completed(c.id)(e)));
    const clean = makeCommand(ws, "stop", "clean");
    const crashy = makeCommand(ws, "stop", "crashy");
    await publish(kafka, topicNames(ws.prefix).control, signed(ws, clean), signed(ws, crashy));
    const events = (await waitForJournal(
      ws.journal,
      (e) => completed(clean.id)(e) && completed(crashy.id)(e),
    )) as Array<LifecycleEvent & { process?: { exit_code?: number } }>;
    const stopped = (id: string) => forCommand(events, id).find((e) => e.event.action === "stop.completed");
    // A failure names what the journal did say for the command (one CI run under load found no stop.completed).
    const said = (id: string) =>
      JSON.stringify(
        forCommand(events, id).map(({ event }) => [event.action, event.outcome, event.reason].join(" ")),
      );
    expect(stopped(clean.id), said(clean.id)).toMatchObject({
      event: { outcome: "success", reason: "exited" },
      process: { exit_code: 0 },
    });
    expect(stopped(crashy.id), said(crashy.id)).toMatchObject({
      event: { outcome: "failure", reason: "exited_with_error" },
      process: { exit_code: 3 },
    });
    expect(forCommand(events, crashy.id).pop()?.event).toMatchObject({
      outcome: "failure",
      reason: "stopped, but exit code 3 during a graceful stop",
    });
    expect(forCommand(events, clean.id).pop()?.event).toMatchObject({
      outcome: "success",
      reason: "stopped",
    });
  });

  it("duplicate, forged, expired, unknown-service, disallowed and malformed commands are rejected with reasons, nothing run", async () => {
    const ws = agentWorkspace("reject");
    const port = await freePort();
    const config = writeAgentConfig(ws, [
      {
        name: "api",
        command: [process.execPath, fixture("well-behaved.mjs")],
        env: { PORT: String(port) },
        allowedActions: ["stop", "status"],
        gracePeriodMs: 2_000,
      },
    ]);
    await launch(config).started;
    const status = makeCommand(ws, "status", "api");
    const forged = signCommand(
      makeCommand(ws, "stop", "api"),
      "test-controller",
      generateSigningKeys().privateKeyPem,
    );
    const unknownKey = signCommand(makeCommand(ws, "stop", "api"), "someone-else", ws.keys.privateKeyPem);
    const expired = makeCommand(ws, "stop", "api", { expiresAt: new Date(Date.now() - 1_000).toISOString() });
    const unknown = makeCommand(ws, "stop", "db");
    const disallowed = makeCommand(ws, "start", "api");
    const tooLong = makeCommand(ws, "stop", "api", { parameters: { gracePeriodMs: 60_000 } });
    const otherHost = makeCommand(ws, "stop", "api", { target: { hosts: ["not-this-host"] } });
    const tampered = signed(ws, makeCommand(ws, "stop", "api"));
    tampered.command.service = "db";
    await publish(
      kafka,
      topicNames(ws.prefix).control,
      signed(ws, status),
      signed(ws, status),
      forged,
      unknownKey,
      signed(ws, expired),
      signed(ws, unknown),
      signed(ws, disallowed),
      signed(ws, tooLong),
      signed(ws, otherHost),
      tampered,
      "not json at all",
      JSON.stringify({ command: { id: "x" } }),
    );
    const events = await waitForJournal(
      ws.journal,
      (e) =>
        e.filter((x) => x.event.action === "command.rejected").length >= 9 &&
        e.some((x) => x.event.action === "command.duplicate"),
    );
    const rejected = events.filter((e) => e.event.action === "command.rejected");
    expect(rejected.map((e) => e.event.reason).sort()).toEqual(
      [
        "action_not_allowed",
        "bad_signature",
        "bad_signature",
        "expired",
        "malformed",
        "malformed",
        "parameter_not_allowed",
        "unknown_key",
        "unknown_service",
      ].sort(),
    );
    expect(events.find((e) => e.event.action === "command.duplicate")?.lifeline.command_id).toBe(status.id);
    // A message that did not verify speaks for nothing: what it claimed is kept apart, with no id, rollout or
    // trace of the command it pretends to be.
    const unverified = rejected.filter(
      (e) => e.event.reason === "bad_signature" || e.event.reason === "unknown_key",
    );
    expect(unverified).toHaveLength(3);
    for (const event of unverified) {
      expect(event.lifeline.command_id).toBeUndefined();
      expect(event.lifeline.rollout_id).toBeUndefined();
      expect(event.trace).toBeUndefined();
    }
    const claims = unverified.map(
      (e) => (e.lifeline as { claimed?: { command_id?: string } }).claimed?.command_id,
    );
    expect(claims.sort()).toEqual([forged.command.id, unknownKey.command.id, tampered.command.id].sort());
    // A verified command that is refused here still speaks for itself.
    expect(rejected.find((e) => e.event.reason === "expired")?.lifeline.command_id).toBe(expired.id);
    expect(
      events.some((e) => e.event.action === "start.spawned" || e.event.action === "stop.signal_sent"),
    ).toBe(false);
    expect(events.some((e) => e.lifeline.command_id === otherHost.id)).toBe(false);
  });

  it("agent killed with SIGKILL mid-stop: after restart the outcome is unknown on the command's trace and rollout, and the drained exit is recorded when it comes", async () => {
    const ws = agentWorkspace("crash");
    const port = await freePort();
    const config = writeAgentConfig(ws, [
      {
        name: "draining",
        command: [process.execPath, fixture("draining.mjs")],
        env: { PORT: String(port), DRAIN_MS: "4000" },
        gracePeriodMs: 30_000,
        health: { tcp: { port }, periodMs: 100, failureThreshold: 30 },
      },
    ]);
    const first = launch(config);
    await first.started;
    const start = makeCommand(ws, "start", "draining");
    const stop = makeCommand(ws, "stop", "draining", { rolloutId: "maintenance-42" });
    await publish(kafka, topicNames(ws.prefix).control, signed(ws, start), signed(ws, stop));
    await waitForJournal(ws.journal, (e) =>
      forCommand(e, stop.id).some((x) => x.event.action === "stop.signal_sent"),
    );
    first.process.kill("SIGKILL");
    await first.exited;
    await launch(config).started;
    const events = await waitForJournal(ws.journal, completed(stop.id));
    const outcome = forCommand(events, stop.id).find((e) => e.event.action === "command.completed");
    const trace = parseTraceparent(stop.traceparent)?.traceId;
    expect(outcome).toMatchObject({
      event: {
        action: "command.completed",
        outcome: "unknown",
        reason: "agent restarted during stop; service is running",
      },
      trace: { id: trace },
      lifeline: { command_id: stop.id, rollout_id: "maintenance-42" },
    });
    // The later truth, on the same trace: the service finished draining and is down.
    const later = await waitForJournal(ws.journal, (e) =>
      forCommand(e, stop.id).some((x) => x.event.action === "stop.observed"),
    );
    expect(forCommand(later, stop.id).find((e) => e.event.action === "stop.observed")).toMatchObject({
      event: { outcome: "success" },
      trace: { id: trace },
      lifeline: { rollout_id: "maintenance-42" },
    });
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    // Exactly one final outcome for the command.
    expect(forCommand(later, stop.id).filter((e) => e.event.action === "command.completed")).toHaveLength(1);
  });
});
