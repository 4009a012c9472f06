import { describe, expect, it } from "vitest";
import type { PlannedWave } from "../../controller/plan.ts";
import {
  criticalPath,
  type Decision,
  executionOrder,
  initialState,
  judgeHealth,
  type OnFailure,
  reduce,
  type ScheduleConfig,
  type ScheduleEvent,
  type ScheduleState,
} from "../../controller/schedule.ts";

/** Waves from "service:host,host" strings, numbered in order; `gate` on every wave but the first when asked. */
function waves(specs: string[], gates = false): PlannedWave[] {
  return specs.map((spec, i) => {
    const [service = "", hosts = ""] = spec.split(":");
    return {
      phase: 1,
      wave: i + 1,
      service,
      steps: hosts.split(",").map((host) => ({ host, service, action: "start" as const })),
      gate: gates && i > 0,
    };
  });
}

function config(
  planned: PlannedWave[],
  services: Array<{ name: string; dependsOn: string[] }>,
  overrides: Partial<ScheduleConfig> = {},
): ScheduleConfig {
  return {
    waves: planned,
    after: executionOrder(services, "start"),
    maxInFlight: 10,
    maxInFlightTotal: Number.POSITIVE_INFINITY,
    budget: { maxFailures: 0 },
    onFailure: "halt",
    soakMs: 0,
    ...overrides,
  };
}

/** A schedule driven by hand: every decision is kept, in order. */
function drive(cfg: ScheduleConfig) {
  const state: ScheduleState = initialState(cfg);
  const log: Decision[] = [];
  const on = (event: ScheduleEvent) => {
    const out = reduce(cfg, state, event);
    log.push(...out);
    return out;
  };
  const sends = (out: Decision[]) =>
    out.filter((d) => d.type === "send").map((d) => (d as { key: string }).key);
  const ok = (key: string) => on({ type: "settled", key, success: true, counts: false });
  const fail = (key: string) => on({ type: "settled", key, success: false, counts: true });
  return { state, log, on, sends, ok, fail, begin: () => on({ type: "begin" }) };
}

const k = (host: string, service: string) => `${host}/${service}/start`;

describe("rollout schedule (pure decisions)", () => {
  it("independent branches begin together; a dependant waits for all of its dependency's waves", () => {
    const services = [
      { name: "db", dependsOn: [] },
      { name: "api", dependsOn: ["db"] },
      { name: "cache", dependsOn: [] },
    ];
    const s = drive(config(waves(["db:h1", "db:h2", "api:h1,h2", "cache:h1,h2"]), services));
    const first = s.begin();
    expect(first.filter((d) => d.type === "begin_wave").map((d) => (d as { wave: number }).wave)).toEqual([
      1, 4,
    ]);
    expect(s.sends(first)).toEqual([k("h1", "db"), k("h1", "cache"), k("h2", "cache")]);
    // db's second wave only after its first; api only after both.
    expect(s.sends(s.ok(k("h1", "db")))).toEqual([k("h2", "db")]);
    expect(s.sends(s.ok(k("h1", "cache")))).toEqual([]);
    expect(s.sends(s.ok(k("h2", "db")))).toEqual([k("h1", "api"), k("h2", "api")]);
    s.ok(k("h2", "cache"));
    s.ok(k("h1", "api"));
    const last = s.ok(k("h2", "api"));
    expect(last.at(-1)).toEqual({ type: "finished", status: "done" });
    expect(s.log.filter((d) => d.type === "wave_done")).toHaveLength(4);
  });

  it("stop goes the other way: a dependency stops after its dependants", () => {
    const after = executionOrder(
      [
        { name: "db", dependsOn: [] },
        { name: "api", dependsOn: ["db"] },
      ],
      "stop",
    );
    expect(after.get("db")).toEqual(["api"]);
    expect(after.get("api")).toEqual([]);
    const cfg = { ...config(waves(["api:h1", "db:h1"]), []), after };
    const s = drive(cfg);
    expect(s.sends(s.begin())).toEqual([k("h1", "api")]);
    expect(s.sends(s.ok(k("h1", "api")))).toEqual([k("h1", "db")]);
  });

  it("maxInFlight bounds a wave, maxInFlightTotal the whole rollout", () => {
    const services = [
      { name: "a", dependsOn: [] },
      { name: "b", dependsOn: [] },
    ];
    const s = drive(
      config(waves(["a:h1,h2,h3", "b:h1,h2,h3"]), services, { maxInFlight: 2, maxInFlightTotal: 3 }),
    );
    expect(s.sends(s.begin())).toEqual([k("h1", "a"), k("h2", "a"), k("h1", "b")]);
    expect(s.state.inFlight).toBe(3);
    expect(s.sends(s.ok(k("h1", "a")))).toEqual([k("h3", "a")]);
    expect(s.sends(s.ok(k("h1", "b")))).toEqual([k("h2", "b")]);
  });

  it("past the budget mid-wave: halts at once, cancels what was not sent, in-flight steps finish", () => {
    const s = drive(
      config(waves(["a:h1,h2,h3,h4", "b:h1"]), [{ name: "b", dependsOn: ["a"] }], {
        maxInFlight: 2,
        budget: { maxFailures: 0 },
        onFailure: "rollback",
      }),
    );
    s.begin();
    const out = s.fail(k("h1", "a"));
    expect(out[0]).toEqual({ type: "final", key: k("h1", "a"), wave: 1 });
    expect(out[1]).toMatchObject({ type: "halted", rollback: true });
    expect((out[1] as { reason: string }).reason).toBe(
      "1 of 5 steps failed, timed out or unknown (budget 0)",
    );
    expect(out.filter((d) => d.type === "cancel").map((d) => (d as { key: string }).key)).toEqual([
      k("h3", "a"),
      k("h4", "a"),
      k("h1", "b"),
    ]);
    expect(s.sends(out)).toEqual([]);
    expect(s.state.finished).toBe(false); // h2 is still in flight
    const end = s.ok(k("h2", "a"));
    expect(end.at(-1)).toEqual({ type: "finished", status: "halted" });
  });

  it("a percentage budget counts against every step of the rollout", () => {
    const s = drive(
      config(waves(["a:h1,h2,h3,h4,h5,h6,h7,h8,h9,h10"]), [], {
        budget: { maxFailures: 100, maxFailurePercent: 10 },
      }),
    );
    s.begin();
    expect(s.fail(k("h1", "a")).some((d) => d.type === "halted")).toBe(false);
    expect(s.fail(k("h2", "a")).find((d) => d.type === "halted")).toMatchObject({
      reason: "2 of 10 steps failed, timed out or unknown (budget 100 or 10 %)",
      rollback: false,
    });
  });

  it("onFailure pause: nothing new is sent until resumed; the next failure pauses again", () => {
    const s = drive(
      config(waves(["a:h1,h2,h3,h4"]), [], { maxInFlight: 1, onFailure: "pause" as OnFailure }),
    );
    s.begin();
    const paused = s.fail(k("h1", "a")).filter((d) => d.type !== "final");
    expect(paused).toEqual([
      { type: "paused", reason: "1 of 4 steps failed, timed out or unknown (budget 0)" },
    ]);
    expect(s.on({ type: "pause", reason: "again" })).toEqual([]);
    const resumed = s.on({ type: "resume" });
    expect(resumed[0]).toEqual({ type: "resumed" });
    expect(s.sends(resumed)).toEqual([k("h2", "a")]);
    expect(s.fail(k("h2", "a"))[1]).toMatchObject({ type: "paused" });
    expect(s.on({ type: "resume" }).filter((d) => d.type === "send")).toHaveLength(1);
  });

  it("an operator's pause holds sending at any moment, resume goes on where it stopped", () => {
    const s = drive(config(waves(["a:h1,h2,h3"]), [], { maxInFlight: 1 }));
    s.begin();
    expect(s.on({ type: "pause", reason: "paused by oncall" })).toEqual([
      { type: "paused", reason: "paused by oncall" },
    ]);
    expect(s.sends(s.ok(k("h1", "a")))).toEqual([]);
    expect(s.state.finished).toBe(false);
    expect(s.sends(s.on({ type: "resume" }))).toEqual([k("h2", "a")]);
    expect(s.on({ type: "resume" })).toEqual([]); // not paused: nothing
  });

  it("abort cancels everything not sent (paused or not); in-flight steps finish; status aborted", () => {
    const s = drive(
      config(waves(["a:h1,h2,h3", "b:h1"]), [{ name: "b", dependsOn: ["a"] }], { maxInFlight: 1 }),
    );
    s.begin();
    s.on({ type: "pause", reason: "look" });
    const out = s.on({ type: "abort", reason: "aborted by oncall" });
    expect(out.filter((d) => d.type === "cancel")).toHaveLength(3);
    expect(s.state.paused).toBeUndefined();
    expect(s.on({ type: "resume" })).toEqual([]);
    expect(s.ok(k("h1", "a")).at(-1)).toEqual({ type: "finished", status: "aborted" });
    expect(s.on({ type: "abort", reason: "twice" })).toEqual([]);
  });

  it("gates: a wave waits for its approval; one for another wave opens nothing; an early one is kept", () => {
    const s = drive(config(waves(["a:h1", "a:h2", "a:h3"], true), []));
    s.begin();
    expect(s.ok(k("h1", "a"))).toContainEqual({ type: "await_approval", wave: 2 });
    expect(s.on({ type: "approved", wave: 3 })).toEqual([]); // kept for wave 3
    const opened = s.on({ type: "approved", wave: 2 });
    expect(opened.slice(0, 2)).toEqual([
      { type: "gate_opened", wave: 2, approvedFor: 2 },
      { type: "begin_wave", wave: 2 },
    ]);
    // Wave 3's approval came early: its gate opens by itself.
    const next = s.ok(k("h2", "a"));
    expect(next).toContainEqual({ type: "gate_opened", wave: 3, approvedFor: 3 });
    expect(next.some((d) => d.type === "await_approval")).toBe(false);
    expect(s.sends(next)).toEqual([k("h3", "a")]);
  });

  it("an approval without a wave opens the earliest waiting gate; a resumed rollout's opened gates do not wait", () => {
    const s = drive(config(waves(["a:h1", "b:h1"], true), []));
    expect(s.begin()).toContainEqual({ type: "await_approval", wave: 2 });
    expect(s.on({ type: "approved" })).toContainEqual({
      type: "gate_opened",
      wave: 2,
      approvedFor: undefined,
    });
    const resumed = drive(config(waves(["a:h1", "b:h1"], true), [], { opened: new Set([2]) }));
    expect(resumed.sends(resumed.begin())).toEqual([k("h1", "a"), k("h1", "b")]);
  });

  it("a step whose predecessor did not succeed on its host is cancelled with that reason; other hosts go on", () => {
    const s = drive(
      config(waves(["db:h1,h2", "api:h1,h2"]), [{ name: "api", dependsOn: ["db"] }], {
        budget: { maxFailures: 5 },
      }),
    );
    s.begin();
    s.fail(k("h1", "db"));
    const out = s.ok(k("h2", "db"));
    expect(out).toContainEqual({
      type: "cancel",
      key: k("h1", "api"),
      wave: 2,
      reason: "db on h1 did not succeed (not verified), and api comes after it",
    });
    expect(s.sends(out)).toEqual([k("h2", "api")]);
    expect(s.ok(k("h2", "api")).at(-1)).toEqual({ type: "finished", status: "done" });
  });

  it("a wave whose every step is cancelled for its predecessors ends, and what comes after it begins", () => {
    const s = drive(
      config(
        waves(["db:h1", "api:h1", "web:h2"]),
        [
          { name: "api", dependsOn: ["db"] },
          { name: "web", dependsOn: ["api"] },
        ],
        { budget: { maxFailures: 5 } },
      ),
    );
    s.begin();
    const out = s.fail(k("h1", "db"));
    expect(out.filter((d) => d.type === "wave_done").map((d) => (d as { wave: number }).wave)).toEqual([
      1, 2,
    ]);
    expect(s.sends(out)).toEqual([k("h2", "web")]);
  });

  it("soak holds the step's slot: the next step of the wave waits for it", () => {
    const s = drive(config(waves(["a:h1,h2"]), [], { maxInFlight: 1, soakMs: 5_000 }));
    s.begin();
    const out = s.ok(k("h1", "a"));
    expect(out).toEqual([
      { type: "final", key: k("h1", "a"), wave: 1 },
      { type: "soak", key: k("h1", "a"), ms: 5_000 },
    ]);
    expect(s.sends(s.on({ type: "soaked", key: k("h1", "a") }))).toEqual([k("h2", "a")]);
    s.ok(k("h2", "a"));
    expect(s.on({ type: "soaked", key: k("h2", "a") }).at(-1)).toEqual({ type: "finished", status: "done" });
  });

  it("a wave's own soak (a canary's wait) holds its steps; other waves keep the plan's", () => {
    const planned = waves(["a:h1", "a:h2"]);
    planned[0] = { ...(planned[0] as PlannedWave), canary: true, soakMs: 60_000 };
    const s = drive(config(planned, [], { soakMs: 0 }));
    s.begin();
    expect(s.ok(k("h1", "a"))).toEqual([
      { type: "final", key: k("h1", "a"), wave: 1 },
      { type: "soak", key: k("h1", "a"), ms: 60_000 },
    ]);
    const next = s.on({ type: "soaked", key: k("h1", "a") });
    expect(s.sends(next)).toEqual([k("h2", "a")]);
    expect(s.ok(k("h2", "a")).at(-1)).toEqual({ type: "finished", status: "done" });
  });

  it("a retryable failure is tried again after a doubling backoff; only the last attempt counts", () => {
    const retries = { attempts: 2, backoffMs: 1_000, maxBackoffMs: 1_500 };
    const s = drive(config(waves(["a:h1,h2"]), [], { maxInFlight: 1, retries }));
    s.begin();
    const retryable = (key: string) =>
      s.on({ type: "settled", key, success: false, counts: true, retryable: true });
    expect(retryable(k("h1", "a"))).toEqual([
      { type: "retry", key: k("h1", "a"), wave: 1, attempt: 2, delayMs: 1_000 },
    ]);
    expect(s.state.failures).toBe(0);
    // The slot stays taken while it waits: h2 is not sent.
    expect(s.state.inFlight).toBe(1);
    expect(s.on({ type: "retry_due", key: k("h1", "a") })).toEqual([
      { type: "send", key: k("h1", "a"), wave: 1, attempt: 2 },
    ]);
    expect(retryable(k("h1", "a"))).toEqual([
      { type: "retry", key: k("h1", "a"), wave: 1, attempt: 3, delayMs: 1_500 },
    ]);
    s.on({ type: "retry_due", key: k("h1", "a") });
    const succeeded = s.ok(k("h1", "a"));
    expect(succeeded[0]).toEqual({ type: "final", key: k("h1", "a"), wave: 1 });
    expect(s.sends(succeeded)).toEqual([k("h2", "a")]);
    expect(s.state.failures).toBe(0);
  });

  it("resumed after a crash mid-retry: a step goes on from its latest attempt with only the retries left", () => {
    const retries = { attempts: 2, backoffMs: 1_000, maxBackoffMs: 5_000 };
    // Two commands were sent for h1 before the restart, none for h2.
    const attemptsMade = new Map([[k("h1", "a"), 2]]);
    const s = drive(config(waves(["a:h1,h2"]), [], { retries, attemptsMade }));
    const begun = s.begin();
    expect(begun.filter((d) => d.type === "send")).toEqual([
      { type: "send", key: k("h1", "a"), wave: 1, attempt: 2 },
      { type: "send", key: k("h2", "a"), wave: 1, attempt: 1 },
    ]);
    // Attempt 2's recorded retryable failure: one retry left, numbered 3, with attempt 3's backoff.
    expect(
      s.on({ type: "settled", key: k("h1", "a"), success: false, counts: true, retryable: true }),
    ).toEqual([{ type: "retry", key: k("h1", "a"), wave: 1, attempt: 3, delayMs: 2_000 }]);
    s.on({ type: "retry_due", key: k("h1", "a") });
    // Attempt 3 fails retryably too: no fourth attempt, the failure is final and counts.
    const out = s.on({ type: "settled", key: k("h1", "a"), success: false, counts: true, retryable: true });
    expect(out[0]).toEqual({ type: "final", key: k("h1", "a"), wave: 1 });
    expect(s.state.failures).toBe(1);
  });

  it("retries run out, a failure not marked retryable is final at once, and both count", () => {
    const retries = { attempts: 1, backoffMs: 100, maxBackoffMs: 100 };
    const s = drive(config(waves(["a:h1,h2"]), [], { retries, budget: { maxFailures: 5 } }));
    s.begin();
    s.on({ type: "settled", key: k("h1", "a"), success: false, counts: true, retryable: true });
    s.on({ type: "retry_due", key: k("h1", "a") });
    const out = s.on({ type: "settled", key: k("h1", "a"), success: false, counts: true, retryable: true });
    expect(out[0]).toEqual({ type: "final", key: k("h1", "a"), wave: 1 });
    expect(s.fail(k("h2", "a"))[0]).toEqual({ type: "final", key: k("h2", "a"), wave: 1 });
    expect(s.state.failures).toBe(2);
  });

  it("a retry due while paused waits for continue; an abort makes a waiting retry's failure final", () => {
    const retries = { attempts: 3, backoffMs: 100, maxBackoffMs: 100 };
    const s = drive(config(waves(["a:h1"]), [], { retries }));
    s.begin();
    s.on({ type: "settled", key: k("h1", "a"), success: false, counts: true, retryable: true });
    s.on({ type: "pause", reason: "look" });
    expect(s.on({ type: "retry_due", key: k("h1", "a") })).toEqual([]);
    expect(s.sends(s.on({ type: "resume" }))).toEqual([k("h1", "a")]);
    s.on({ type: "settled", key: k("h1", "a"), success: false, counts: true, retryable: true });
    const aborted = s.on({ type: "abort", reason: "enough" });
    expect(aborted).toContainEqual({ type: "final", key: k("h1", "a"), wave: 1 });
    expect(aborted.at(-1)).toEqual({ type: "finished", status: "aborted" });
    expect(s.on({ type: "retry_due", key: k("h1", "a") })).toEqual([]);
  });

  it("minHealthyTime: a started step waits for its observation, slot taken; only then is it final", () => {
    const s = drive(config(waves(["a:h1,h2"]), [], { maxInFlight: 1, minHealthyTimeMs: 3_000 }));
    s.begin();
    expect(s.ok(k("h1", "a"))).toEqual([{ type: "verify", key: k("h1", "a"), wave: 1, ms: 3_000 }]);
    expect(s.state.inFlight).toBe(1);
    const dead = s.on({ type: "verified", key: k("h1", "a"), success: false, counts: true });
    expect(dead[0]).toEqual({ type: "final", key: k("h1", "a"), wave: 1 });
    expect(dead[1]).toMatchObject({ type: "halted" });
    // A failed start is not observed again; a stop never is.
    const t = drive(config(waves(["a:h1"]), [], { minHealthyTimeMs: 3_000, budget: { maxFailures: 1 } }));
    t.begin();
    expect(t.fail(k("h1", "a"))[0]).toEqual({ type: "final", key: k("h1", "a"), wave: 1 });
    const stop: PlannedWave[] = [
      { phase: 1, wave: 1, service: "a", gate: false, steps: [{ host: "h1", service: "a", action: "stop" }] },
    ];
    const u = drive(config(stop, [], { minHealthyTimeMs: 3_000 }));
    u.begin();
    expect(u.ok("h1/a/stop")[0]).toEqual({ type: "final", key: "h1/a/stop", wave: 1 });
  });

  it("judgeHealth: running, the same pid and a passing probe is healthy; anything else says what was seen", () => {
    const seen = (observed: Record<string, unknown>, outcome: "success" | "failure" = "success") => ({
      outcome,
      evidence: "ActiveState=active",
      observed,
    });
    expect(judgeHealth({ pid: 10 }, seen({ status: "running", pid: 10, healthy: true }), 3_000)).toEqual({
      status: "success",
      evidence: "ActiveState=active; running, same pid 10, health probe passing",
    });
    // A success that could not compare pids (or had no probe) says so in its evidence.
    expect(judgeHealth({}, seen({ status: "running", pid: 12 }), 3_000)).toEqual({
      status: "success",
      evidence:
        "ActiveState=active; running, pid not compared (not known both at start and now), no health probe",
    });
    expect(judgeHealth({ pid: 10 }, seen({ status: "stopped" }), 3_000)).toMatchObject({
      status: "failed",
      reason: "stopped 3000 ms after it started",
    });
    expect(judgeHealth({ pid: 10 }, seen({ status: "running", pid: 11 }), 3_000)).toMatchObject({
      status: "failed",
      reason: "restarted within 3000 ms of its start (pid 10, now 11)",
    });
    expect(judgeHealth({}, seen({ status: "running", pid: 11, healthy: false }), 3_000)).toMatchObject({
      status: "failed",
      reason: "health probe failing 3000 ms after it started",
    });
    expect(judgeHealth({ pid: 10 }, seen({ status: "running" }, "failure"), 3_000).status).toBe("unknown");
    expect(judgeHealth({ pid: 10 }, { outcome: "success", evidence: "x" }, 3_000).status).toBe("unknown");
    expect(judgeHealth({ pid: 10 }, undefined, 3_000)).toMatchObject({ status: "unknown" });
  });

  it("availability floor: restarts past maxUnavailable wait; a failed restart keeps its instance down", () => {
    const restart = (hosts: string[]): PlannedWave[] => [
      {
        phase: 1,
        wave: 1,
        service: "a",
        gate: false,
        steps: hosts.map((host) => ({ host, service: "a", action: "restart" as const })),
      },
    ];
    const r = (host: string) => `${host}/a/restart`;
    const s = drive(
      config(restart(["h1", "h2", "h3"]), [], { maxUnavailable: 1, budget: { maxFailures: 5 } }),
    );
    expect(s.sends(s.begin())).toEqual([r("h1")]);
    // h1 back up: the next one goes.
    expect(s.sends(s.on({ type: "settled", key: r("h1"), success: true, counts: false }))).toEqual([r("h2")]);
    // h2's restart failed: it stays down, nothing else is in progress, so h3 is cancelled with the reason.
    const out = s.on({ type: "settled", key: r("h2"), success: false, counts: true });
    expect(out).toContainEqual({
      type: "cancel",
      key: r("h3"),
      wave: 1,
      reason: "availability floor: 1 of a's instances down by this rollout (maxUnavailable 1)",
    });
    expect(out.at(-1)).toEqual({ type: "finished", status: "done" });
  });

  it("availability floor: a stop rollout stops at most maxUnavailable instances; starts are never held", () => {
    const stopWave: PlannedWave[] = [
      {
        phase: 1,
        wave: 1,
        service: "a",
        gate: false,
        steps: ["h1", "h2", "h3"].map((host) => ({ host, service: "a", action: "stop" as const })),
      },
    ];
    const s = drive(config(stopWave, [], { maxUnavailable: 2 }));
    expect(s.sends(s.begin())).toEqual(["h1/a/stop", "h2/a/stop"]);
    expect(s.sends(s.ok("h1/a/stop"))).toEqual([]); // h1 stopped, h2 in progress: 2 down, h3 waits
    const out = s.ok("h2/a/stop");
    expect(out.find((d) => d.type === "cancel")).toMatchObject({ key: "h3/a/stop" });
    const starts = drive(config(waves(["a:h1,h2,h3"]), [], { maxUnavailable: 1 }));
    expect(starts.sends(starts.begin())).toHaveLength(3);
  });

  it("an unknown, repeated or late event changes nothing", () => {
    const s = drive(config(waves(["a:h1"]), []));
    s.begin();
    expect(s.ok("nobody/a/start")).toEqual([]);
    expect(s.ok(k("h1", "a")).at(-1)).toEqual({ type: "finished", status: "done" });
    expect(s.ok(k("h1", "a"))).toEqual([]);
    expect(s.on({ type: "soaked", key: k("h1", "a") })).toEqual([]);
  });

  it("the critical path is the longest chain of waves through the graph", () => {
    const services = [
      { name: "db", dependsOn: [] },
      { name: "api", dependsOn: ["db"] },
      { name: "web", dependsOn: ["api"] },
      { name: "cache", dependsOn: [] },
    ];
    const planned = waves(["db:h1", "api:h1", "web:h1", "cache:h1", "cache:h2", "cache:h3", "cache:h4"]);
    expect(criticalPath(planned, executionOrder(services, "start"))).toEqual(["cache"]);
    expect(criticalPath(planned.slice(0, 5), executionOrder(services, "start"))).toEqual([
      "db",
      "api",
      "web",
    ]);
  });
});
