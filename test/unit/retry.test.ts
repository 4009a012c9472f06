import { describe, expect, it } from "vitest";
import { ConfigError, PermanentError, RetryableError } from "../../core/errors.ts";
import { backoffDelay, retry } from "../../core/retry.ts";

function recordingSleep() {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

describe("retry", () => {
  const base = { retries: 5, initialDelayMs: 100, maxDelayMs: 1_000, random: () => 1 };

  it("retries retryable errors with exponential backoff capped at maxDelayMs", async () => {
    const { waits, sleep } = recordingSleep();
    let calls = 0;
    const result = await retry(
      async () => {
        if (++calls < 5) throw new RetryableError("test.busy", "busy");
        return "done";
      },
      { ...base, sleep },
    );
    expect(result).toBe("done");
    expect(waits).toEqual([100, 200, 400, 800]);
  });

  it("honours a server's retry-after as a floor", async () => {
    expect(backoffDelay(0, base, new RetryableError("t", "slow down", { retryAfterMs: 5_000 }))).toBe(5_000);
  });

  it("jitter spreads delays between zero and the cap", () => {
    expect(backoffDelay(3, { ...base, random: () => 0 })).toBe(0);
    expect(backoffDelay(3, { ...base, random: () => 0.5 })).toBe(400);
  });

  it.each([
    ["a permanent error", new PermanentError("bad.record", "bad")],
    ["a config error", new ConfigError("bad.password", "wrong")],
    ["a plain error", new Error("bug")],
  ])("does not retry %s", async (_, error) => {
    const { waits, sleep } = recordingSleep();
    await expect(retry(async () => Promise.reject(error), { ...base, sleep })).rejects.toBe(error);
    expect(waits).toEqual([]);
  });

  it("gives up after the last attempt with the last error", async () => {
    const { waits, sleep } = recordingSleep();
    let calls = 0;
    await expect(
      retry(async () => Promise.reject(new RetryableError("t", `attempt ${++calls}`)), {
        ...base,
        retries: 2,
        sleep,
      }),
    ).rejects.toThrow("attempt 3");
    expect(waits).toHaveLength(2);
  });

  it("stops when the signal aborts", async () => {
    const controller = new AbortController();
    const sleep = async () => controller.abort();
    await expect(
      retry(async () => Promise.reject(new RetryableError("t", "busy")), {
        ...base,
        sleep,
        signal: controller.signal,
      }),
    ).rejects.toThrow(/abort/i);
  });
});
