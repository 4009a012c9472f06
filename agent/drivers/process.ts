import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type ExitObserved, OutcomeError } from "../../core/outcome.ts";
import { isPortOpen, waitUntil } from "../../core/poll.ts";
import type { ServiceConfig } from "../config.ts";
import type { ServiceDriver, ServiceState, StartResult, StopResult } from "./driver.ts";

interface PidFile {
  pid: number;
  /** /proc start time of the process: a reused pid has another one. */
  startTime: string;
  startedAt: string;
}

/**
 * Services the agent spawns itself on Linux and other POSIX systems (windows-process.ts on Windows), each in its
 * own process group (detached), so a stop reaches the whole tree.
 * A pid file with the process's start time lets a restarted agent re-adopt running services safely.
 */
export class ProcessDriver implements ServiceDriver {
  private readonly service: ServiceConfig;
  private readonly pidPath: string;
  private readonly logPath: string;
  private exit: ExitObserved | undefined;
  /** Resolves when the child this agent spawned exits: only a parent can see its exit code. */
  private exitSeen: Promise<ExitObserved> | undefined;
  private child: ChildProcess | undefined;
  readonly stopSignal: string;
  readonly stopControl: string;
  readonly killControl = "SIGKILL";

  constructor(service: ServiceConfig, stateDir: string) {
    this.service = service;
    this.stopSignal = service.stopSignal;
    this.stopControl = `${service.stopSignal} to process group`;
    this.pidPath = join(stateDir, "run", `${service.name}.pid`);
    this.logPath = service.logFile ?? join(stateDir, "logs", `${service.name}.log`);
  }

  state(): ServiceState {
    const saved = this.readPidFile();
    if (!saved)
      return { running: false, status: "stopped", evidence: "no pid file: not started by this agent" };
    const startTime = processStartTime(saved.pid);
    if (startTime !== undefined && startTime === saved.startTime)
      return {
        running: true,
        status: "running",
        pid: saved.pid,
        evidence: `pid ${saved.pid} alive, start time ${startTime} as recorded`,
      };
    return {
      running: false,
      status: "stopped",
      evidence:
        startTime === undefined
          ? `pid ${saved.pid} not alive`
          : `pid ${saved.pid} is another process now (start time ${startTime}, recorded ${saved.startTime})`,
    };
  }

  /** Spawns the service; resolves with its pid. `exited()` tells whether it died since. */
  start(extraEnv: Record<string, string>): StartResult {
    mkdirSync(dirname(this.logPath), { recursive: true });
    mkdirSync(dirname(this.pidPath), { recursive: true });
    const out = openSync(this.logPath, "a");
    const [file, ...args] = (this.service.command ?? []) as [string, ...string[]];
    const child = spawn(file, args, {
      cwd: this.service.cwd,
      env: { ...process.env, ...this.service.env, ...extraEnv },
      detached: true,
      stdio: ["ignore", out, out],
    });
    closeSync(out);
    if (child.pid === undefined) {
      child.on("error", () => {}); // reported here, with the reason, instead
      throw new OutcomeError("command_failed", `could not start ${file}`, `spawn ${file} gave no pid`);
    }
    this.exit = undefined;
    this.child = child;
    this.exitSeen = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        const exit = { code, signal };
        // The previous child's exit can arrive after a quick restart: it must not be taken for this one's.
        if (this.child === child) this.exit = exit;
        resolve(exit);
      });
    });
    child.unref();
    const startTime = processStartTime(child.pid) ?? "unknown";
    writeFileSync(
      this.pidPath,
      JSON.stringify({ pid: child.pid, startTime, startedAt: new Date().toISOString() } satisfies PidFile),
    );
    return {
      pid: child.pid,
      evidence: `spawned pid ${child.pid}`,
      ...(extraEnv.TRACEPARENT
        ? { traceContext: `TRACEPARENT in the environment pid ${child.pid} was spawned with` }
        : {}),
    };
  }

  /** How the process we started exited (undefined while it runs, or if this agent did not start it). */
  exited(): ExitObserved | undefined {
    return this.exit;
  }

  awaitExit(timeoutMs: number): Promise<ExitObserved | undefined> {
    if (this.exit || !this.exitSeen) return Promise.resolve(this.exit);
    return Promise.race([
      this.exitSeen,
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), timeoutMs)),
    ]).then(() => this.exit);
  }

  /** The last lines of the service's log file (its stdout and stderr). */
  lastOutput(lines: number): string[] {
    return lastLines(this.logPath, lines);
  }

  /** Signal the group, wait up to the grace period, escalate to SIGKILL, then verify it is really down. */
  async stop(gracePeriodMs: number): Promise<StopResult | undefined> {
    const state = this.state();
    if (!state.running || state.pid === undefined) return undefined;
    const pid = state.pid;
    const signalSentAt = Date.now();
    signalGroup(pid, this.service.stopSignal);
    let escalated = false;
    if (!(await waitFor(() => !groupAlive(pid), gracePeriodMs))) {
      escalated = true;
      signalGroup(pid, "SIGKILL");
      await waitFor(() => !groupAlive(pid), 10_000);
    }
    const exitedAt = Date.now();
    if (groupAlive(pid))
      throw new OutcomeError(
        "still_running",
        `process group ${pid} still alive after SIGKILL`,
        `kill(-${pid}, 0) succeeds`,
      );
    if (
      this.service.port !== undefined &&
      !(await waitFor(async () => !(await isPortOpen(this.service.port as number)), 5_000))
    ) {
      throw new OutcomeError(
        "still_running",
        `port ${this.service.port} still open after the process exited`,
        `connect to 127.0.0.1:${this.service.port} succeeds`,
      );
    }
    rmSync(this.pidPath, { force: true });
    // Our own child: its exit code is observed (the event may trail the group's end by a moment).
    const exit =
      this.child?.pid === pid && this.exitSeen
        ? await Promise.race([
            this.exitSeen,
            new Promise<undefined>((r) => setTimeout(() => r(undefined), 2_000)),
          ])
        : undefined;
    return {
      escalated,
      signalSentAt,
      exitedAt,
      pid,
      ...(exit ? { exit } : {}),
      evidence: `process group ${pid} gone${this.service.port !== undefined ? `, port ${this.service.port} closed` : ""}`,
    };
  }

  private readPidFile(): PidFile | undefined {
    try {
      return JSON.parse(readFileSync(this.pidPath, "utf8")) as PidFile;
    } catch {
      return undefined;
    }
  }
}

/** The last lines of a service's log file (its stdout and stderr), without Windows' CR. */
export function lastLines(path: string, lines: number): string[] {
  try {
    const text = readFileSync(path, "utf8");
    return text
      .slice(-16_384)
      .split("\n")
      .map((line) => line.replace(/\r$/, ""))
      .filter(Boolean)
      .slice(-lines);
  } catch {
    return [];
  }
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") return undefined; // a zombie is not running
    return fields[19];
  } catch {
    return undefined;
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** True while any process of the group is alive (zombies excepted: they are gone, just not reaped). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  // kill(0) succeeds for zombies too; look for a live member.
  for (const entry of safeReaddir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid && fields[0] !== "Z") return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Polls a condition every 50 ms until it holds or the time is up. */
async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  return (
    (await waitUntil(async () => ((await check()) ? true : undefined), { timeoutMs, intervalMs: 50 })) ??
    false
  );
}
