import type { ExitObserved, Observation } from "../../core/outcome.ts";

/** What every driver reports about a service: an observation with its evidence (core/outcome.ts). */
export interface ServiceState extends Observation {
  /** status === "running": kept for callers that only ask "is it up". */
  running: boolean;
  /** The driver's own words, e.g. systemd's "deactivating (stop-sigterm)" or the SCM's "STOP_PENDING". */
  detail?: string;
}

export interface StopResult {
  escalated: boolean;
  signalSentAt: number;
  exitedAt: number;
  pid: number;
  /** How the service's main process ended, where the driver could observe it. */
  exit?: ExitObserved;
  /** The verified state after the stop, in the tool's own words. */
  evidence: string;
}

export interface StartResult {
  pid: number;
  /** The verified state after the start, in the tool's own words. */
  evidence: string;
  /** Whether TRACEPARENT reached the service, and how that is known (or why it did not). */
  traceContext?: string;
}

/**
 * One interface for the ways a service can be run: a process the agent spawns, a systemd unit, a Windows service.
 * Every method returns only verified facts; anything not verified throws an OutcomeError (core/outcome.ts) with
 * its reason and the tool's raw words.
 * `stop` resolves once the service is verified down (undefined if it was verified down before); `start` once the
 * service manager reports it running (the agent then gates on the health probe or the minimum uptime).
 */
export interface ServiceDriver {
  /** What a graceful stop sends, in the driver's terms ("SIGTERM to process group", "SERVICE_CONTROL_STOP to X"). */
  readonly stopControl: string;
  /** The signal or control name alone, as the exit is judged against (core/outcome.ts stopEnding). */
  readonly stopSignal: string;
  /** What an escalation does when the grace period is over ("SIGKILL", "TerminateJobObject"). */
  readonly killControl: string;
  state(): ServiceState | Promise<ServiceState>;
  start(extraEnv: Record<string, string>, timeoutMs: number): StartResult | Promise<StartResult>;
  /** How the service ended if it died since it was started (undefined while running or not known). */
  exited(): ExitObserved | undefined | Promise<ExitObserved | undefined>;
  stop(gracePeriodMs: number): Promise<StopResult | undefined>;
  /**
   * Waits up to timeoutMs for the exit of the process this driver started, where it can see it (the state may say
   * "gone" a moment before the exit status arrives).
   */
  awaitExit?(timeoutMs: number): Promise<ExitObserved | undefined>;
  /**
   * Undoes what a start set up to pass TRACEPARENT if the agent died before undoing it (so that the service's
   * next start, by anyone, does not carry an old command's trace); says what it removed, if anything.
   */
  clearTraceContext?(): Promise<string | undefined>;
  /** The last lines the service wrote, where the driver knows its output (for a crash's evidence). */
  lastOutput?(lines: number): string[];
}

/** Runs a program and returns its output: injected so that drivers are tested with recorded outputs. */
export type CommandRunner = (file: string, args: string[]) => Promise<{ stdout: string; code: number }>;
