import { setTimeout as delay } from "node:timers/promises";
import { isRetryable, RetryableError } from "./errors.ts";

/**
 * How a backoff's delay is drawn below its cap: `full` anywhere in [0, cap] (spreads many clients that failed at
 * once); `equal` in [cap/2, cap] (spread, yet growing: a crash loop cannot hammer with near-zero waits); `none`
 * the cap itself.
 */
export type Jitter = "full" | "equal" | "none";

export interface BackoffOptions {
  /** First backoff's cap; each later one doubles up to maxDelayMs. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Defaults to full. */
  jitter?: Jitter;
  /** Injected in tests. */
  random?: () => number;
}

export interface RetryOptions extends BackoffOptions {
  /** Attempts after the first one; Infinity retries until the signal aborts. */
  retries: number;
  /** Defaults to "is a RetryableError". */
  shouldRetry?: (error: unknown, attempt: number) => boolean;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
  /** Injected in tests so that no test sleeps. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** The cap of backoff number `attempt` (0-based): initialDelayMs doubled per attempt, at most maxDelayMs. */
export function backoffCap(attempt: number, initialDelayMs: number, maxDelayMs: number): number {
  return Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt, 30));
}

/** A delay under `cap`, drawn as `jitter` says. */
export function jittered(cap: number, jitter: Jitter = "full", random: () => number = Math.random): number {
  if (jitter === "none") return cap;
  if (jitter === "equal") return Math.round(cap / 2 + random() * (cap / 2));
  return Math.round(random() * cap);
}

/**
 * The delay before retry number `attempt + 1`: exponential backoff with jitter (full by default). A RetryableError's
 * retryAfterMs is a floor the server asked for. Every backoff in Lifeline is drawn here.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, error?: unknown): number {
  const cap = backoffCap(attempt, options.initialDelayMs, options.maxDelayMs);
  const delay = jittered(cap, options.jitter, options.random);
  const floor = error instanceof RetryableError ? (error.retryAfterMs ?? 0) : 0;
  return Math.max(delay, floor);
}

/** The one retry loop: `operation` again after each backoff while `shouldRetry` says so and retries are left. */
export async function retry<T>(
  operation: (attempt: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const shouldRetry = options.shouldRetry ?? isRetryable;
  const sleep = options.sleep ?? ((ms: number, signal?: AbortSignal) => delay(ms, undefined, { signal }));
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await operation(attempt);
    } catch (error) {
      if (attempt >= options.retries || !shouldRetry(error, attempt)) throw error;
      const wait = backoffDelay(attempt, options, error);
      options.onRetry?.(error, attempt + 1, wait);
      await sleep(wait, options.signal);
    }
  }
}
