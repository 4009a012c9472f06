import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { serviceSchema } from "../../agent/config.ts";
import { ProcessDriver } from "../../agent/drivers/process.ts";
import { waitUntil } from "../../core/poll.ts";

describe("process driver", () => {
  it("a killed process's late exit is not taken for the exit of the one started after it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeline-driver-"));
    const service = serviceSchema.parse({
      name: "sleeper",
      command: [process.execPath, "-e", "setInterval(() => {}, 1000)"],
    });
    const driver = new ProcessDriver(service, dir);
    const first = driver.start({}).pid;
    // Killed and replaced in the same tick: the first one's exit event can only arrive after the second start.
    process.kill(first, "SIGKILL");
    const second = driver.start({}).pid;
    const firstGone = await waitUntil(
      async () => {
        try {
          process.kill(first, 0);
          return undefined;
        } catch {
          return true;
        }
      },
      { timeoutMs: 5_000, intervalMs: 20 },
    );
    expect(firstGone).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(driver.exited()).toBeUndefined();
    process.kill(second, "SIGKILL");
    expect(
      await waitUntil(async () => driver.exited() ?? undefined, { timeoutMs: 5_000, intervalMs: 20 }),
    ).toEqual({ code: null, signal: "SIGKILL" });
  });

  it("on Windows it says it cannot verify, instead of guessing: state unknown, start and stop fail with the reason", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeline-driver-"));
    const service = serviceSchema.parse({ name: "tool", command: ["tool.exe"] });
    const driver = new ProcessDriver(service, dir, "win32");
    expect(driver.state()).toMatchObject({ running: false, status: "unknown" });
    expect(() => driver.start({})).toThrow(
      /command_failed: the process driver cannot verify or stop processes on Windows yet/,
    );
    await expect(driver.stop(100)).rejects.toThrow(/unexpected_state: the process driver cannot verify/);
  });
});
