import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type ExitObserved, OutcomeError } from "../../core/outcome.ts";
import { isPortOpen, waitUntil } from "../../core/poll.ts";
import type { ServiceConfig } from "../config.ts";
import type { ServiceDriver, ServiceState, StartResult, StopResult } from "./driver.ts";
import { lastLines } from "./process.ts";
import { type Win32Result, win32Worker } from "./win32-worker.ts";
import { win32Failure } from "./windows-service.ts";

/** Windows' exit status of a console program ended by its default CTRL_C handler. */
export const STATUS_CONTROL_C_EXIT = 0xc000013a;
/** The exit code the job's processes get when the agent terminates the job. */
export const TERMINATED_EXIT_CODE = 1;

/** What the process driver needs from Windows (process-win32-worker.ts and ctrl-break.ts on a real host). */
export interface ProcessPort {
  /** CreateProcessW, suspended, into the named job (created if new), then resumed. */
  spawn(request: {
    commandLine: string;
    cwd?: string;
    environment: Uint8Array;
    logPath: string;
    job: string;
  }): Promise<Win32Result & { pid?: number; createdAt?: string }>;
  /** The job's live process ids; exists: false when no job has that name. */
  job(name: string): Promise<Win32Result & { exists?: boolean; pids?: number[] }>;
  /** A process's creation time and, once it ended, its exit code. */
  process(pid: number): Promise<Win32Result & { alive?: boolean; createdAt?: string; exitCode?: number }>;
  /** CTRL_C_EVENT to every process attached to the console of live process `pid`. */
  ctrlC(pid: number): Promise<Win32Result>;
  terminateJob(name: string, exitCode: number): Promise<Win32Result>;
  /** Lets go of a child whose exit was read. */
  release(pid: number): Promise<Win32Result>;
}

/** The real port: a koffi worker for the Win32 calls, a console-less helper process (ctrl-c.ts) for CTRL_C. */
export function win32Processes(): ProcessPort {
  const call = win32Worker<Win32Result & Record<string, unknown>>("process-win32-worker");
  const helper = new URL(import.meta.url.endsWith(".ts") ? "./ctrl-c.ts" : "./ctrl-c.js", import.meta.url);
  return {
    spawn: (request) => call("spawn", request) as ReturnType<ProcessPort["spawn"]>,
    job: (name) => call("job", { job: name }) as ReturnType<ProcessPort["job"]>,
    process: (pid) => call("process", { pid }) as ReturnType<ProcessPort["process"]>,
    terminateJob: (name, code) => call("terminateJob", { job: name, code }),
    release: (pid) => call("release", { pid }),
    ctrlC: (pid) =>
      new Promise((settle) => {
        // Its own process, so that attaching to the service's console never touches the agent's. Not detached:
        // it keeps the agent's process group, as the services do (Wine delivers CTRL_C to the caller's group;
        // Windows to the whole console).
        const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(helper), String(pid)], {
          windowsHide: true,
          stdio: ["ignore", "pipe", "pipe"],
        });
        let output = "";
        child.stdout.on("data", (chunk) => (output += chunk));
        child.stderr.on("data", (chunk) => (output += chunk));
        child.once("error", (error) => settle({ error: -1, raw: `ctrl-c helper: ${error.message}` }));
        child.once("close", (code) =>
          settle({ error: code ?? -1, raw: output.trim() || `ctrl-c helper exit ${code}` }),
        );
      }),
  };
}

/** One command line from an argument list, quoted as CommandLineToArgvW and the C runtime read it back. */
export function windowsCommandLine(args: readonly string[]): string {
  return args
    .map((arg) => {
      if (arg !== "" && !/[\s"]/.test(arg)) return arg;
      let quoted = '"';
      let backslashes = 0;
      for (const char of arg) {
        if (char === "\\") {
          backslashes++;
          continue;
        }
        // Backslashes before a quote are doubled, and the quote escaped; elsewhere they are literal.
        quoted +=
          char === '"' ? `${"\\".repeat(backslashes * 2 + 1)}"` : `${"\\".repeat(backslashes)}${char}`;
        backslashes = 0;
      }
      return `${quoted}${"\\".repeat(backslashes * 2)}"`;
    })
    .join(" ");
}

/** A Unicode environment block: "K=V\0" per variable, names unique without regard to case, sorted, then "\0". */
export function environmentBlock(...layers: Array<Record<string, string | undefined>>): Uint8Array {
  const byName = new Map<string, [string, string]>();
  for (const layer of layers)
    for (const [name, value] of Object.entries(layer))
      if (value !== undefined) byName.set(name.toUpperCase(), [name, value]);
  const entries = [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(`${entries.map(([, [name, value]]) => `${name}=${value}\0`).join("")}\0`, "utf16le");
}

interface PidFile {
  pid: number;
  /** The process's creation time (FILETIME): a reused pid has another one. */
  createdAt: string;
  startedAt: string;
  job: string;
}

/**
 * Services the agent starts itself on Windows. Each runs in a named job object (its whole tree: nothing it starts
 * can leave it) with a console of its own (no window). A graceful stop is CTRL_C_EVENT to that console, which
 * Go (os.Interrupt), Node (SIGINT), Java (shutdown hooks) and .NET console programs handle (ctrl-c.ts says why not
 * CTRL_BREAK); the escalation terminates the job; the stop is verified by the job having no live process. A pid
 * file with the process's creation time and the job's name lets a restarted agent find the service again.
 */
export class WindowsProcessDriver implements ServiceDriver {
  private readonly service: ServiceConfig;
  private readonly port: ProcessPort;
  private readonly pollMs: number;
  private readonly pidPath: string;
  private readonly logPath: string;
  readonly job: string;
  readonly stopSignal = "CTRL_C_EVENT";
  readonly stopControl = "CTRL_C_EVENT to the service's console";
  readonly killControl = "TerminateJobObject";
  /** The process this agent started (its handle is held: its exit code stays readable). */
  private child: number | undefined;

  /** How long the job may take to empty after TerminateJobObject. */
  private readonly killWaitMs: number;

  constructor(
    service: ServiceConfig,
    stateDir: string,
    port: ProcessPort = win32Processes(),
    pollMs = 100,
    killWaitMs = 10_000,
  ) {
    this.service = service;
    this.killWaitMs = killWaitMs;
    this.port = port;
    this.pollMs = pollMs;
    this.pidPath = join(stateDir, "run", `${service.name}.pid`);
    this.logPath = service.logFile ?? join(stateDir, "logs", `${service.name}.log`);
    // One job per service and agent state folder: two agents on one host never share one.
    const folder = createHash("sha256").update(resolve(stateDir)).digest("hex").slice(0, 8);
    this.job = `lifeline-${service.name}-${folder}`;
  }

  async state(): Promise<ServiceState> {
    const job = await this.port.job(this.job);
    if (job.error !== 0) {
      const evidence = `${job.raw}: error ${job.error}`;
      return { running: false, status: "unknown", evidence };
    }
    const pids = job.pids ?? [];
    const saved = this.readPidFile();
    if (pids.length === 0)
      return {
        running: false,
        status: "stopped",
        evidence: job.exists
          ? `job ${this.job} has no live process`
          : `no job ${this.job}: nothing of it runs`,
      };
    const main = saved && pids.includes(saved.pid) ? await this.port.process(saved.pid) : undefined;
    const mainAlive = main?.alive === true && main.createdAt === saved?.createdAt;
    const pid = mainAlive && saved ? saved.pid : (pids[0] as number);
    return {
      running: true,
      status: "running",
      pid,
      evidence: mainAlive
        ? `job ${this.job}: live pids ${pids.join(", ")}; main pid ${pid} created ${saved?.createdAt} as recorded`
        : `job ${this.job}: live pids ${pids.join(", ")}; its main process${saved ? ` (pid ${saved.pid})` : ""} is gone`,
    };
  }

  async start(extraEnv: Record<string, string>): Promise<StartResult> {
    mkdirSync(dirname(this.logPath), { recursive: true });
    mkdirSync(dirname(this.pidPath), { recursive: true });
    const commandLine = windowsCommandLine(this.service.command ?? []);
    const result = await this.port.spawn({
      commandLine,
      ...(this.service.cwd ? { cwd: this.service.cwd } : {}),
      environment: environmentBlock(process.env, this.service.env ?? {}, extraEnv),
      logPath: this.logPath,
      job: this.job,
    });
    if (result.error !== 0 || result.pid === undefined)
      throw win32Failure(`starting ${commandLine}`, result.error, result.raw);
    if (this.child !== undefined) await this.port.release(this.child);
    this.child = result.pid;
    writeFileSync(
      this.pidPath,
      JSON.stringify({
        pid: result.pid,
        createdAt: result.createdAt ?? "unknown",
        startedAt: new Date().toISOString(),
        job: this.job,
      } satisfies PidFile),
    );
    return {
      pid: result.pid,
      evidence: result.raw,
      ...(extraEnv.TRACEPARENT
        ? { traceContext: `TRACEPARENT in the environment block pid ${result.pid} was created with` }
        : {}),
    };
  }

  /** How the process this agent started ended (undefined while it runs, or when another agent started it). */
  async exited(): Promise<ExitObserved | undefined> {
    if (this.child === undefined) return undefined;
    const info = await this.port.process(this.child);
    return info.error === 0 && info.alive === false && info.exitCode !== undefined
      ? { code: info.exitCode, signal: null }
      : undefined;
  }

  lastOutput(lines: number): string[] {
    return lastLines(this.logPath, lines);
  }

  async stop(gracePeriodMs: number): Promise<StopResult | undefined> {
    const state = await this.state();
    if (state.status === "unknown")
      throw new OutcomeError("unexpected_state", state.evidence, state.evidence);
    if (!state.running || state.pid === undefined) return undefined;
    const main = state.pid;
    const signalSentAt = Date.now();
    const sent = await this.port.ctrlC(main);
    const steps = [sent.error === 0 ? sent.raw : `CTRL_C_EVENT not sent (${sent.raw}, error ${sent.error})`];
    let escalated = false;
    // Without a delivered CTRL_C there is nothing to wait for.
    if (sent.error !== 0 || !(await this.jobEmpties(gracePeriodMs))) {
      escalated = true;
      const killed = await this.port.terminateJob(this.job, TERMINATED_EXIT_CODE);
      steps.push(killed.error === 0 ? killed.raw : `${killed.raw} failed with error ${killed.error}`);
      if (!(await this.jobEmpties(this.killWaitMs))) {
        const left = await this.port.job(this.job);
        throw new OutcomeError(
          "still_running",
          `job ${this.job} still has live processes after TerminateJobObject`,
          `${steps.join("; ")}; live pids ${(left.pids ?? []).join(", ") || "unknown"} (${left.raw})`,
        );
      }
    }
    const exitedAt = Date.now();
    const port = this.service.port;
    if (port !== undefined && !(await poll(async () => !(await isPortOpen(port)), 5_000, this.pollMs)))
      throw new OutcomeError(
        "still_running",
        `port ${port} still open after the job emptied`,
        `connect to 127.0.0.1:${port} succeeds`,
      );
    rmSync(this.pidPath, { force: true });
    const exit = this.child === main ? await this.exited() : undefined;
    if (this.child === main) {
      await this.port.release(main);
      this.child = undefined;
    }
    return {
      escalated,
      signalSentAt,
      exitedAt,
      pid: main,
      ...(exit ? { exit } : {}),
      evidence: `${steps.join("; ")}; job ${this.job} has no live process${port !== undefined ? `, port ${port} closed` : ""}`,
    };
  }

  private async jobEmpties(timeoutMs: number): Promise<boolean> {
    return poll(
      async () => {
        const job = await this.port.job(this.job);
        return job.error === 0 && (job.pids ?? []).length === 0;
      },
      timeoutMs,
      this.pollMs,
    );
  }

  private readPidFile(): PidFile | undefined {
    try {
      return JSON.parse(readFileSync(this.pidPath, "utf8")) as PidFile;
    } catch {
      return undefined;
    }
  }
}

async function poll(check: () => Promise<boolean>, timeoutMs: number, intervalMs: number): Promise<boolean> {
  return (
    (await waitUntil(async () => ((await check()) ? true : undefined), { timeoutMs, intervalMs })) ?? false
  );
}
