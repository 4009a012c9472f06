/** What every driver reports about a service, verified rather than assumed. */
export interface ServiceState {
  running: boolean;
  pid?: number;
  /** The driver's own words, e.g. systemd's "deactivating (stop-sigterm)" or sc.exe's "STOP_PENDING". */
  detail?: string;
}

export interface StopResult {
  escalated: boolean;
  signalSentAt: number;
  exitedAt: number;
  pid: number;
}

/**
 * One interface for the ways a service can be run: a process the agent spawns, a systemd unit, a Windows service.
 * `stop` resolves once the service is verified down (undefined if it was not running); it throws if it cannot be.
 */
export interface ServiceDriver {
  state(): ServiceState | Promise<ServiceState>;
  /** Starts the service; resolves with its main pid (0 if the manager does not say yet). */
  start(extraEnv: Record<string, string>): number | Promise<number>;
  /** The exit code if it died while starting (undefined while running or unknown). */
  exited(): number | null | undefined | Promise<number | null | undefined>;
  stop(gracePeriodMs: number): Promise<StopResult | undefined>;
}

/** Runs a program and returns its output: injected so that drivers are tested with recorded outputs. */
export type CommandRunner = (file: string, args: string[]) => Promise<{ stdout: string; code: number }>;
