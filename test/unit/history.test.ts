import { describe, expect, it } from "vitest";
import { type HistoryEvent, rolloutHistoryFrom } from "../../controller/history.ts";
import type { Plan, PlannedStep, RolloutPlan } from "../../controller/plan.ts";
import { stepKey } from "../../controller/run.ts";

const step = (host: string): PlannedStep => ({ host, service: "app", action: "start" });
const built = {
  waves: [{ wave: 1, service: "app", steps: [step("h1"), step("h2")] }],
} as unknown as RolloutPlan;
const planned: HistoryEvent = {
  event: { action: "rollout.planned" },
  trace: { id: "t".repeat(32) },
  span: { id: "s".repeat(16) },
  lifeline: { rollout_id: "r-1", plan: { name: "r" } as unknown as Plan, built },
};
const sent = (host: string, id: string): HistoryEvent => ({
  host: { name: "controller" },
  event: { action: "command.sent" },
  lifeline: { rollout_id: "r-1", command_id: id, step: step(host) },
});
const completed = (host: string, id: string, outcome: string, retryable = false): HistoryEvent => ({
  host: { name: host },
  event: { action: "command.completed", outcome, reason: outcome },
  lifeline: { command_id: id, ...(retryable ? { retryable: true } : {}) },
});

describe("rollout history: the state a resumed controller starts from", () => {
  it("every command sent for a step is an attempt; the latest speaks for it, a retryable failure stays retryable", () => {
    const history = rolloutHistoryFrom("r-1", "lifecycle", [
      planned,
      sent("h1", "c1"),
      completed("h1", "c1", "failure", true),
      sent("h1", "c2"),
      completed("h1", "c2", "failure", true),
      sent("h2", "c3"),
      completed("h2", "c3", "success"),
    ]);
    const { attempts, results, pending } = history.state;
    expect(attempts?.get(stepKey(step("h1")))).toBe(2);
    expect(attempts?.get(stepKey(step("h2")))).toBe(1);
    expect(results.get(stepKey(step("h1")))).toMatchObject({
      commandId: "c2",
      status: "failed",
      retryable: true,
    });
    expect(results.get(stepKey(step("h2")))).toMatchObject({ commandId: "c3", status: "success" });
    expect(results.get(stepKey(step("h2")))?.retryable).toBeUndefined();
    expect(pending.size).toBe(0);
  });

  it("a retry sent but not answered is pending, as its attempt; an earlier attempt's answer does not speak for it", () => {
    const history = rolloutHistoryFrom("r-1", "lifecycle", [
      planned,
      sent("h1", "c1"),
      completed("h1", "c1", "failure", true),
      sent("h1", "c2"),
      // Another host's claim about c2 is not its outcome.
      completed("h2", "c2", "success"),
    ]);
    expect(history.state.attempts?.get(stepKey(step("h1")))).toBe(2);
    expect(history.state.results.has(stepKey(step("h1")))).toBe(false);
    expect(history.state.pending.get(stepKey(step("h1")))?.commandId).toBe("c2");
  });
});
