import { connect } from "node:net";
import { setTimeout as delay } from "node:timers/promises";

/**
 * The one polling loop, for things that announce nothing (a server starting, a service's state): calls `attempt`
 * until it says done or the time is up, `intervalMs` apart, and returns its last answer (done false: timed out).
 * An error from `attempt` ends the poll; callers that want to keep trying catch it inside.
 */
export async function poll<T>(
  attempt: () => Promise<{ done: boolean; value: T }>,
  options: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal },
): Promise<{ done: boolean; value: T }> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const answer = await attempt();
    if (answer.done || Date.now() >= deadline) return answer;
    await delay(
      options.intervalMs ?? 250,
      undefined,
      options.signal ? { signal: options.signal } : undefined,
    );
  }
}

/** Polls `check` until it returns a value (a failed check counts as none) or the time is up. */
export async function waitUntil<T>(
  check: () => Promise<T | undefined>,
  options: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal },
): Promise<T | undefined> {
  const { value } = await poll(async () => {
    const value = await check().catch(() => undefined);
    return { done: value !== undefined, value };
  }, options);
  return value;
}

/** True when something accepts TCP connections on the port (1 s timeout). */
export function isPortOpen(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.setTimeout(1_000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(false));
  });
}
