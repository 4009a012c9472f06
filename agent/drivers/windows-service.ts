import {
  afterStart,
  afterStop,
  beforeStart,
  beforeStop,
  type ExitObserved,
  type Observation,
  type ObservedStatus,
  OutcomeError,
  type Step,
} from "../../core/outcome.ts";
import type { CommandRunner, ServiceDriver, ServiceState, StartResult, StopResult } from "./driver.ts";
import { runCommand, settle } from "./run-command.ts";

/** The SCM's dwCurrentState values (winsvc.h), which sc.exe prints as numbers before the localised word. */
export const SERVICE_STATES: Record<number, { name: string; status: ObservedStatus }> = {
  1: { name: "STOPPED", status: "stopped" },
  2: { name: "START_PENDING", status: "starting" },
  3: { name: "STOP_PENDING", status: "stopping" },
  4: { name: "RUNNING", status: "running" },
  5: { name: "CONTINUE_PENDING", status: "starting" },
  6: { name: "PAUSE_PENDING", status: "paused" },
  7: { name: "PAUSED", status: "paused" },
};

/** Win32 errors sc.exe exits with (and prints as "FAILED n"), by what they mean for an action. */
export const WIN32_ERRORS: Record<number, { name: string; reason: OutcomeError["reason"] }> = {
  2: { name: "ERROR_FILE_NOT_FOUND", reason: "command_failed" },
  5: { name: "ERROR_ACCESS_DENIED", reason: "access_denied" },
  1051: { name: "ERROR_DEPENDENT_SERVICES_RUNNING", reason: "dependents_running" },
  1052: { name: "ERROR_INVALID_SERVICE_CONTROL", reason: "unexpected_state" },
  1053: { name: "ERROR_SERVICE_REQUEST_TIMEOUT", reason: "timeout" },
  1058: { name: "ERROR_SERVICE_DISABLED", reason: "unexpected_state" },
  1060: { name: "ERROR_SERVICE_DOES_NOT_EXIST", reason: "not_found" },
  1061: { name: "ERROR_SERVICE_CANNOT_ACCEPT_CTRL", reason: "unexpected_state" },
  1062: { name: "ERROR_SERVICE_NOT_ACTIVE", reason: "unexpected_state" },
  1068: { name: "ERROR_SERVICE_DEPENDENCY_FAIL", reason: "command_failed" },
  1069: { name: "ERROR_SERVICE_LOGON_FAILED", reason: "command_failed" },
  1072: { name: "ERROR_SERVICE_MARKED_FOR_DELETE", reason: "not_found" },
};

/** SERVICE_WIN32_OWN_PROCESS and SERVICE_WIN32_SHARE_PROCESS bits of dwServiceType. */
const OWN_PROCESS = 0x10;
const SHARE_PROCESS = 0x20;

export interface ScQuery extends Observation {
  /** The SCM state code (1-7), undefined when the output had none. */
  stateCode?: number;
  pid: number;
  serviceType?: number;
  win32ExitCode: number;
  serviceExitCode: number;
  checkpoint: number;
  waitHintMs: number;
}

const numberField = (stdout: string, name: string, hex = false): number | undefined => {
  const value = new RegExp(`^\\s*${name}\\s*:\\s*(?:0x)?([0-9a-fA-F]+)`, "m").exec(stdout)?.[1];
  return value === undefined ? undefined : Number.parseInt(value, hex ? 16 : 10);
};

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim();

/**
 * Parses `sc.exe queryex NAME` by the numbers it prints (state code, type bits, pid, exit codes, checkpoint),
 * never by the localised words. `code` is sc.exe's exit code: 1060 is a missing service. Output without a state
 * code is `unknown` with the raw text, never a guess.
 */
export function parseQueryEx(stdout: string, code = 0): ScQuery {
  const failed = /FAILED (\d+)/.exec(stdout);
  const error = code !== 0 ? code : failed ? Number(failed[1]) : 0;
  const base = {
    pid: 0,
    win32ExitCode: 0,
    serviceExitCode: 0,
    checkpoint: 0,
    waitHintMs: 0,
  };
  if (error !== 0) {
    const known = WIN32_ERRORS[error];
    return {
      ...base,
      status: error === 1060 ? "missing" : "unknown",
      evidence: `sc.exe queryex exit ${error}${known ? ` ${known.name}` : ""}: ${oneLine(stdout)}`,
    };
  }
  const stateCode = numberField(stdout, "STATE");
  const state = stateCode === undefined ? undefined : SERVICE_STATES[stateCode];
  const serviceType = numberField(stdout, "TYPE", true);
  const pid = numberField(stdout, "PID") ?? 0;
  const win32ExitCode = numberField(stdout, "WIN32_EXIT_CODE") ?? 0;
  const serviceExitCode = numberField(stdout, "SERVICE_EXIT_CODE") ?? 0;
  return {
    status: state?.status ?? "unknown",
    evidence: state
      ? `STATE ${stateCode} (${state.name})${pid > 0 ? ` PID ${pid}` : ""}`
      : `sc.exe queryex printed no state code: ${oneLine(stdout) || "(nothing)"}`,
    ...(stateCode !== undefined ? { stateCode } : {}),
    pid,
    ...(serviceType !== undefined ? { serviceType } : {}),
    win32ExitCode,
    serviceExitCode,
    checkpoint: numberField(stdout, "CHECKPOINT", true) ?? 0,
    waitHintMs: numberField(stdout, "WAIT_HINT", true) ?? 0,
    ...(state?.status === "stopped" ? { exitCode: exitCodeOf(win32ExitCode, serviceExitCode) } : {}),
  };
}

/** A stopped service's exit code: the service-specific one when WIN32_EXIT_CODE says so (1066). */
function exitCodeOf(win32ExitCode: number, serviceExitCode: number): number {
  return win32ExitCode === 1066 ? serviceExitCode : win32ExitCode;
}

/** Parses `sc.exe enumdepend NAME`: the services that depend on it, with their states (by state code). */
export function parseEnumDepend(stdout: string): Array<{ name: string; status: ObservedStatus }> {
  const services: Array<{ name: string; status: ObservedStatus }> = [];
  for (const block of stdout.split(/\r?\n(?=SERVICE_NAME:)/)) {
    const name = /^SERVICE_NAME:\s*(.+?)\s*$/m.exec(block)?.[1];
    const code = numberField(block, "STATE");
    if (name) services.push({ name, status: (code && SERVICE_STATES[code]?.status) || "unknown" });
  }
  return services;
}

/** The failure a non-zero sc.exe (or taskkill) exit stands for, with its raw words. */
function commandFailure(what: string, code: number, stdout: string): OutcomeError {
  const failed = /FAILED (\d+)/.exec(stdout);
  const error = failed ? Number(failed[1]) : code;
  const known = WIN32_ERRORS[error];
  return new OutcomeError(
    known?.reason ?? "command_failed",
    `${what} failed with ${error}${known ? ` ${known.name}` : ""}`,
    oneLine(stdout) || `exit ${code}`,
  );
}

function failWith(step: Step & { kind: "fail" }, observation: Observation): never {
  throw new OutcomeError(step.reason, step.message, observation.evidence, observation.exitCode);
}

/**
 * A Windows service through sc.exe, decided on the SCM's numbers (state code, service type bits, pid, exit
 * codes) and sc.exe's exit code, never on the localised words. There is no SIGTERM: `sc stop` sends
 * SERVICE_CONTROL_STOP and the service decides; the SCM never kills a stalled service, so after the grace period
 * the agent ends the service's own process (`taskkill /PID n /T /F`), and only when the service runs in a process
 * of its own (WIN32_OWN_PROCESS): killing a shared svchost would take every service in it down, so a shared-process
 * service that does not stop is a failure with that reason. Running dependents make a stop fail with their names.
 */
export class WindowsServiceDriver implements ServiceDriver {
  private readonly name: string;
  private readonly run: CommandRunner;
  private readonly periodMs: number;

  constructor(name: string, run: CommandRunner = runCommand, periodMs = 250) {
    this.name = name;
    this.run = run;
    this.periodMs = periodMs;
  }

  async query(): Promise<ScQuery> {
    const { stdout, code } = await this.run("sc.exe", ["queryex", this.name]);
    return parseQueryEx(stdout, code);
  }

  async state(): Promise<ServiceState> {
    const query = await this.query();
    const name = query.stateCode !== undefined ? SERVICE_STATES[query.stateCode]?.name : undefined;
    return {
      ...query,
      running: query.status === "running",
      ...(query.pid > 0 ? { pid: query.pid } : {}),
      detail: name ?? query.status,
    };
  }

  async start(_env: Record<string, string>, timeoutMs = 30_000): Promise<StartResult> {
    const before = await settle(() => this.query(), beforeStart, timeoutMs, this.periodMs);
    if (before.step.kind === "fail") failWith(before.step, before.observation);
    if (before.step.kind === "act") {
      const { stdout, code } = await this.run("sc.exe", ["start", this.name]);
      // 1056: already running (someone else started it meanwhile): the query below verifies it.
      if (code !== 0 && code !== 1056) throw commandFailure("sc start", code, stdout);
    }
    const after = await settle(() => this.query(), afterStart, timeoutMs, this.periodMs);
    if (after.step.kind === "fail") failWith(after.step, after.observation);
    if (after.step.kind === "wait") {
      throw new OutcomeError(
        "timeout",
        `still ${after.observation.evidence} after ${timeoutMs} ms`,
        after.observation.evidence,
      );
    }
    return { pid: after.observation.pid, evidence: after.observation.evidence };
  }

  async exited(): Promise<ExitObserved | undefined> {
    const query = await this.query();
    return query.status === "stopped" ? { code: query.exitCode ?? null } : undefined;
  }

  async stop(gracePeriodMs: number): Promise<StopResult | undefined> {
    // One reading: a pending stop is followed below; a pending start is asked to stop too.
    const before = await settle(() => this.query(), beforeStop, 0, this.periodMs);
    if (before.step.kind === "fail") failWith(before.step, before.observation);
    if (before.step.kind === "done") return undefined;
    const signalSentAt = Date.now();
    const pid = before.observation.pid;
    if (before.step.kind === "act" || before.observation.status === "starting") {
      const dependents = await this.run("sc.exe", ["enumdepend", this.name]);
      const running = parseEnumDepend(dependents.stdout).filter((d) => d.status !== "stopped");
      if (running.length > 0) {
        throw new OutcomeError(
          "dependents_running",
          `dependent services still running: ${running.map((d) => d.name).join(", ")} (stop them first)`,
          oneLine(dependents.stdout),
        );
      }
      const { stdout, code } = await this.run("sc.exe", ["stop", this.name]);
      // 1062: not active (it stopped meanwhile); 1061: cannot accept controls now (pending): the polling decides.
      if (code !== 0 && code !== 1062 && code !== 1061) throw commandFailure("sc stop", code, stdout);
    }
    let result = await settle(() => this.query(), afterStop, gracePeriodMs, this.periodMs);
    if (result.step.kind === "fail") failWith(result.step, result.observation);
    let escalated = false;
    if (result.step.kind === "wait") {
      const stuck = result.observation;
      const type = stuck.serviceType ?? before.observation.serviceType;
      const target = stuck.pid || pid;
      if (type === undefined || (type & OWN_PROCESS) === 0 || (type & SHARE_PROCESS) !== 0) {
        throw new OutcomeError(
          "shared_process",
          `${this.name} still ${stuck.evidence} after ${gracePeriodMs} ms; it does not run in a process of its own (TYPE 0x${(type ?? 0).toString(16)}), so the agent will not kill pid ${target}`,
          stuck.evidence,
        );
      }
      if (target <= 0) {
        throw new OutcomeError(
          "still_running",
          `${this.name} still ${stuck.evidence} after ${gracePeriodMs} ms and the SCM names no pid to end`,
          stuck.evidence,
        );
      }
      escalated = true;
      const kill = await this.run("taskkill.exe", ["/PID", String(target), "/T", "/F"]);
      // 128: the process is already gone. Anything else that failed is evidence, but the state decides.
      result = await settle(() => this.query(), afterStop, 15_000, this.periodMs);
      if (result.step.kind !== "done") {
        throw new OutcomeError(
          "still_running",
          `${this.name} still ${result.observation.evidence} after taskkill (exit ${kill.code}: ${oneLine(kill.stdout)})`,
          result.observation.evidence,
        );
      }
    }
    const after = result.observation;
    return {
      escalated,
      signalSentAt,
      exitedAt: Date.now(),
      pid,
      ...(after.exitCode !== undefined ? { exit: { code: after.exitCode } } : {}),
      evidence: after.evidence,
    };
  }
}
