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
  3: { name: "ERROR_PATH_NOT_FOUND", reason: "command_failed" },
  5: { name: "ERROR_ACCESS_DENIED", reason: "access_denied" },
  6: { name: "ERROR_INVALID_HANDLE", reason: "command_failed" },
  87: { name: "ERROR_INVALID_PARAMETER", reason: "command_failed" },
  122: { name: "ERROR_INSUFFICIENT_BUFFER", reason: "command_failed" },
  123: { name: "ERROR_INVALID_NAME", reason: "not_found" },
  1056: { name: "ERROR_SERVICE_ALREADY_RUNNING", reason: "unexpected_state" },
  1059: { name: "ERROR_CIRCULAR_DEPENDENCY", reason: "command_failed" },
  1065: { name: "ERROR_DATABASE_DOES_NOT_EXIST", reason: "command_failed" },
  1075: { name: "ERROR_SERVICE_DEPENDENCY_DELETED", reason: "command_failed" },
  1115: { name: "ERROR_SHUTDOWN_IN_PROGRESS", reason: "command_failed" },
  50: { name: "ERROR_NOT_SUPPORTED", reason: "command_failed" },
  124: { name: "ERROR_INVALID_LEVEL", reason: "command_failed" },
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

/** The numbers of SERVICE_STATUS_PROCESS, as QueryServiceStatusEx returns them (and sc.exe queryex prints them). */
export interface ScmStatus {
  stateCode: number;
  serviceType: number;
  pid: number;
  win32ExitCode: number;
  serviceExitCode: number;
  checkpoint: number;
  waitHintMs: number;
}

/** A service's status as an observation (core/outcome.ts): decided on the state code alone, never a word. */
export function observeStatus(status: ScmStatus): ScQuery {
  const state = SERVICE_STATES[status.stateCode];
  return {
    status: state?.status ?? "unknown",
    evidence: state
      ? `STATE ${status.stateCode} (${state.name})${status.pid > 0 ? ` PID ${status.pid}` : ""}`
      : `STATE ${status.stateCode}: not a state the SCM defines`,
    ...status,
    ...(state?.status === "stopped"
      ? { exitCode: exitCodeOf(status.win32ExitCode, status.serviceExitCode) }
      : {}),
  };
}

/** A failed query as an observation: 1060 is a missing service, anything else is not understood. */
export function observeError(error: number, raw: string): ScQuery {
  const known = WIN32_ERRORS[error];
  return {
    status: error === 1060 ? "missing" : "unknown",
    evidence: `${raw}: error ${error}${known ? ` ${known.name}` : ""}`,
    pid: 0,
    win32ExitCode: 0,
    serviceExitCode: 0,
    checkpoint: 0,
    waitHintMs: 0,
  };
}

/**
 * Parses `sc.exe queryex NAME` by the numbers it prints (state code, type bits, pid, exit codes, checkpoint),
 * never by the localised words. `code` is sc.exe's exit code: 1060 is a missing service. Output without a state
 * code is `unknown` with the raw text, never a guess.
 */
export function parseQueryEx(stdout: string, code = 0): ScQuery {
  const failed = /FAILED (\d+)/.exec(stdout);
  const error = code !== 0 ? code : failed ? Number(failed[1]) : 0;
  if (error !== 0) return observeError(error, `sc.exe queryex: ${oneLine(stdout)}`);
  const stateCode = numberField(stdout, "STATE");
  if (stateCode === undefined) {
    return {
      ...observeError(0, ""),
      status: "unknown",
      evidence: `sc.exe queryex printed no state code: ${oneLine(stdout) || "(nothing)"}`,
    };
  }
  return observeStatus({
    stateCode,
    serviceType: numberField(stdout, "TYPE", true) ?? 0,
    pid: numberField(stdout, "PID") ?? 0,
    win32ExitCode: numberField(stdout, "WIN32_EXIT_CODE") ?? 0,
    serviceExitCode: numberField(stdout, "SERVICE_EXIT_CODE") ?? 0,
    checkpoint: numberField(stdout, "CHECKPOINT", true) ?? 0,
    waitHintMs: numberField(stdout, "WAIT_HINT", true) ?? 0,
  });
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

/** The failure a Win32 error of an SCM call stands for, with the raw words. */
/** A failed Win32 call as an OutcomeError: the error's name and its reason (WIN32_ERRORS), the call's own words. */
export function win32Failure(what: string, error: number, raw: string): OutcomeError {
  const known = WIN32_ERRORS[error];
  return new OutcomeError(
    known?.reason ?? "command_failed",
    `${what} failed with ${error}${known ? ` ${known.name}` : ""}`,
    raw || `error ${error}`,
  );
}

/** What a call to the Service Control Manager returned: 0 or a Win32 error, and the raw words for evidence. */
export interface ScmCall {
  error: number;
  raw: string;
}

/**
 * The port to a Service Control Manager: the Win32 API (scm-win32.ts, through koffi, on Windows) or sc.exe's
 * output (scScm below: for hosts where the API cannot be loaded, and for tests with recorded outputs).
 */
export interface ScmPort {
  query(service: string): Promise<ScQuery>;
  dependents(
    service: string,
  ): Promise<ScmCall & { services: Array<{ name: string; status: ObservedStatus }> }>;
  /** SERVICE_CONTROL_STOP. */
  stop(service: string): Promise<ScmCall>;
  start(service: string): Promise<ScmCall>;
  /** Ends a process (the escalation): only ever called for a WIN32_OWN_PROCESS service's own pid. */
  terminate(pid: number): Promise<ScmCall>;
  /** The service's recovery actions (SERVICE_CONFIG_FAILURE_ACTIONS): what the SCM does when its process dies. */
  failureActions(service: string): Promise<ScmCall & { actions?: FailureActions }>;
  setFailureActions(service: string, actions: FailureActions): Promise<ScmCall>;
  /**
   * A REG_MULTI_SZ value of the service's registry key (HKLM\SYSTEM\CurrentControlSet\Services\NAME), e.g.
   * Environment, which the SCM adds to the environment of the process it creates. Not set: error 0, no entries.
   */
  readMultiSz(service: string, value: string): Promise<ScmCall & { entries?: string[] }>;
  /** Writes it, or deletes it (entries undefined). */
  writeMultiSz(service: string, value: string, entries: string[] | undefined): Promise<ScmCall>;
}

/** SC_ACTION_NONE, _RESTART, _REBOOT, _RUN_COMMAND, with the delay before each, and the reset period. */
export interface FailureActions {
  resetPeriodS: number;
  actions: Array<{ type: number; delayMs: number }>;
}

/** What the SCM's recovery actions would do after the agent ended a service's process, in words. */
export function describeRecovery(actions: FailureActions): string | undefined {
  const first = actions.actions[0];
  if (!first || first.type === 0) return undefined;
  const what =
    ["nothing", "restart it", "reboot the machine", "run its command"][first.type] ?? `action ${first.type}`;
  return `${what} after ${first.delayMs} ms`;
}

/** Where a start that set TRACEPARENT keeps the service's Environment value as it was (["absent"] or ["present", ...]). */
const BEFORE_VALUE = "LifelineEnvironmentBefore";

/** sc.exe's exit code, or the "FAILED n" it printed. */
const scError = (code: number, stdout: string) => {
  const failed = /FAILED (\d+)/.exec(stdout);
  return failed ? Number(failed[1]) : code;
};

/** The SCM through sc.exe and taskkill.exe, decided on their numbers. */
export function scScm(run: CommandRunner = runCommand): ScmPort {
  return {
    async query(service) {
      const { stdout, code } = await run("sc.exe", ["queryex", service]);
      return parseQueryEx(stdout, code);
    },
    async dependents(service) {
      const { stdout, code } = await run("sc.exe", ["enumdepend", service]);
      return { error: scError(code, stdout), raw: oneLine(stdout), services: parseEnumDepend(stdout) };
    },
    async stop(service) {
      const { stdout, code } = await run("sc.exe", ["stop", service]);
      return { error: code === 0 ? 0 : scError(code, stdout), raw: `sc.exe stop: ${oneLine(stdout)}` };
    },
    async start(service) {
      const { stdout, code } = await run("sc.exe", ["start", service]);
      return { error: code === 0 ? 0 : scError(code, stdout), raw: `sc.exe start: ${oneLine(stdout)}` };
    },
    async terminate(pid) {
      const { stdout, code } = await run("taskkill.exe", ["/PID", String(pid), "/T", "/F"]);
      return { error: code, raw: `taskkill: ${oneLine(stdout)}` };
    },
    // sc.exe prints recovery actions in localised words only (sc qfailure): not read through this adapter.
    failureActions: async () => ({
      error: 50,
      raw: "sc.exe adapter: recovery actions not read (ERROR_NOT_SUPPORTED)",
    }),
    setFailureActions: async () => ({ error: 50, raw: "sc.exe adapter: recovery actions not changed" }),
    // The service's registry values are not reached through sc.exe.
    readMultiSz: async () => ({ error: 50, raw: "sc.exe adapter: registry values not read" }),
    writeMultiSz: async () => ({ error: 50, raw: "sc.exe adapter: registry values not written" }),
  };
}

/**
 * A Windows service, through a ScmPort: the Win32 API on Windows, sc.exe otherwise. Decided on the SCM's numbers
 * (state code, service type bits, pid, exit codes) and Win32 error codes, never on localised words. There is no
 * SIGTERM: SERVICE_CONTROL_STOP is sent and the service decides; the SCM never kills a stalled service, so after
 * the grace period the agent ends the service's own process, and only when the service runs in a process of its
 * own (WIN32_OWN_PROCESS): killing a shared svchost would take every service in it down, so a shared-process
 * service that does not stop is a failure with that reason. Running dependents make a stop fail with their names.
 */
export class WindowsServiceDriver implements ServiceDriver {
  private readonly name: string;
  private readonly scm: ScmPort;
  private readonly periodMs: number;
  private readonly stopDependents: boolean;
  /** Suspend the SCM's recovery actions around the agent's own kill, so the SCM does not restart what it ended. */
  private readonly suspendRecovery: boolean;
  /** Dependents this driver stopped before its service, to start again after the service's next start. */
  private stoppedDependents: string[] = [];
  readonly stopSignal = "SERVICE_CONTROL_STOP";
  readonly stopControl: string;
  readonly killControl = "TerminateProcess";

  /** `scm`: a port, or a CommandRunner for sc.exe (tests pass recorded outputs). */
  constructor(
    name: string,
    scm: ScmPort | CommandRunner = scScm(),
    periodMs = 250,
    options: { stopDependents?: boolean; suspendRecovery?: boolean } = {},
  ) {
    this.suspendRecovery = options.suspendRecovery ?? true;
    this.name = name;
    this.stopControl = `SERVICE_CONTROL_STOP to ${name}`;
    this.scm = typeof scm === "function" ? scScm(scm) : scm;
    this.periodMs = periodMs;
    this.stopDependents = options.stopDependents ?? false;
  }

  query(): Promise<ScQuery> {
    return this.scm.query(this.name);
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

  async start(env: Record<string, string>, timeoutMs = 30_000): Promise<StartResult> {
    const before = await settle(() => this.query(), beforeStart, timeoutMs, this.periodMs);
    if (before.step.kind === "fail") failWith(before.step, before.observation);
    let traceContext: string | undefined;
    if (before.step.kind === "act") {
      const trace = env.TRACEPARENT ? await this.setTraceEnvironment(env.TRACEPARENT) : undefined;
      try {
        const started = await this.scm.start(this.name);
        // 1056: already running (someone else started it meanwhile): the query below verifies it.
        if (started.error !== 0 && started.error !== 1056)
          throw win32Failure("StartService", started.error, started.raw);
      } finally {
        // StartServiceW returns once the process exists and reports in: its environment is fixed by then.
        traceContext = trace && (await this.restoreTraceEnvironment(trace));
      }
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
    let evidence = after.observation.evidence;
    if (this.stoppedDependents.length > 0) {
      // Started again in the reverse of the order they were stopped in: dependencies before dependents.
      const restarted: string[] = [];
      for (const name of [...this.stoppedDependents].reverse()) {
        await new WindowsServiceDriver(name, this.scm, this.periodMs).start({}, timeoutMs);
        restarted.push(name);
      }
      this.stoppedDependents = [];
      evidence = `${evidence}; dependents started again: ${restarted.join(", ")}`;
    }
    return { pid: after.observation.pid, evidence, ...(traceContext ? { traceContext } : {}) };
  }

  /**
   * TRACEPARENT for one start: added to the service's Environment registry value, which the SCM gives the
   * process it creates; what was there before is kept first in LifelineEnvironmentBefore, so that an agent that
   * dies before restoring it restores it when it opens (clearTraceContext). Not set, the start goes on without it
   * and says why.
   */
  private async setTraceEnvironment(traceparent: string): Promise<{ why: string } | { previous?: string[] }> {
    const current = await this.scm.readMultiSz(this.name, "Environment");
    if (current.error !== 0)
      return { why: `TRACEPARENT not passed: ${current.raw} failed with Win32 error ${current.error}` };
    const saved = current.entries ? ["present", ...current.entries] : ["absent"];
    const kept = await this.scm.writeMultiSz(this.name, BEFORE_VALUE, saved);
    if (kept.error !== 0)
      return { why: `TRACEPARENT not passed: ${kept.raw} failed with Win32 error ${kept.error}` };
    const entries = [
      ...(current.entries ?? []).filter((entry) => !/^TRACEPARENT=/i.test(entry)),
      `TRACEPARENT=${traceparent}`,
    ];
    const set = await this.scm.writeMultiSz(this.name, "Environment", entries);
    if (set.error !== 0) {
      await this.scm.writeMultiSz(this.name, BEFORE_VALUE, undefined);
      return { why: `TRACEPARENT not passed: ${set.raw} failed with Win32 error ${set.error}` };
    }
    return current.entries ? { previous: current.entries } : {};
  }

  /** Puts the Environment value back as it was; says what is known about TRACEPARENT for this start. */
  private async restoreTraceEnvironment(trace: { why: string } | { previous?: string[] }): Promise<string> {
    if ("why" in trace) return trace.why;
    const restored = await this.scm.writeMultiSz(this.name, "Environment", trace.previous);
    if (restored.error !== 0)
      return `TRACEPARENT in the service's Environment registry value for this start; restoring it failed (${restored.raw}: Win32 error ${restored.error}), so later starts would carry this trace until the agent restores it when it opens`;
    await this.scm.writeMultiSz(this.name, BEFORE_VALUE, undefined);
    return "TRACEPARENT in the service's Environment registry value for this start (restored after it); not read back from the process";
  }

  async clearTraceContext(): Promise<string | undefined> {
    const saved = await this.scm.readMultiSz(this.name, BEFORE_VALUE);
    if (saved.error !== 0 || !saved.entries) return undefined;
    const [was, ...entries] = saved.entries;
    const restored = await this.scm.writeMultiSz(
      this.name,
      "Environment",
      was === "present" ? entries : undefined,
    );
    if (restored.error !== 0)
      return `Environment still holds a start's TRACEPARENT: ${restored.raw} failed with Win32 error ${restored.error}`;
    await this.scm.writeMultiSz(this.name, BEFORE_VALUE, undefined);
    return `restored the Environment registry value a start left with TRACEPARENT (it was ${was === "present" ? entries.join(" ") || "empty" : "not set"})`;
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
      const dependents = await this.scm.dependents(this.name);
      const running = dependents.services.filter((d) => d.status !== "stopped");
      if (running.length > 0 && !this.stopDependents) {
        throw new OutcomeError(
          "dependents_running",
          `dependent services still running: ${running.map((d) => d.name).join(", ")} (stop them first)`,
          dependents.raw,
        );
      }
      // In the SCM's order (the reverse of their start order), each verified stopped before the next.
      for (const dependent of running) {
        await new WindowsServiceDriver(dependent.name, this.scm, this.periodMs).stop(gracePeriodMs);
        this.stoppedDependents.push(dependent.name);
      }
      const stopped = await this.scm.stop(this.name);
      // 1062: not active (it stopped meanwhile); 1061: cannot accept controls now (pending): the polling decides.
      if (stopped.error !== 0 && stopped.error !== 1062 && stopped.error !== 1061)
        throw win32Failure("ControlService(STOP)", stopped.error, stopped.raw);
    }
    let result = await settle(() => this.query(), afterStop, gracePeriodMs, this.periodMs);
    if (result.step.kind === "fail") failWith(result.step, result.observation);
    let escalated = false;
    let recoveryNote = "";
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
      // The SCM counts a killed process as a failure and runs the service's recovery actions: a restart would
      // undo the stop. Suspended around the kill (and restored), or said in the evidence.
      const recovery = await this.scm.failureActions(this.name);
      const plan = recovery.actions && describeRecovery(recovery.actions);
      const suspended =
        plan !== undefined && this.suspendRecovery && recovery.actions
          ? await this.scm.setFailureActions(this.name, {
              resetPeriodS: recovery.actions.resetPeriodS,
              actions: [],
            })
          : undefined;
      const kill = await this.scm.terminate(target);
      // Whatever the kill said, the SCM's state decides.
      result = await settle(() => this.query(), afterStop, 15_000, this.periodMs);
      if (suspended?.error === 0 && recovery.actions) {
        const restored = await this.scm.setFailureActions(this.name, recovery.actions);
        if (restored.error !== 0)
          throw win32Failure(
            `restoring the recovery actions (${plan}) after the kill`,
            restored.error,
            restored.raw,
          );
      }
      if (result.step.kind !== "done") {
        throw new OutcomeError(
          "still_running",
          `${this.name} still ${result.observation.evidence} after ending pid ${target} (${kill.raw}, error ${kill.error})`,
          result.observation.evidence,
        );
      }
      recoveryNote =
        recovery.error !== 0
          ? `; recovery actions not readable (error ${recovery.error}${WIN32_ERRORS[recovery.error] ? ` ${WIN32_ERRORS[recovery.error]?.name}` : ""}): the SCM may restart it`
          : plan === undefined
            ? ""
            : suspended?.error === 0
              ? `; recovery actions (${plan}) suspended around the kill and restored`
              : `; the SCM's recovery actions will ${plan}${suspended ? ` (suspending them failed: error ${suspended.error})` : ""}`;
    }
    const after = result.observation;
    const dependents =
      this.stoppedDependents.length > 0
        ? `; dependents stopped first: ${this.stoppedDependents.join(", ")}`
        : "";
    return {
      escalated,
      signalSentAt,
      exitedAt: Date.now(),
      pid,
      ...(after.exitCode !== undefined ? { exit: { code: after.exitCode } } : {}),
      evidence: `${after.evidence}${dependents}${recoveryNote}`,
    };
  }
}
