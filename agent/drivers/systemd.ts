import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import {
  afterStart,
  afterStop,
  beforeStart,
  beforeStop,
  type ExitObserved,
  failWith,
  type Observation,
  type ObservedStatus,
  OutcomeError,
} from "../../core/outcome.ts";
import type { CommandRunner, ServiceDriver, ServiceState, StartResult, StopResult } from "./driver.ts";
import { runCommand, settle } from "./run-command.ts";

export interface UnitStatus extends Observation {
  loadState: string;
  activeState: string;
  subState: string;
  mainPid: number;
  /** CLD_EXITED (1), CLD_KILLED (2), CLD_DUMPED (3), or 0 when the main process has not exited. */
  execMainCode: number;
  execMainStatus: number;
}

const PROPERTIES = "LoadState,ActiveState,SubState,MainPID,ExecMainCode,ExecMainStatus,Result";

/** systemd's ActiveState values, by what they mean for an action; anything else is `unknown`. */
const ACTIVE_STATES: Record<string, ObservedStatus> = {
  active: "running",
  reloading: "running",
  refreshing: "running",
  inactive: "stopped",
  failed: "stopped",
  activating: "starting",
  deactivating: "stopping",
};

const signalName = (n: number) =>
  Object.entries(constants.signals).find(([, value]) => value === n)?.[0] ?? `signal ${n}`;

/**
 * Parses `systemctl show --property=...` output (key=value lines) with systemctl's exit code. A unit systemd does
 * not know is `missing` (LoadState=not-found: systemctl still prints ActiveState=inactive for it, which must not
 * read as stopped); a state not in ACTIVE_STATES or a failed systemctl is `unknown` with the raw text.
 */
export function parseShow(stdout: string, code = 0): UnitStatus {
  const values = new Map(
    stdout
      .split(/\r?\n/)
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1).trim()] as const),
  );
  const loadState = values.get("LoadState") ?? "";
  const activeState = values.get("ActiveState") ?? "";
  const subState = values.get("SubState") ?? "";
  const execMainCode = Number(values.get("ExecMainCode") ?? 0);
  const execMainStatus = Number(values.get("ExecMainStatus") ?? 0);
  const raw = [...values].map(([k, v]) => `${k}=${v}`).join(" ");
  let status: ObservedStatus = ACTIVE_STATES[activeState] ?? "unknown";
  if (code !== 0 || !activeState) status = "unknown";
  else if (loadState === "not-found") status = "missing";
  else if (loadState !== "loaded") status = "unknown";
  const exit: number | undefined = status === "stopped" && execMainCode === 1 ? execMainStatus : undefined;
  return {
    status,
    evidence: code !== 0 ? `systemctl show exit ${code}: ${stdout.replace(/\s+/g, " ").trim()}` : raw,
    loadState,
    activeState,
    subState,
    mainPid: Number(values.get("MainPID") ?? 0),
    execMainCode,
    execMainStatus,
    ...(exit !== undefined ? { exitCode: exit } : {}),
  };
}

/** How the unit's main process ended, from ExecMainCode and ExecMainStatus. */
export function exitOf(status: UnitStatus): ExitObserved | undefined {
  if (status.execMainCode === 1) return { code: status.execMainStatus };
  if (status.execMainCode === 2 || status.execMainCode === 3)
    return { signal: signalName(status.execMainStatus) };
  return undefined;
}

/**
 * A systemd unit. systemd runs its own stop sequence (KillSignal, TimeoutStopSec, SIGKILL); the agent asks for
 * a stop, polls `systemctl show` through deactivating, and escalates with `systemctl kill --signal=SIGKILL` if the
 * unit is still not down after the agent's grace period. Decisions come from core/outcome.ts on the parsed state.
 */
export class SystemdDriver implements ServiceDriver {
  private readonly unit: string;
  private readonly run: CommandRunner;
  private readonly periodMs: number;
  readonly stopSignal = "systemctl stop";
  readonly stopControl: string;
  readonly killControl = "systemctl kill --signal=SIGKILL";

  private readonly runtimeDir: string;
  private readonly environOf: (pid: number) => string;

  /**
   * `runtimeDir` is where runtime drop-ins go (systemd reads /run/systemd/system before /etc; gone at reboot);
   * `environOf` reads a process's environment (/proc/PID/environ): both injected for tests.
   */
  constructor(
    unit: string,
    run: CommandRunner = runCommand,
    periodMs = 250,
    options: { runtimeDir?: string; environOf?: (pid: number) => string } = {},
  ) {
    this.unit = unit;
    this.stopControl = `systemctl stop ${unit}`;
    this.run = run;
    this.periodMs = periodMs;
    this.runtimeDir = options.runtimeDir ?? "/run/systemd/system";
    this.environOf = options.environOf ?? ((pid) => readFileSync(`/proc/${pid}/environ`, "latin1"));
  }

  async show(): Promise<UnitStatus> {
    const { stdout, code } = await this.run("systemctl", ["show", this.unit, `--property=${PROPERTIES}`]);
    return parseShow(stdout, code);
  }

  async state(): Promise<ServiceState> {
    const status = await this.show();
    return {
      ...status,
      running: status.status === "running",
      ...(status.mainPid > 0 ? { pid: status.mainPid } : {}),
      detail: status.activeState ? `${status.activeState} (${status.subState})` : status.status,
    };
  }

  async start(env: Record<string, string>, timeoutMs = 30_000): Promise<StartResult> {
    const before = await settle(() => this.show(), beforeStart, timeoutMs, this.periodMs);
    if (before.step.kind === "fail") failWith(before.step, before.observation);
    if (before.step.kind !== "act") return this.awaitStarted(timeoutMs);
    const dropIn = env.TRACEPARENT ? await this.writeTraceDropIn(env.TRACEPARENT) : undefined;
    // Removed once systemd has spawned the unit (or failed to): its own later restarts are not this command.
    const removeDropIn = async () => (dropIn?.written ? this.removeTraceDropIn(dropIn.path) : undefined);
    let started: StartResult;
    try {
      const { stdout, code } = await this.run("systemctl", ["start", "--no-block", this.unit]);
      if (code !== 0) {
        throw new OutcomeError(
          code === 5 ? "not_found" : "command_failed",
          `systemctl start exited ${code}`,
          stdout.replace(/\s+/g, " ").trim() || `exit ${code}`,
        );
      }
      started = await this.awaitStarted(timeoutMs);
    } catch (error) {
      await removeDropIn();
      throw error;
    }
    if (!dropIn) return started;
    if (!dropIn.written) return { ...started, traceContext: dropIn.why };
    const seen = this.traceSeen(started.pid, env.TRACEPARENT as string);
    const left = await removeDropIn();
    return { ...started, traceContext: left ? `${seen}; ${left}` : seen };
  }

  private async awaitStarted(timeoutMs: number): Promise<StartResult> {
    const after = await settle(() => this.show(), afterStart, timeoutMs, this.periodMs);
    if (after.step.kind === "fail") failWith(after.step, after.observation);
    if (after.step.kind === "wait") {
      throw new OutcomeError(
        "timeout",
        `still ${after.observation.activeState} after ${timeoutMs} ms`,
        after.observation.evidence,
      );
    }
    return { pid: after.observation.mainPid, evidence: after.observation.evidence };
  }

  /**
   * TRACEPARENT for one start: a runtime drop-in with Environment=, loaded by a daemon-reload (systemd has no
   * per-start environment; `set-environment` would give it to every unit the manager starts meanwhile). Not
   * written, the start goes on without it and says why.
   */
  private async writeTraceDropIn(
    traceparent: string,
  ): Promise<{ written: true; path: string } | { written: false; why: string }> {
    const path = this.traceDropIn;
    try {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(
        path,
        `# Written by the Lifeline agent for one start of ${this.unit}, removed once it has started.\n[Service]\nEnvironment=TRACEPARENT=${traceparent}\n`,
      );
    } catch (error) {
      return {
        written: false,
        why: `TRACEPARENT not passed: cannot write ${path}: ${(error as Error).message}`,
      };
    }
    const { stdout, code } = await this.run("systemctl", ["daemon-reload"]);
    if (code === 0) return { written: true, path };
    rmSync(path, { force: true });
    return {
      written: false,
      why: `TRACEPARENT not passed: systemctl daemon-reload exited ${code}: ${stdout.replace(/\s+/g, " ").trim()}`,
    };
  }

  private get traceDropIn(): string {
    return join(this.runtimeDir, `${this.unit}.d`, "lifeline-trace.conf");
  }

  /** Removes the drop-in and reloads; says what is left if systemd could not be told. */
  private async removeTraceDropIn(path: string): Promise<string | undefined> {
    rmSync(path, { force: true });
    const { stdout, code } = await this.run("systemctl", ["daemon-reload"]);
    if (code === 0) return undefined;
    return `drop-in removed, but systemctl daemon-reload exited ${code} (${stdout.replace(/\s+/g, " ").trim()}): systemd keeps TRACEPARENT for the unit's next starts until its next reload`;
  }

  async clearTraceContext(): Promise<string | undefined> {
    if (!existsSync(this.traceDropIn)) return undefined;
    const left = await this.removeTraceDropIn(this.traceDropIn);
    return `removed ${this.traceDropIn}, left by a start the agent did not finish${left ? `; ${left}` : ""}`;
  }

  /** Whether the unit's main process has TRACEPARENT in its environment, read back from /proc. */
  private traceSeen(pid: number, traceparent: string): string {
    if (pid <= 0) return "TRACEPARENT in a runtime drop-in; no main pid to verify it in";
    try {
      const found = this.environOf(pid)
        .split("\0")
        .find((entry) => entry.startsWith("TRACEPARENT="));
      if (found === `TRACEPARENT=${traceparent}`) return `TRACEPARENT verified in /proc/${pid}/environ`;
      return found
        ? `TRACEPARENT in a runtime drop-in, but pid ${pid} has ${found}`
        : `TRACEPARENT in a runtime drop-in, but not in pid ${pid}'s environment`;
    } catch (error) {
      return `TRACEPARENT in a runtime drop-in; not verified in pid ${pid}: ${(error as Error).message}`;
    }
  }

  async exited(): Promise<ExitObserved | undefined> {
    const status = await this.show();
    return status.status === "stopped" ? (exitOf(status) ?? { code: null }) : undefined;
  }

  async stop(gracePeriodMs: number): Promise<StopResult | undefined> {
    // One reading: a pending stop is followed below; a pending start is asked to stop too.
    const before = await settle(() => this.show(), beforeStop, 0, this.periodMs);
    if (before.step.kind === "fail") failWith(before.step, before.observation);
    if (before.step.kind === "done") return undefined;
    const signalSentAt = Date.now();
    if (before.step.kind === "act" || before.observation.status === "starting") {
      const { stdout, code } = await this.run("systemctl", ["stop", "--no-block", this.unit]);
      if (code !== 0) {
        throw new OutcomeError(
          code === 5 ? "not_found" : "command_failed",
          `systemctl stop exited ${code}`,
          stdout.replace(/\s+/g, " ").trim() || `exit ${code}`,
        );
      }
    }
    let result = await settle(() => this.show(), afterStop, gracePeriodMs, this.periodMs);
    if (result.step.kind === "fail") failWith(result.step, result.observation);
    let escalated = false;
    if (result.step.kind === "wait") {
      escalated = true;
      await this.run("systemctl", ["kill", "--signal=SIGKILL", this.unit]);
      result = await settle(() => this.show(), afterStop, 10_000, this.periodMs);
      if (result.step.kind !== "done") {
        throw new OutcomeError(
          "still_running",
          `${this.unit} still ${result.observation.activeState} after SIGKILL`,
          result.observation.evidence,
        );
      }
    }
    const exit = exitOf(result.observation);
    return {
      escalated,
      signalSentAt,
      exitedAt: Date.now(),
      pid: before.observation.mainPid,
      ...(exit ? { exit } : {}),
      evidence: result.observation.evidence,
    };
  }
}
