import { describe, expect, it } from "vitest";
import type { RestartConfig } from "../../agent/config.ts";
import { decide, failed, freshHistory, restartDelay, settled } from "../../agent/supervision.ts";

const policy = (overrides: Partial<RestartConfig> = {}): RestartConfig => ({
  policy: "always",
  initialDelayMs: 1_000,
  maxDelayMs: 60_000,
  maxRestarts: 5,
  windowMs: 300_000,
  quietPeriodMs: 600_000,
  resetAfterMs: 60_000,
  ...overrides,
});
const crashed = { kind: "exited", exit: { code: 1 } } as const;
const clean = { kind: "exited", exit: { code: 0 } } as const;

describe("supervision decisions", () => {
  it("never restarts under policy never, whatever the cause", () => {
    for (const cause of [crashed, clean, { kind: "unhealthy", reason: "x" } as const])
      expect(decide(policy({ policy: "never" }), freshHistory(), cause, 0).decision.kind).toBe("leave");
  });

  it("on-failure leaves a clean exit and restarts a code, a signal, an unobserved exit and a liveness failure", () => {
    const onFailure = policy({ policy: "on-failure" });
    expect(decide(onFailure, freshHistory(), clean, 0).decision).toEqual({
      kind: "leave",
      reason: "exited with code 0; restart policy on-failure",
    });
    for (const cause of [
      crashed,
      { kind: "exited", exit: { code: null, signal: "SIGKILL" } } as const,
      { kind: "exited", exit: undefined } as const,
      { kind: "unhealthy", reason: "probe" } as const,
      { kind: "start_failed", reason: "exit 2" } as const,
    ]) {
      expect(failed(cause)).toBe(true);
      expect(decide(onFailure, freshHistory(), cause, 0).decision.kind).toBe("restart");
    }
    expect(decide(policy(), freshHistory(), clean, 0).decision.kind).toBe("restart");
  });

  it("delays grow: each lies between half and all of initial * 2^n, capped, so none is shorter than the one before", () => {
    const p = policy({ initialDelayMs: 100, maxDelayMs: 1_000, maxRestarts: 100 });
    expect(restartDelay(p, 0, () => 0)).toBe(50);
    expect(restartDelay(p, 0, () => 1)).toBe(100);
    expect(restartDelay(p, 3, () => 0)).toBe(400);
    expect(restartDelay(p, 10, () => 1)).toBe(1_000);
    expect(restartDelay(p, 10, () => 0)).toBe(500);
    let history = freshHistory();
    let previousMax = 0;
    for (let i = 0; i < 8; i++) {
      const { decision, history: next } = decide(p, history, crashed, i * 10, Math.random);
      if (decision.kind !== "restart") throw new Error(decision.kind);
      expect(decision.attempt).toBe(i + 1);
      expect(decision.delayMs).toBeGreaterThanOrEqual(previousMax / 2);
      expect(decision.delayMs).toBeLessThanOrEqual(Math.min(1_000, 100 * 2 ** i));
      previousMax = Math.min(1_000, 100 * 2 ** i);
      history = next;
    }
  });

  it("maxRestarts within the window is a crash loop with the quiet period's end; restarts outside the window do not count", () => {
    const p = policy({ maxRestarts: 3, windowMs: 1_000, quietPeriodMs: 5_000 });
    let history = freshHistory();
    for (const at of [0, 100, 200]) {
      const step = decide(p, history, crashed, at);
      expect(step.decision.kind).toBe("restart");
      history = step.history;
    }
    expect(decide(p, history, crashed, 300).decision).toEqual({
      kind: "crash_loop",
      restarts: 3,
      retryAt: 5_300,
    });
    // At 1,150 the restarts at 0 and 100 have left the window: one more restart is allowed.
    expect(decide(p, history, crashed, 1_150).decision.kind).toBe("restart");
  });

  it("a service up for resetAfterMs starts again from the first delay; a shorter run keeps its exponent", () => {
    const p = policy({ resetAfterMs: 1_000 });
    const history = { restarts: [0, 1], attempt: 4 };
    expect(settled(p, history, 999)).toBe(history);
    expect(settled(p, history, 1_000)).toEqual({ restarts: [0, 1], attempt: 0 });
  });
});
