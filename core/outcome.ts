import { constants } from "node:os";

/**
 * The outcome model: what Lifeline may say happened to a service, and on what evidence. Written once here; the
 * drivers, the agent, the controller, the timeline and the dashboards all follow it.
 *
 * - `success` only with positive evidence: a state the service manager reported after the action (systemd's
 *   ActiveState, the SCM's state code, the process gone from the process table), an exit observed with its code,
 *   a health probe that passed, or a process still alive after the declared minimum uptime.
 * - `failure` with a reason (one of FailureReason) and the raw words of the tool that reported it.
 * - `unknown` with what is known, when the evidence is missing (an agent restarted mid-action, no event by the
 *   deadline). Never a guess in either direction.
 *
 * Who may assert an outcome: the agent addressed by a command it verified (signature, expiry, declared service)
 * asserts its steps; the controller asserts only the rollout's own decisions (planned, cancelled, halted, aborted)
 * and `timed_out` when no verified outcome arrived. A message that did not verify speaks for nothing: its event
 * carries what it claimed under `lifeline.claimed`, never the command's id, rollout id or trace.
 */

/** A service's state as its manager reported it, reduced to what a decision needs. */
export type ObservedStatus =
  | "running"
  | "stopped"
  /** Pending towards running (systemd activating, SCM START_PENDING / CONTINUE_PENDING). */
  | "starting"
  /** Pending towards stopped (systemd deactivating, SCM STOP_PENDING). */
  | "stopping"
  /** SCM PAUSED / PAUSE_PENDING: neither running nor stopped as Lifeline means them. */
  | "paused"
  /** The manager says no such service (SCM 1060, systemd LoadState=not-found). */
  | "missing"
  /** Anything else: a state not understood, unparseable output, a tool that failed. */
  | "unknown";

export interface Observation {
  status: ObservedStatus;
  pid?: number;
  /** The exit code the manager last recorded for the service, where it records one. */
  exitCode?: number;
  /** The evidence in the tool's own words, e.g. "ActiveState=inactive SubState=dead" or "STATE 1 (STOPPED)". */
  evidence: string;
}

/** Why an action failed: named, so alerts and dashboards can group them. */
export type FailureReason =
  | "not_found"
  | "unexpected_state"
  | "command_failed"
  | "timeout"
  | "exited"
  | "exited_with_error"
  | "still_running"
  | "shared_process"
  | "dependents_running"
  | "access_denied";

/** An action that did not reach its goal, with its reason and the evidence for it. */
export class OutcomeError extends Error {
  readonly reason: FailureReason;
  readonly evidence: string;
  readonly exitCode: number | undefined;

  constructor(reason: FailureReason, message: string, evidence: string, exitCode?: number) {
    super(`${reason}: ${message}`);
    this.name = "OutcomeError";
    this.reason = reason;
    this.evidence = evidence;
    this.exitCode = exitCode;
  }
}

export type Step =
  /** The goal state is verified. */
  | { kind: "done" }
  /** Ask the manager to act (stop or start). */
  | { kind: "act" }
  /** A pending state: poll again within the deadline. */
  | { kind: "wait" }
  | { kind: "fail"; reason: FailureReason; message: string };

/** A failed decision as the error drivers throw: its reason, message, and the observation's evidence. */
export function failWith(step: Step & { kind: "fail" }, observation: Observation): never {
  throw new OutcomeError(step.reason, step.message, observation.evidence, observation.exitCode);
}

const unexpected = (o: Observation, doing: string): Step => ({
  kind: "fail",
  reason: o.status === "missing" ? "not_found" : "unexpected_state",
  message:
    o.status === "missing"
      ? `the service manager has no such service (${o.evidence})`
      : `cannot ${doing} a service in state ${o.evidence}`,
});

/** Before a stop: what the observed state allows. */
export function beforeStop(o: Observation): Step {
  switch (o.status) {
    case "stopped":
      return { kind: "done" };
    case "running":
      return { kind: "act" };
    case "starting":
    case "stopping":
      return { kind: "wait" };
    default:
      return unexpected(o, "stop");
  }
}

/** After a stop was requested: stopped is done, pending or still running is waited on (then escalated). */
export function afterStop(o: Observation): Step {
  switch (o.status) {
    case "stopped":
      return { kind: "done" };
    case "running":
    case "starting":
    case "stopping":
      return { kind: "wait" };
    default:
      return unexpected(o, "finish stopping");
  }
}

/** Before a start: what the observed state allows. */
export function beforeStart(o: Observation): Step {
  switch (o.status) {
    case "running":
      return { kind: "done" };
    case "stopped":
      return { kind: "act" };
    case "starting":
    case "stopping":
      return { kind: "wait" };
    default:
      return unexpected(o, "start");
  }
}

/** After a start was requested: running is done, pending is waited on, stopped means it died. */
export function afterStart(o: Observation): Step {
  switch (o.status) {
    case "running":
      return { kind: "done" };
    case "starting":
    case "stopping":
      return { kind: "wait" };
    case "stopped":
      return {
        kind: "fail",
        reason: "exited",
        message: `the service stopped while starting${o.exitCode !== undefined ? ` with exit code ${o.exitCode}` : ""} (${o.evidence})`,
      };
    default:
      return unexpected(o, "finish starting");
  }
}

/**
 * How a stop ended, from the exit observed. A process ended by the stop signal itself (or the JVM's 128+n for it)
 * is a clean stop; a non-zero exit during a graceful stop is its own outcome: the service is down but did not shut
 * down cleanly. An exit nobody could observe (a service the agent adopted after a restart) is said as such.
 */
export interface ExitObserved {
  code?: number | null;
  signal?: string | null;
}

export type StopEnding = "exited" | "exited_with_error" | "killed" | "exit_unobserved";

export function stopEnding(
  exit: ExitObserved | undefined,
  stopSignal: string,
  escalated: boolean,
): StopEnding {
  if (escalated) return "killed";
  if (!exit || (exit.code == null && !exit.signal)) return "exit_unobserved";
  if (exit.signal) return exit.signal === stopSignal ? "exited" : "exited_with_error";
  if (exit.code === 0) return "exited";
  // Windows: a console program ended by its default CTRL_C handler exits with STATUS_CONTROL_C_EXIT.
  if (stopSignal === "CTRL_C_EVENT" && exit.code === 0xc000013a) return "exited";
  const signalNumber = (constants.signals as Record<string, number | undefined>)[stopSignal];
  if (signalNumber !== undefined && exit.code === 128 + signalNumber) return "exited";
  return "exited_with_error";
}

export function describeExit(exit: ExitObserved | undefined): string {
  if (!exit || (exit.code == null && !exit.signal)) return "exit not observed";
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

/**
 * Step statuses as the controller records them in `step.completed` (one per step, its final outcome), with the
 * event outcome each maps to. timed_out and unknown are not failures: nothing verified says what happened.
 */
export const STEP_OUTCOMES = {
  success: "success",
  failed: "failure",
  timed_out: "unknown",
  unknown: "unknown",
  undeliverable: "failure",
  cancelled: "unknown",
} as const;
export type StepStatus = keyof typeof STEP_OUTCOMES | "pending" | "in_progress";

/** The fields of a lifecycle event that an outcome is read from. */
export interface OutcomeEvent {
  host?: { name?: string };
  event?: { id?: string; action?: string; outcome?: string; reason?: string };
  lifeline?: {
    command_id?: string;
    claimed?: unknown;
    escalated?: boolean;
    evidence?: string;
    retryable?: boolean;
    /** A status command's observation: the manager's status, the pid, and the health probe's answer if any. */
    observed?: { status?: string; pid?: number; healthy?: boolean };
  };
  process?: { pid?: number };
}

export interface AttributedOutcome {
  outcome: "success" | "failure" | "unknown";
  reason?: string;
  evidence: string;
  escalated: boolean;
  /** A failure the agent verified left the service where the same action may be tried again. */
  retryable?: boolean;
  /** The pid the agent reported with the completion (a start's new process). */
  pid?: number;
  /** A status command's structured observation. */
  observed?: { status?: string; pid?: number; healthy?: boolean };
}

/**
 * The outcome an event asserts for a command, or undefined when it may not assert one. Only `command.completed`
 * and `command.rejected` of the command's own id, from the host the command was addressed to, and never an event
 * that carries `lifeline.claimed` (a message that did not verify). Anything but success or failure is unknown.
 */
export function outcomeFrom(event: OutcomeEvent, addressedHost: string): AttributedOutcome | undefined {
  const action = event.event?.action;
  if (action !== "command.completed" && action !== "command.rejected") return undefined;
  if (!event.lifeline?.command_id || event.lifeline.claimed !== undefined) return undefined;
  if (event.host?.name !== addressedHost) return undefined;
  const said = event.event?.outcome;
  const outcome =
    action === "command.rejected" ? "failure" : said === "success" || said === "failure" ? said : "unknown";
  const reason = event.event?.reason;
  return {
    outcome,
    ...(reason ? { reason } : {}),
    evidence: `${action} from ${addressedHost}${event.lifeline.evidence ? `: ${event.lifeline.evidence}` : ""}`,
    escalated: event.lifeline.escalated === true,
    ...(outcome === "failure" && event.lifeline.retryable === true ? { retryable: true } : {}),
    ...(typeof event.process?.pid === "number" ? { pid: event.process.pid } : {}),
    ...(event.lifeline.observed ? { observed: event.lifeline.observed } : {}),
  };
}
