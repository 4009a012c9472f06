import { connect } from "node:net";
import { setTimeout as delay } from "node:timers/promises";

/** Polls `check` until it returns a value or the time is up. For servers that announce nothing. */
export async function waitUntil<T>(
  check: () => Promise<T | undefined>,
  options: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal },
): Promise<T | undefined> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() >= deadline) return undefined;
    await delay(
      options.intervalMs ?? 250,
      undefined,
      options.signal ? { signal: options.signal } : undefined,
    );
  }
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
