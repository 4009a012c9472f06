import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { driverFor } from "../../agent/agent.ts";
import { serviceSchema } from "../../agent/config.ts";
import { ProcessDriver } from "../../agent/drivers/process.ts";
import { WindowsProcessDriver } from "../../agent/drivers/windows-process.ts";
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

  it("on Windows a declared process runs under the Windows process driver (job object, CTRL_C), not /proc and signals", () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeline-driver-"));
    const service = serviceSchema.parse({ name: "tool", command: ["tool.exe"] });
    const windows = driverFor(service, dir, "win32");
    expect(windows).toBeInstanceOf(WindowsProcessDriver);
    expect(windows).toMatchObject({ stopSignal: "CTRL_C_EVENT", killControl: "TerminateJobObject" });
    const linux = driverFor(service, dir, "linux");
    expect(linux).toBeInstanceOf(ProcessDriver);
    expect(linux).toMatchObject({ stopSignal: "SIGTERM", killControl: "SIGKILL" });
  });
});
