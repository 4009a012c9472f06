import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { CommandRunner } from "../../agent/drivers/driver.ts";
import { parseShow, SystemdDriver } from "../../agent/drivers/systemd.ts";
import { parseEnumDepend, parseQueryEx, WindowsServiceDriver } from "../../agent/drivers/windows-service.ts";

const sc = (name: string) => readFileSync(new URL(`../fixtures/sc-exe/${name}.txt`, import.meta.url), "utf8");
const systemctl = (name: string) =>
  readFileSync(new URL(`../fixtures/systemctl/${name}.txt`, import.meta.url), "utf8");

/**
 * A scripted machine: each query returns the next state of a sequence (the last one repeats), and every call is
 * recorded, so a test asserts what the driver ran, in order.
 */
function scripted(states: Record<string, string[]>): { run: CommandRunner; calls: string[] } {
  const calls: string[] = [];
  const cursors = new Map<string, number>();
  const run: CommandRunner = async (file, args) => {
    calls.push([file, ...args].join(" "));
    const key = args[0] === "show" || args[0] === "queryex" || args[0] === "enumdepend" ? args[0] : "other";
    const sequence = states[key] ?? [""];
    const index = cursors.get(key) ?? 0;
    cursors.set(key, index + 1);
    return { stdout: sequence[Math.min(index, sequence.length - 1)] as string, code: 0 };
  };
  return { run, calls };
}

describe("sc.exe output parsing (format of Windows' sc.exe queryex / enumdepend)", () => {
  it("reads state, pid and exit codes", () => {
    expect(parseQueryEx(sc("queryex-running"))).toEqual({
      state: "RUNNING",
      pid: 4312,
      win32ExitCode: 0,
      serviceExitCode: 0,
    });
    expect(parseQueryEx(sc("queryex-stop-pending")).state).toBe("STOP_PENDING");
    expect(parseQueryEx(sc("queryex-stopped"))).toMatchObject({ state: "STOPPED", pid: 0 });
  });

  it("reads dependent services and their states", () => {
    expect(parseEnumDepend(sc("enumdepend-none"))).toEqual([]);
    expect(parseEnumDepend(sc("enumdepend-running"))).toEqual([
      { name: "LifelineDemoWorker", state: "RUNNING" },
    ]);
  });
});

describe("windows-service driver", () => {
  it("a graceful stop: sc stop, polled through STOP_PENDING to STOPPED, no escalation", async () => {
    const { run, calls } = scripted({
      queryex: [
        sc("queryex-running"),
        sc("queryex-stop-pending"),
        sc("queryex-stop-pending"),
        sc("queryex-stopped"),
      ],
      enumdepend: [sc("enumdepend-none")],
    });
    const result = await new WindowsServiceDriver("LifelineDemo", run, 1).stop(5_000);
    expect(result).toMatchObject({ escalated: false, pid: 4312 });
    expect(calls.filter((c) => !c.includes("queryex"))).toEqual([
      "sc.exe enumdepend LifelineDemo",
      "sc.exe stop LifelineDemo",
    ]);
  });

  it("a service stuck in STOP_PENDING past the grace: its process tree is killed (the SCM never does)", async () => {
    const { run, calls } = scripted({
      queryex: [sc("queryex-running"), ...Array(30).fill(sc("queryex-stop-pending")), sc("queryex-stopped")],
      enumdepend: [sc("enumdepend-none")],
    });
    const result = await new WindowsServiceDriver("LifelineDemo", run, 1).stop(20);
    expect(result?.escalated).toBe(true);
    expect(calls).toContain("taskkill.exe /PID 4312 /T /F");
  });

  it("running dependents make the stop fail with their names; nothing is stopped", async () => {
    const { run, calls } = scripted({
      queryex: [sc("queryex-running")],
      enumdepend: [sc("enumdepend-running")],
    });
    await expect(new WindowsServiceDriver("LifelineDemo", run, 1).stop(1_000)).rejects.toThrow(
      "dependent services still running: LifelineDemoWorker",
    );
    expect(calls.some((c) => c.startsWith("sc.exe stop"))).toBe(false);
  });

  it("stop on a stopped service is a no-op", async () => {
    const { run } = scripted({ queryex: [sc("queryex-stopped")] });
    expect(await new WindowsServiceDriver("LifelineDemo", run, 1).stop(1_000)).toBeUndefined();
  });
});

describe("systemd driver", () => {
  it("parses systemctl show", () => {
    expect(parseShow(systemctl("show-active"))).toEqual({
      activeState: "active",
      subState: "running",
      mainPid: 2211,
      execMainStatus: 0,
    });
  });

  it("a stop polls through deactivating to inactive", async () => {
    const { run, calls } = scripted({
      show: [systemctl("show-active"), systemctl("show-deactivating"), systemctl("show-inactive")],
    });
    const result = await new SystemdDriver("api.service", run, 1).stop(5_000);
    expect(result).toMatchObject({ escalated: false, pid: 2211 });
    expect(calls.filter((c) => !c.includes(" show "))).toEqual(["systemctl stop --no-block api.service"]);
  });

  it("a unit still deactivating after the grace is killed with SIGKILL", async () => {
    const { run, calls } = scripted({
      show: [
        systemctl("show-active"),
        ...Array(30).fill(systemctl("show-deactivating")),
        systemctl("show-inactive"),
      ],
    });
    const result = await new SystemdDriver("api.service", run, 1).stop(20);
    expect(result?.escalated).toBe(true);
    expect(calls).toContain("systemctl kill --signal=SIGKILL api.service");
  });

  it("a failed unit reports its exit status, so a start is a failure", async () => {
    const { run } = scripted({ show: [systemctl("show-failed")] });
    const driver = new SystemdDriver("api.service", run, 1);
    expect(await driver.exited()).toBe(3);
    expect((await driver.state()).running).toBe(false);
  });
});
