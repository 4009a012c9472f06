import { setTimeout as delay } from "node:timers/promises";
import { isRetryable, RetryableError } from "./errors.ts";

export interface RetryOptions {
  /** Attempts after the first one; Infinity retries until the signal aborts. */
  retries: number;
  /** First backoff; each later one doubles up to maxDelayMs. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Defaults to "is a RetryableError". */
  shouldRetry?: (error: unknown, attempt: number) => boolean;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
  /** Injected in tests so that no test sleeps. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

/**
 * Exponential backoff with full jitter (a random delay in [0, cap]), which spreads the retries of many
 * clients that failed at the same moment. A RetryableError's retryAfterMs is a floor the server asked for.
 */
export function backoffDelay(attempt: number, options: RetryOptions, error?: unknown): number {
  const cap = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** attempt);
  const jittered = Math.round((options.random ?? Math.random)() * cap);
  const floor = error instanceof RetryableError ? (error.retryAfterMs ?? 0) : 0;
  return Math.max(jittered, floor);
}

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
