import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { serviceSchema } from "../../agent/config.ts";
import {
  environmentBlock,
  type ProcessPort,
  STATUS_CONTROL_C_EXIT,
  WindowsProcessDriver,
  windowsCommandLine,
} from "../../agent/drivers/windows-process.ts";
import { OutcomeError, stopEnding } from "../../core/outcome.ts";

/**
 * The Windows process driver's decisions over its port, fed what the Win32 calls return. The same driver runs
 * against Wine's real job objects, consoles and processes in test/integration/windows.test.ts; this covers what
 * the bed cannot make happen on demand (a failed CTRL_C, a job that will not empty, an unreadable job).
 */
interface Script {
  /** The job's live pids; a number: the Win32 error every job query fails with. */
  pids: number[] | number;
  /** The tree exits on CTRL_C (the job empties). */
  exitsOnCtrlC?: boolean;
  spawnError?: number;
  ctrlC?: number;
  /** TerminateJobObject's error; without one the job empties. */
  terminate?: number;
  exitCode?: number;
}

function port(script: Script) {
  const calls: string[] = [];
  let live = script.pids;
  const fake: ProcessPort = {
    async spawn(request) {
      calls.push(`spawn ${request.commandLine} into ${request.job}`);
      return script.spawnError
        ? { error: script.spawnError, raw: `CreateProcessW(${request.commandLine})` }
        : { error: 0, raw: "CreateProcessW: pid 700", pid: 700, createdAt: "133" };
    },
    async job(name) {
      return typeof live === "number"
        ? { error: live, raw: `QueryInformationJobObject(${name})` }
        : { error: 0, raw: "QueryInformationJobObject", exists: true, pids: live };
    },
    async process(pid) {
      return Array.isArray(live) && live.includes(pid)
        ? { error: 0, raw: "259", alive: true, createdAt: "133" }
        : { error: 0, raw: "exit", alive: false, createdAt: "133", exitCode: script.exitCode ?? 0 };
    },
    async ctrlC(pid) {
      calls.push(`ctrlC ${pid}`);
      if (script.exitsOnCtrlC && !script.ctrlC) live = [];
      return { error: script.ctrlC ?? 0, raw: script.ctrlC ? `AttachConsole(${pid}) failed` : "sent" };
    },
    async terminateJob(name, code) {
      calls.push(`terminate ${code}`);
      if (!script.terminate) live = [];
      return { error: script.terminate ?? 0, raw: `TerminateJobObject(${name}, ${code})` };
    },
    async release(pid) {
      calls.push(`release ${pid}`);
      return { error: 0, raw: "" };
    },
  };
  return { fake, calls };
}

const service = serviceSchema.parse({
  name: "api",
  command: ["C:\\Program Files\\Api\\api.exe", "--port", "80"],
});
const driver = (script: Script) => {
  const { fake, calls } = port(script);
  const dir = mkdtempSync(join(tmpdir(), "lifeline-winproc-"));
  return { driver: new WindowsProcessDriver(service, dir, fake, 1, 50), calls, dir };
};

describe("Windows process driver", () => {
  it("state: no live process in its job is stopped, live ones are running, an unreadable job is unknown", async () => {
    expect(await driver({ pids: [] }).driver.state()).toMatchObject({
      status: "stopped",
      evidence: expect.stringMatching(/has no live process/),
    });
    expect(await driver({ pids: [12, 13] }).driver.state()).toMatchObject({
      status: "running",
      pid: 12,
      evidence: expect.stringMatching(/live pids 12, 13/),
    });
    const unreadable = driver({ pids: 5 }).driver;
    expect(await unreadable.state()).toMatchObject({
      status: "unknown",
      evidence: `QueryInformationJobObject(${unreadable.job}): error 5`,
    });
  });

  it("start: the command line quoted for Windows, into the service's job, pid and creation time recorded", async () => {
    const { driver: d, calls, dir } = driver({ pids: [700] });
    expect(await d.start({ TRACEPARENT: "00-1-2-01" })).toEqual({
      pid: 700,
      evidence: "CreateProcessW: pid 700",
      traceContext: "TRACEPARENT in the environment block pid 700 was created with",
    });
    expect(calls[0]).toBe(`spawn "C:\\Program Files\\Api\\api.exe" --port 80 into ${d.job}`);
    expect(JSON.parse(readFileSync(join(dir, "run", "api.pid"), "utf8"))).toMatchObject({
      pid: 700,
      createdAt: "133",
      job: d.job,
    });
    expect(await d.state()).toMatchObject({
      status: "running",
      evidence: expect.stringMatching(/as recorded/),
    });
  });

  it("start: a failed CreateProcessW is the Win32 error by name, never a pid", async () => {
    const { driver: d } = driver({ pids: [], spawnError: 2 });
    const error = await d.start({}).catch((e) => e);
    expect(error).toBeInstanceOf(OutcomeError);
    expect(error).toMatchObject({
      reason: "command_failed",
      message: expect.stringMatching(/2 ERROR_FILE_NOT_FOUND/),
    });
  });

  it("stop: CTRL_C, the job empties within the grace period, the exit code of its own child observed", async () => {
    const { driver: d, calls } = driver({ pids: [700], exitsOnCtrlC: true, exitCode: STATUS_CONTROL_C_EXIT });
    await d.start({});
    expect(await d.stop(1_000)).toMatchObject({
      escalated: false,
      pid: 700,
      exit: { code: STATUS_CONTROL_C_EXIT },
      evidence: expect.stringMatching(/^sent; job .* has no live process$/),
    });
    expect(calls.slice(1)).toEqual(["ctrlC 700", "release 700"]);
    // Another agent's (or a restarted one's) process: its exit is not observable, and not invented.
    const { driver: other } = driver({ pids: [700], exitsOnCtrlC: true });
    expect((await other.stop(1_000))?.exit).toBeUndefined();
  });

  it("stop: a job still alive after the grace period is terminated, then verified empty", async () => {
    const { driver: d, calls } = driver({ pids: [700, 701] });
    const result = await d.stop(30);
    expect(result).toMatchObject({ escalated: true, evidence: expect.stringMatching(/TerminateJobObject/) });
    expect(calls).toEqual(["ctrlC 700", "terminate 1"]);
  });

  it("stop: a CTRL_C that could not be sent escalates at once, and says so", async () => {
    const { driver: d, calls } = driver({ pids: [700], ctrlC: 6 });
    const result = await d.stop(60_000);
    expect(result).toMatchObject({
      escalated: true,
      evidence: expect.stringMatching(/^CTRL_C_EVENT not sent \(AttachConsole\(700\) failed, error 6\)/),
    });
    expect(calls).toEqual(["ctrlC 700", "terminate 1"]);
  });

  it("stop: a job that never empties is still_running with the live pids, never stopped", async () => {
    const { driver: d } = driver({ pids: [700, 701], terminate: 5 });
    const error = await d.stop(1).catch((e) => e);
    expect(error).toBeInstanceOf(OutcomeError);
    expect(error.reason).toBe("still_running");
    expect(error.evidence).toMatch(/TerminateJobObject\(.*\) failed with error 5; live pids 700, 701/);
  });

  it("stop of an unreadable job fails as unexpected_state; of an empty one is already stopped", async () => {
    await expect(driver({ pids: 6 }).driver.stop(10)).rejects.toThrow(/unexpected_state/);
    expect(await driver({ pids: [] }).driver.stop(10)).toBeUndefined();
  });
});

describe("Windows command lines and environment blocks", () => {
  it("quotes arguments as CommandLineToArgvW reads them back", () => {
    expect(windowsCommandLine(["C:\\bin\\svc.exe", "plain", "two words", ""])).toBe(
      'C:\\bin\\svc.exe plain "two words" ""',
    );
    // Backslashes are literal except before a quote; a trailing backslash inside quotes is doubled.
    expect(windowsCommandLine(['say "hi"', "C:\\dir with space\\", "a\\\\b"])).toBe(
      '"say \\"hi\\"" "C:\\dir with space\\\\" a\\\\b',
    );
  });

  it("an environment block has each name once without regard to case (later layers win), sorted, double-NUL ended", () => {
    const block = Buffer.from(
      environmentBlock({ Path: "C:\\a", B: "1" }, { PATH: "C:\\b" }, { A: "x" }),
    ).toString("utf16le");
    expect(block).toBe("A=x\0B=1\0PATH=C:\\b\0\0");
  });

  it("a console program ended by its default CTRL_C handler exited as asked; by anything else it did not", () => {
    expect(stopEnding({ code: STATUS_CONTROL_C_EXIT }, "CTRL_C_EVENT", false)).toBe("exited");
    expect(stopEnding({ code: 0 }, "CTRL_C_EVENT", false)).toBe("exited");
    expect(stopEnding({ code: 3 }, "CTRL_C_EVENT", false)).toBe("exited_with_error");
    expect(stopEnding({ code: STATUS_CONTROL_C_EXIT }, "SIGTERM", false)).toBe("exited_with_error");
    expect(stopEnding({ code: 1 }, "CTRL_C_EVENT", true)).toBe("killed");
  });
});
