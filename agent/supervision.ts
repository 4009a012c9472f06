import type { ExitObserved } from "../core/outcome.ts";
import { backoffDelay } from "../core/retry.ts";
import type { RestartConfig } from "./config.ts";

/**
 * What the agent decides when a service it keeps running goes down without a command: pure functions of the
 * restart policy, the service's restart history and the clock, so that every branch is unit-tested and the
 * agent's loop (service-keeper.ts) only carries them out.
 */

/** Why a kept service is down. */
export type DownCause =
  /** It exited; `exit` is undefined when the agent could not observe how (not its child, or found down). */
  | { kind: "exited"; exit: ExitObserved | undefined }
  /** Its liveness probe failed failureThreshold times in a row while it ran. */
  | { kind: "unhealthy"; reason: string }
  /** A start (a command's, or a restart's) did not make it healthy. */
  | { kind: "start_failed"; reason: string; exit?: ExitObserved | undefined };

export interface RestartHistory {
  /** When restarts were scheduled, within the crash-loop window (older ones are dropped). */
  restarts: number[];
  /** Restarts since the service last stayed up for resetAfterMs: the backoff's exponent. */
  attempt: number;
}

export type Decision =
  | { kind: "leave"; reason: string }
  | { kind: "restart"; delayMs: number; attempt: number }
  | { kind: "crash_loop"; restarts: number; retryAt: number };

export const freshHistory = (): RestartHistory => ({ restarts: [], attempt: 0 });

/** An exit that counts as a failure for `on-failure`: anything but code 0; an unobserved exit counts too. */
export function failed(cause: DownCause): boolean {
  if (cause.kind !== "exited") return true;
  if (cause.exit === undefined) return true;
  return !(cause.exit.code === 0 && !cause.exit.signal);
}

/**
 * The delay before restart number `attempt` (0-based): between half and all of initialDelayMs * 2^attempt, at
 * most maxDelayMs ("equal jitter": spread like full jitter, but each delay at least the previous cap's, so the
 * delays grow and a crash loop cannot hammer its dependencies with near-zero waits).
 */
export function restartDelay(
  policy: RestartConfig,
  attempt: number,
  random: () => number = Math.random,
): number {
  return backoffDelay(attempt, { ...policy, jitter: "equal", random });
}

/** The decision for a kept service found down, and the history after it. */
export function decide(
  policy: RestartConfig,
  history: RestartHistory,
  cause: DownCause,
  now: number,
  random: () => number = Math.random,
): { decision: Decision; history: RestartHistory } {
  if (policy.policy === "never")
    return { decision: { kind: "leave", reason: "restart policy never" }, history };
  if (policy.policy === "on-failure" && !failed(cause))
    return { decision: { kind: "leave", reason: "exited with code 0; restart policy on-failure" }, history };
  const restarts = history.restarts.filter((at) => now - at < policy.windowMs);
  if (restarts.length >= policy.maxRestarts) {
    return {
      decision: { kind: "crash_loop", restarts: restarts.length, retryAt: now + policy.quietPeriodMs },
      history: { ...history, restarts },
    };
  }
  const delayMs = restartDelay(policy, history.attempt, random);
  return {
    decision: { kind: "restart", delayMs, attempt: history.attempt + 1 },
    history: { restarts: [...restarts, now], attempt: history.attempt + 1 },
  };
}

/** A service that stayed up for resetAfterMs starts again from the first delay. */
export function settled(policy: RestartConfig, history: RestartHistory, upForMs: number): RestartHistory {
  return upForMs >= policy.resetAfterMs && history.attempt > 0 ? { ...history, attempt: 0 } : history;
}
