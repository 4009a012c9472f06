import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CommandRunner, StartResult, StopResult } from "../../agent/drivers/driver.ts";
import { parseShow, SystemdDriver } from "../../agent/drivers/systemd.ts";
import { parseEnumDepend, parseQueryEx, WindowsServiceDriver } from "../../agent/drivers/windows-service.ts";
import { OutcomeError, stopEnding } from "../../core/outcome.ts";

/**
 * Outputs in the tools' own format: sc.exe's with CRLF line ends (as Windows' sc.exe prints them), systemctl's
 * with LF. show-no-bus.txt was recorded on this machine (systemctl without systemd as PID 1); the others follow
 * the tools' documented formats, since no Windows host or systemd PID 1 is here to record them on.
 */
const fixtures = new URL("../fixtures/", import.meta.url);
const read = (name: string) => readFileSync(new URL(name, fixtures), "utf8");

/** The exit code each tool gives with each output. */
const EXIT_CODES: Record<string, number> = {
  "sc-exe/queryex-missing": 1060,
  "sc-exe/queryex-missing-localized": 1060,
  "sc-exe/start-file-not-found": 2,
  "sc-exe/stop-dependents-running": 1051,
  "systemctl/show-no-bus": 1,
  // Wine's sc.exe has no queryex: it prints nothing and exits 1639 (measured, see issue 17).
  "sc-exe/empty": 1639,
};
const output = (name: string) => (name === "sc-exe/empty" ? "" : read(`${name}.txt`));

/**
 * A scripted machine: each subcommand returns the next output of its sequence (the last one repeats), and every
 * call is recorded, so a test asserts what the driver ran, in order.
 */
function scripted(states: Record<string, string[]>): { run: CommandRunner; calls: string[] } {
  const calls: string[] = [];
  const cursors = new Map<string, number>();
  const run: CommandRunner = async (file, args) => {
    calls.push([file, ...args].join(" "));
    const key = file.startsWith("taskkill") ? "taskkill" : (args[0] as string);
    const sequence = states[key];
    if (!sequence) return { stdout: "", code: 0 };
    const index = cursors.get(key) ?? 0;
    cursors.set(key, index + 1);
    const name = sequence[Math.min(index, sequence.length - 1)] as string;
    return { stdout: output(name), code: EXIT_CODES[name] ?? 0 };
  };
  return { run, calls };
}

const sc = (name: string) => `sc-exe/${name}`;
const sd = (name: string) => `systemctl/${name}`;

type Outcome =
  | { outcome: "success"; evidence: string; escalated?: boolean; alreadyDone?: boolean }
  | { outcome: "failure"; reason: string; evidence: string };

async function outcomeOf(action: Promise<StopResult | StartResult | undefined>): Promise<Outcome> {
  try {
    const result = await action;
    if (result === undefined) return { outcome: "success", evidence: "already", alreadyDone: true };
    return {
      outcome: "success",
      evidence: result.evidence,
      ...("escalated" in result ? { escalated: result.escalated } : {}),
    };
  } catch (error) {
    if (!(error instanceof OutcomeError)) throw error;
    return { outcome: "failure", reason: error.reason, evidence: error.evidence };
  }
}

interface Row {
  name: string;
  driver: "systemd" | "windows";
  action: "stop" | "start";
  outputs: Record<string, string[]>;
  expect: Partial<Outcome> & { outcome: Outcome["outcome"] };
}

const stop = (q: string[], extra: Record<string, string[]> = {}) => ({
  queryex: q.map(sc),
  enumdepend: [sc("enumdepend-none")],
  ...extra,
});

/** Every driver × action × observed state. No row may succeed without evidence. */
const ROWS: Row[] = [
  // Windows service, stop
  {
    name: "running → STOP_PENDING → STOPPED",
    driver: "windows",
    action: "stop",
    outputs: stop(["queryex-running", "queryex-stop-pending", "queryex-stopped"]),
    expect: { outcome: "success", escalated: false, evidence: "STATE 1 (STOPPED)" },
  },
  {
    name: "already STOPPED",
    driver: "windows",
    action: "stop",
    outputs: stop(["queryex-stopped"]),
    expect: { outcome: "success", alreadyDone: true },
  },
  {
    name: "missing (1060)",
    driver: "windows",
    action: "stop",
    outputs: stop(["queryex-missing"]),
    expect: { outcome: "failure", reason: "not_found" },
  },
  {
    name: "missing (1060), message localised",
    driver: "windows",
    action: "stop",
    outputs: stop(["queryex-missing-localized"]),
    expect: { outcome: "failure", reason: "not_found" },
  },
  {
    name: "hung in STOP_PENDING, own process: killed, then STOPPED",
    driver: "windows",
    action: "stop",
    outputs: stop(["queryex-stop-pending", ...Array(40).fill("queryex-stop-pending"), "queryex-stopped"]),
    // sc.exe's adapter does not read recovery actions (their words are localised): said, never assumed absent.
    expect: {
      outcome: "success",
      escalated: true,
      evidence:
        "STATE 1 (STOPPED); recovery actions not readable (error 50 ERROR_NOT_SUPPORTED): the SCM may restart it",
    },
  },
  {
    name: "hung in STOP_PENDING, shared process: never killed",
    driver: "windows",
    action: "stop",
    outputs: stop(["queryex-share-running", "queryex-share-stop-pending"]),
    expect: { outcome: "failure", reason: "shared_process" },
  },
  {
    name: "START_PENDING: asked to stop, followed to STOPPED",
    driver: "windows",
    action: "stop",
    outputs: stop(["queryex-start-pending", "queryex-stop-pending", "queryex-stopped"]),
    expect: { outcome: "success", escalated: false },
  },
  {
    name: "PAUSED",
    driver: "windows",
    action: "stop",
    outputs: stop(["queryex-paused"]),
    expect: { outcome: "failure", reason: "unexpected_state", evidence: "STATE 7 (PAUSED) PID 4312" },
  },
  {
    name: "a state code not in winsvc.h",
    driver: "windows",
    action: "stop",
    outputs: stop(["queryex-state-unknown-code"]),
    expect: { outcome: "failure", reason: "unexpected_state" },
  },
  {
    name: "unparseable (Wine's sc.exe: nothing, exit 1639)",
    driver: "windows",
    action: "stop",
    outputs: stop(["empty"]),
    expect: { outcome: "failure", reason: "unexpected_state" },
  },
  {
    name: "running, localised state word: decided by the code",
    driver: "windows",
    action: "stop",
    outputs: stop(["queryex-running-localized", "queryex-stopped"]),
    expect: { outcome: "success", escalated: false },
  },
  {
    name: "dependents running",
    driver: "windows",
    action: "stop",
    outputs: stop(["queryex-running"], { enumdepend: [sc("enumdepend-running")] }),
    expect: { outcome: "failure", reason: "dependents_running" },
  },
  {
    name: "sc stop refused with 1051",
    driver: "windows",
    action: "stop",
    outputs: stop(["queryex-running"], { stop: [sc("stop-dependents-running")] }),
    expect: { outcome: "failure", reason: "dependents_running" },
  },
  {
    name: "stopped with a service-specific error after the stop",
    driver: "windows",
    action: "stop",
    outputs: stop(["queryex-running", "queryex-stopped-service-error"]),
    expect: { outcome: "success", escalated: false },
  },
  // Windows service, start
  {
    name: "STOPPED → START_PENDING → RUNNING",
    driver: "windows",
    action: "start",
    outputs: { queryex: ["queryex-stopped", "queryex-start-pending", "queryex-running"].map(sc) },
    expect: { outcome: "success", evidence: "STATE 4 (RUNNING) PID 4312" },
  },
  {
    name: "missing (1060)",
    driver: "windows",
    action: "start",
    outputs: { queryex: [sc("queryex-missing")] },
    expect: { outcome: "failure", reason: "not_found" },
  },
  {
    name: "binary missing: sc start FAILED 2",
    driver: "windows",
    action: "start",
    outputs: { queryex: [sc("queryex-stopped")], start: [sc("start-file-not-found")] },
    expect: { outcome: "failure", reason: "command_failed" },
  },
  {
    name: "dies while starting: STOPPED with its exit code",
    driver: "windows",
    action: "start",
    outputs: {
      queryex: ["queryex-stopped", "queryex-start-pending", "queryex-stopped-service-error"].map(sc),
    },
    expect: { outcome: "failure", reason: "exited" },
  },
  {
    name: "stuck in START_PENDING past the deadline",
    driver: "windows",
    action: "start",
    outputs: { queryex: ["queryex-stopped", "queryex-start-pending"].map(sc) },
    expect: { outcome: "failure", reason: "timeout" },
  },
  {
    name: "PAUSED",
    driver: "windows",
    action: "start",
    outputs: { queryex: [sc("queryex-paused")] },
    expect: { outcome: "failure", reason: "unexpected_state" },
  },
  {
    name: "unparseable",
    driver: "windows",
    action: "start",
    outputs: { queryex: [sc("empty")] },
    expect: { outcome: "failure", reason: "unexpected_state" },
  },
  // systemd, stop
  {
    name: "active → deactivating → inactive",
    driver: "systemd",
    action: "stop",
    outputs: { show: ["show-active", "show-deactivating", "show-inactive"].map(sd) },
    expect: { outcome: "success", escalated: false },
  },
  {
    name: "already inactive",
    driver: "systemd",
    action: "stop",
    outputs: { show: [sd("show-inactive")] },
    expect: { outcome: "success", alreadyDone: true },
  },
  {
    name: "unit not found (systemctl says inactive for it)",
    driver: "systemd",
    action: "stop",
    outputs: { show: [sd("show-not-found")] },
    expect: { outcome: "failure", reason: "not_found" },
  },
  {
    name: "deactivating past the grace: SIGKILL",
    driver: "systemd",
    action: "stop",
    outputs: {
      show: [sd("show-active"), ...Array(40).fill(sd("show-deactivating")), sd("show-inactive")],
    },
    expect: { outcome: "success", escalated: true },
  },
  {
    name: "maintenance (a state not understood)",
    driver: "systemd",
    action: "stop",
    outputs: { show: [sd("show-maintenance")] },
    expect: { outcome: "failure", reason: "unexpected_state" },
  },
  {
    name: "systemctl fails (no bus)",
    driver: "systemd",
    action: "stop",
    outputs: { show: [sd("show-no-bus")] },
    expect: { outcome: "failure", reason: "unexpected_state" },
  },
  // systemd, start
  {
    name: "inactive → activating → active",
    driver: "systemd",
    action: "start",
    outputs: { show: ["show-inactive", "show-activating", "show-active"].map(sd) },
    expect: { outcome: "success" },
  },
  {
    name: "unit not found",
    driver: "systemd",
    action: "start",
    outputs: { show: [sd("show-not-found")] },
    expect: { outcome: "failure", reason: "not_found" },
  },
  {
    name: "fails while activating",
    driver: "systemd",
    action: "start",
    outputs: { show: ["show-inactive", "show-activating", "show-failed"].map(sd) },
    expect: { outcome: "failure", reason: "exited" },
  },
  {
    name: "activating past the deadline",
    driver: "systemd",
    action: "start",
    outputs: { show: ["show-inactive", "show-activating"].map(sd) },
    expect: { outcome: "failure", reason: "timeout" },
  },
  {
    name: "maintenance",
    driver: "systemd",
    action: "start",
    outputs: { show: [sd("show-maintenance")] },
    expect: { outcome: "failure", reason: "unexpected_state" },
  },
  {
    name: "systemctl fails (no bus)",
    driver: "systemd",
    action: "start",
    outputs: { show: [sd("show-no-bus")] },
    expect: { outcome: "failure", reason: "unexpected_state" },
  },
];

describe("drivers × action × observed state (recorded tool outputs)", () => {
  for (const row of ROWS) {
    it(`${row.driver} ${row.action}: ${row.name} → ${row.expect.outcome}${"reason" in row.expect ? ` ${row.expect.reason}` : ""}`, async () => {
      const { run } = scripted(row.outputs);
      const driver =
        row.driver === "windows"
          ? new WindowsServiceDriver("LifelineDemo", run, 1)
          : new SystemdDriver("api.service", run, 1);
      const result = await outcomeOf(row.action === "stop" ? driver.stop(20) : driver.start({}, 50));
      expect(result).toMatchObject(row.expect);
      // Success always names its evidence; so does a failure.
      expect(result.evidence.length).toBeGreaterThan(0);
    });
  }
});

describe("what the drivers ran", () => {
  it("a graceful Windows stop: enumdepend, then sc stop; no taskkill", async () => {
    const { run, calls } = scripted(stop(["queryex-running", "queryex-stop-pending", "queryex-stopped"]));
    await new WindowsServiceDriver("LifelineDemo", run, 1).stop(5_000);
    expect(calls.filter((c) => !c.includes("queryex"))).toEqual([
      "sc.exe enumdepend LifelineDemo",
      "sc.exe stop LifelineDemo",
    ]);
  });

  it("an own-process service hung in STOP_PENDING: taskkill on its pid", async () => {
    const { run, calls } = scripted(
      stop(["queryex-running", ...Array(40).fill("queryex-stop-pending"), "queryex-stopped"]),
    );
    await new WindowsServiceDriver("LifelineDemo", run, 1).stop(20);
    expect(calls).toContain("taskkill.exe /PID 4312 /T /F");
  });

  it("a shared-process service is never killed: svchost's other services would die with it", async () => {
    const { run, calls } = scripted(stop(["queryex-share-running", "queryex-share-stop-pending"]));
    await expect(new WindowsServiceDriver("LifelineDemo", run, 1).stop(20)).rejects.toThrow("shared_process");
    expect(calls.some((c) => c.startsWith("taskkill"))).toBe(false);
  });

  it("running dependents: nothing is stopped, their names are the reason", async () => {
    const { run, calls } = scripted(stop(["queryex-running"], { enumdepend: [sc("enumdepend-running")] }));
    await expect(new WindowsServiceDriver("LifelineDemo", run, 1).stop(1_000)).rejects.toThrow(
      "dependent services still running: LifelineDemoWorker",
    );
    expect(calls.some((c) => c.startsWith("sc.exe stop"))).toBe(false);
  });

  it("systemd: a unit still deactivating after the grace is killed with SIGKILL", async () => {
    const { run, calls } = scripted({
      show: [sd("show-active"), ...Array(40).fill(sd("show-deactivating")), sd("show-inactive")],
    });
    await new SystemdDriver("api.service", run, 1).stop(20);
    expect(calls).toContain("systemctl kill --signal=SIGKILL api.service");
  });
});

describe("systemd: TRACEPARENT for one start", () => {
  const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const setup = (daemonReload = "") => {
    const runtimeDir = mkdtempSync(join(tmpdir(), "lifeline-systemd-"));
    const dropIn = join(runtimeDir, "api.service.d", "lifeline-trace.conf");
    const { run: scriptedRun, calls } = scripted({
      show: [sd("show-inactive"), sd("show-active")],
      ...(daemonReload ? { "daemon-reload": [sd(daemonReload)] } : {}),
    });
    const atStart: Array<string | undefined> = [];
    const run: CommandRunner = async (file, args) => {
      if (args[0] === "start") atStart.push(existsSync(dropIn) ? readFileSync(dropIn, "utf8") : undefined);
      return scriptedRun(file, args);
    };
    return { runtimeDir, dropIn, run, calls, atStart };
  };

  it("a runtime drop-in loaded for the start, removed after it, the process's environment read back", async () => {
    const { runtimeDir, dropIn, run, calls, atStart } = setup();
    const environOf = (pid: number) => (pid === 2211 ? `PATH=/usr/bin\0TRACEPARENT=${TP}\0` : "");
    const started = await new SystemdDriver("api.service", run, 1, { runtimeDir, environOf }).start(
      { TRACEPARENT: TP },
      50,
    );
    expect(atStart).toEqual([expect.stringContaining(`[Service]\nEnvironment=TRACEPARENT=${TP}\n`)]);
    expect(calls.filter((c) => !c.includes(" show "))).toEqual([
      "systemctl daemon-reload",
      "systemctl start --no-block api.service",
      "systemctl daemon-reload",
    ]);
    expect(existsSync(dropIn)).toBe(false);
    expect(started.traceContext).toBe("TRACEPARENT verified in /proc/2211/environ");
  });

  it("not in the process's environment: said, not claimed", async () => {
    const { runtimeDir, run } = setup();
    const started = await new SystemdDriver("api.service", run, 1, {
      runtimeDir,
      environOf: () => "PATH=/usr/bin\0",
    }).start({ TRACEPARENT: TP }, 50);
    expect(started.traceContext).toBe("TRACEPARENT in a runtime drop-in, but not in pid 2211's environment");
  });

  it("daemon-reload refused: the start goes on without it and says why; nothing left behind", async () => {
    const { runtimeDir, dropIn, run, calls, atStart } = setup("show-no-bus");
    const started = await new SystemdDriver("api.service", run, 1, { runtimeDir }).start(
      { TRACEPARENT: TP },
      50,
    );
    expect(atStart).toEqual([undefined]);
    expect(existsSync(dropIn)).toBe(false);
    expect(calls.filter((c) => c.includes("daemon-reload"))).toHaveLength(1);
    expect(started.traceContext).toMatch(/^TRACEPARENT not passed: systemctl daemon-reload exited 1: /);
  });

  it("the reload after removing it fails: said, since systemd still holds the old trace", async () => {
    const { runtimeDir, dropIn } = setup();
    const reloads = ["show-inactive", "show-no-bus"];
    const { run: base } = scripted({ show: [sd("show-inactive"), sd("show-active")] });
    const run: CommandRunner = async (file, args) =>
      args[0] === "daemon-reload"
        ? { stdout: output(sd(reloads.shift() as string)), code: reloads.length === 0 ? 1 : 0 }
        : base(file, args);
    const started = await new SystemdDriver("api.service", run, 1, {
      runtimeDir,
      environOf: () => `TRACEPARENT=${TP}\0`,
    }).start({ TRACEPARENT: TP }, 50);
    expect(existsSync(dropIn)).toBe(false);
    expect(started.traceContext).toMatch(
      /^TRACEPARENT verified in \/proc\/2211\/environ; drop-in removed, but systemctl daemon-reload exited 1 .*until its next reload$/,
    );
  });

  it("a start that fails still removes the drop-in", async () => {
    const { runtimeDir, dropIn } = setup();
    const { run } = scripted({ show: [sd("show-inactive"), sd("show-failed")] });
    await expect(
      new SystemdDriver("api.service", run, 1, { runtimeDir }).start({ TRACEPARENT: TP }, 50),
    ).rejects.toThrow();
    expect(existsSync(dropIn)).toBe(false);
  });

  it("a drop-in left by an agent that died mid-start is removed when the agent opens", async () => {
    const { runtimeDir, dropIn, run, calls } = setup();
    mkdirSync(join(runtimeDir, "api.service.d"), { recursive: true });
    writeFileSync(dropIn, `[Service]\nEnvironment=TRACEPARENT=${TP}\n`);
    const driver = new SystemdDriver("api.service", run, 1, { runtimeDir });
    expect(await driver.clearTraceContext()).toContain("left by a start the agent did not finish");
    expect(existsSync(dropIn)).toBe(false);
    expect(calls).toEqual(["systemctl daemon-reload"]);
    expect(await driver.clearTraceContext()).toBeUndefined();
  });
});

describe("parsing by numbers, not words", () => {
  it("sc.exe queryex: state code, pid, type bits, exit codes", () => {
    expect(parseQueryEx(read("sc-exe/queryex-running.txt"))).toMatchObject({
      status: "running",
      stateCode: 4,
      pid: 4312,
      serviceType: 0x10,
    });
    expect(parseQueryEx(read("sc-exe/queryex-running-localized.txt"))).toMatchObject({
      status: "running",
      stateCode: 4,
    });
    expect(parseQueryEx(read("sc-exe/queryex-stop-pending.txt"))).toMatchObject({
      status: "stopping",
      checkpoint: 1,
      waitHintMs: 30_000,
    });
    expect(parseQueryEx(read("sc-exe/queryex-stopped-service-error.txt"))).toMatchObject({
      status: "stopped",
      exitCode: 3,
    });
    expect(parseQueryEx(read("sc-exe/queryex-share-running.txt")).serviceType).toBe(0x20);
    expect(parseQueryEx(read("sc-exe/queryex-missing.txt"), 1060)).toMatchObject({
      status: "missing",
      evidence: expect.stringContaining("ERROR_SERVICE_DOES_NOT_EXIST"),
    });
    expect(parseQueryEx("", 1639)).toMatchObject({ status: "unknown" });
  });

  it("sc.exe enumdepend: dependents and their states", () => {
    expect(parseEnumDepend(read("sc-exe/enumdepend-none.txt"))).toEqual([]);
    expect(parseEnumDepend(read("sc-exe/enumdepend-running.txt"))).toEqual([
      { name: "LifelineDemoWorker", status: "running" },
    ]);
  });

  it("systemctl show: LoadState decides before ActiveState", () => {
    expect(parseShow(read("systemctl/show-active.txt"))).toMatchObject({ status: "running", mainPid: 2211 });
    expect(parseShow(read("systemctl/show-not-found.txt"))).toMatchObject({ status: "missing" });
    expect(parseShow(read("systemctl/show-failed.txt"))).toMatchObject({ status: "stopped", exitCode: 3 });
    expect(parseShow(read("systemctl/show-maintenance.txt"))).toMatchObject({ status: "unknown" });
    expect(parseShow(read("systemctl/show-no-bus.txt"), 1)).toMatchObject({
      status: "unknown",
      evidence: expect.stringContaining("System has not been booted with systemd"),
    });
  });
});

describe("how a stop ended (core/outcome.ts)", () => {
  it.each([
    [{ code: 0 }, "SIGTERM", false, "exited"],
    [{ signal: "SIGTERM" }, "SIGTERM", false, "exited"],
    [{ code: 143 }, "SIGTERM", false, "exited"],
    [{ code: 130 }, "SIGINT", false, "exited"],
    [{ code: 3 }, "SIGTERM", false, "exited_with_error"],
    [{ signal: "SIGSEGV" }, "SIGTERM", false, "exited_with_error"],
    [{ signal: "SIGKILL" }, "SIGTERM", true, "killed"],
    [undefined, "SIGTERM", false, "exit_unobserved"],
    [{ code: null, signal: null }, "SIGTERM", false, "exit_unobserved"],
  ] as const)("%j after %s (escalated %s) is %s", (exit, signal, escalated, ending) => {
    expect(stopEnding(exit, signal, escalated)).toBe(ending);
  });
});
