import { describe, expect, it } from "vitest";
import type { PlannedStep, RolloutPlan } from "../../controller/plan.ts";
import {
  type ControllerEvent,
  describeRollouts,
  describeStatus,
  rolloutsFrom,
  stepStates,
} from "../../controller/rollouts.ts";
import { listHosts, overBudget, rolloutStatus, type StepResult } from "../../controller/run.ts";

const built = (name: string, hosts: string[]): RolloutPlan => ({
  name,
  action: "stop",
  order: ["api"],
  waves: hosts.map((host, i) => ({
    phase: 1,
    wave: i + 1,
    service: "api",
    steps: [{ host, service: "api", action: "stop" }],
    gate: false,
  })),
  unreachable: [],
  hosts: hosts.length,
});

let clock = Date.parse("2026-12-05T10:00:00Z");
const at = () => {
  clock += 1000;
  return new Date(clock).toISOString();
};
const event = (
  rolloutId: string,
  action: string,
  lifeline: ControllerEvent["lifeline"] = {},
  reason?: string,
  host = "controller",
): ControllerEvent => ({
  "@timestamp": at(),
  host: { name: host },
  event: { action, ...(reason ? { reason } : {}) },
  trace: { id: `trace-${rolloutId}` },
  lifeline: { rollout_id: rolloutId, ...lifeline },
});
const step = (host: string): PlannedStep => ({ host, service: "api", action: "stop" });
const planned = (id: string, hosts: string[]) =>
  event(id, "rollout.planned", {
    plan: { name: id.split("-")[0] },
    built: built(id.split("-")[0] as string, hosts),
  });
const sent = (id: string, host: string) =>
  event(id, "command.sent", { step: step(host), command_id: `c-${host}` });
const completed = (id: string, host: string, status: string) =>
  event(id, "step.completed", {
    step: step(host),
    command_id: `c-${host}`,
    step_status: status,
    evidence: `${status} on ${host}`,
  });

describe("rollout list and status: only what the controllers recorded", () => {
  const events = [
    planned("done-1", ["h1", "h2"]),
    sent("done-1", "h1"),
    completed("done-1", "h1", "success"),
    sent("done-1", "h2"),
    completed("done-1", "h2", "success"),
    event("done-1", "rollout.completed", {}, "success"),
    planned("bad-2", ["h1", "h2", "h3"]),
    sent("bad-2", "h1"),
    completed("bad-2", "h1", "failed"),
    event("bad-2", "rollout.halted", {}, "1 failure > budget 0"),
    completed("bad-2", "h2", "cancelled"),
    completed("bad-2", "h3", "cancelled"),
    event("bad-2", "rollout.completed", {}, "halted"),
    planned("gated-3", ["h1", "h2"]),
    sent("gated-3", "h1"),
    completed("gated-3", "h1", "success"),
    event("gated-3", "rollout.awaiting_approval", { wave: 2 }, "wave 2"),
    event("gated-3", "rollout.approval_rejected", {}, "unsigned"),
    planned("crashed-4", ["h1", "h2"]),
    sent("crashed-4", "h1"),
    // An agent's event of the same rollout: not the controller's record.
    event("crashed-4", "command.completed", { command_id: "c-h1" }, "ok", "h1"),
    // A rollout whose plan is not in the window: left out, not guessed.
    event("older-5", "step.completed", { step: step("h1"), step_status: "success" }),
  ];
  const rows = rolloutsFrom(events);

  it("newest first; completed ones by rollout.completed, the rest open with their last event", () => {
    expect(rows.map((r) => [r.rolloutId, r.status])).toEqual([
      ["crashed-4", "open"],
      ["gated-3", "open"],
      ["bad-2", "halted"],
      ["done-1", "success"],
    ]);
    expect(rows[0]).toMatchObject({
      lastEvent: "command.sent",
      steps: { planned: 2, byStatus: { sent: 1, "not sent": 1 } },
    });
    expect(rows[0]?.waiting).toBeUndefined();
    expect(rows[1]).toMatchObject({ waiting: "wave 2", steps: { byStatus: { success: 1, "not sent": 1 } } });
    expect(rows[2]).toMatchObject({
      halted: "1 failure > budget 0",
      steps: { byStatus: { failed: 1, cancelled: 2 } },
    });
    expect(rows[3]).toMatchObject({
      traceId: "trace-done-1",
      steps: { planned: 2, byStatus: { success: 2 } },
    });
  });

  it("an open rollout never reads as running or done in the text", () => {
    const text = describeRollouts(rows, Date.parse("2026-12-05T10:01:00Z"));
    expect(text).toMatch(/^crashed-4 {2}stop crashed {2}open, last event command\.sent \d+ s ago/m);
    expect(text).toMatch(
      /^gated-3 .*open, last event rollout\.approval_rejected .*\(awaiting approval: wave 2\)/m,
    );
    expect(text).not.toMatch(/running/);
    expect(describeRollouts([])).toBe("no rollouts in this window\n");
  });

  it("status: every planned step with its recorded status and evidence", () => {
    const own = events.filter((e) => e.lifeline?.rollout_id === "bad-2");
    const states = stepStates(own, built("bad", ["h1", "h2", "h3"]));
    expect(states.map((s) => [s.host, s.status, s.evidence])).toEqual([
      ["h1", "failed", "failed on h1"],
      ["h2", "cancelled", "cancelled on h2"],
      ["h3", "cancelled", "cancelled on h3"],
    ]);
    const crashed = events.filter((e) => e.lifeline?.rollout_id === "crashed-4");
    const text = describeStatus(
      rows[0] as (typeof rows)[0],
      stepStates(crashed, built("crashed", ["h1", "h2"])),
    );
    expect(text).toContain("a controller that died leaves it so (lifeline rollout resume <id>)");
    expect(text).toContain("wave 1  stop api on h1: sent\n");
    expect(text).toContain("wave 2  stop api on h2: not sent\n");
  });
});

describe("the failure budget, checked as each result arrives", () => {
  it("halts past the count or the percentage, never at it", () => {
    expect(overBudget(0, 10, { maxFailures: 0 })).toBeUndefined();
    expect(overBudget(1, 10, { maxFailures: 0 })).toBe(
      "1 of 10 steps failed, timed out or unknown (budget 0)",
    );
    expect(overBudget(2, 10, { maxFailures: 2 })).toBeUndefined();
    expect(overBudget(2, 10, { maxFailures: 5, maxFailurePercent: 20 })).toBeUndefined();
    expect(overBudget(3, 10, { maxFailures: 5, maxFailurePercent: 20 })).toBe(
      "3 of 10 steps failed, timed out or unknown (budget 5 or 20 %)",
    );
    expect(overBudget(0, 0, { maxFailures: 0, maxFailurePercent: 0 })).toBeUndefined();
  });
});

describe("a wave's hosts in its event", () => {
  it("names up to ten hosts, then how many more", () => {
    expect(listHosts(["a", "b"])).toBe("a, b");
    const many = Array.from({ length: 100_000 }, (_, i) => `host-${i}`);
    const line = listHosts(many);
    expect(line).toBe(`${many.slice(0, 10).join(", ")} and 99990 more (100000 hosts)`);
    expect(line.length).toBeLessThan(200);
  });
});

describe("rolloutStatus", () => {
  const step = (host: string, status: StepResult["status"]): StepResult => ({
    host,
    service: "api",
    action: "stop",
    commandId: `c-${host}`,
    status,
  });
  const ended = { aborted: false, halted: false, planned: 2 };

  it("is success only when every planned step has a verified success", () => {
    expect(rolloutStatus({ ...ended, steps: [step("a", "success"), step("b", "success")] })).toBe("success");
  });

  it("is never success when a planned step has no result (the controller failed before it settled)", () => {
    expect(rolloutStatus({ ...ended, steps: [step("a", "success")] })).toBe("incomplete");
    expect(rolloutStatus({ ...ended, steps: [] })).toBe("incomplete");
  });

  it("says failed when a step failed or timed out, incomplete for unknown or undeliverable ones", () => {
    expect(rolloutStatus({ ...ended, steps: [step("a", "success"), step("b", "timed_out")] })).toBe("failed");
    expect(rolloutStatus({ ...ended, steps: [step("a", "unknown"), step("b", "success")] })).toBe(
      "incomplete",
    );
    expect(rolloutStatus({ ...ended, steps: [step("a", "undeliverable"), step("b", "success")] })).toBe(
      "incomplete",
    );
  });

  it("puts an abort before a halt, and a halt before what the steps say", () => {
    const all = [step("a", "success"), step("b", "success")];
    expect(rolloutStatus({ ...ended, aborted: true, halted: true, steps: all })).toBe("cancelled");
    expect(rolloutStatus({ ...ended, halted: true, steps: all })).toBe("halted");
  });
});
