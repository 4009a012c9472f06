import type { CommandRunner, ServiceDriver, ServiceState, StopResult } from "./driver.ts";
import { pollUntil, runCommand } from "./run-command.ts";

export type WindowsServiceState =
  | "STOPPED"
  | "START_PENDING"
  | "STOP_PENDING"
  | "RUNNING"
  | "CONTINUE_PENDING"
  | "PAUSE_PENDING"
  | "PAUSED"
  | "UNKNOWN";

export interface ScQuery {
  state: WindowsServiceState;
  pid: number;
  win32ExitCode: number;
  serviceExitCode: number;
}

/** Parses `sc.exe queryex NAME`: "STATE : 4  RUNNING", "PID : 1234", exit codes. */
export function parseQueryEx(stdout: string): ScQuery {
  const field = (name: string) =>
    new RegExp(`^\\s*${name}\\s*:\\s*(.+)$`, "m").exec(stdout)?.[1]?.trim() ?? "";
  const state = (/^\d+\s+(\w+)/.exec(field("STATE"))?.[1] ?? "UNKNOWN") as WindowsServiceState;
  return {
    state,
    pid: Number.parseInt(field("PID"), 10) || 0,
    win32ExitCode: Number.parseInt(field("WIN32_EXIT_CODE"), 10) || 0,
    serviceExitCode: Number.parseInt(field("SERVICE_EXIT_CODE"), 10) || 0,
  };
}

/** Parses `sc.exe enumdepend NAME`: the services that depend on it, with their states. */
export function parseEnumDepend(stdout: string): Array<{ name: string; state: WindowsServiceState }> {
  const services: Array<{ name: string; state: WindowsServiceState }> = [];
  for (const block of stdout.split(/\r?\n(?=SERVICE_NAME:)/)) {
    const name = /^SERVICE_NAME:\s*(.+)$/m.exec(block)?.[1]?.trim();
    const state = /^\s*STATE\s*:\s*\d+\s+(\w+)/m.exec(block)?.[1] as WindowsServiceState | undefined;
    if (name) services.push({ name, state: state ?? "UNKNOWN" });
  }
  return services;
}

/**
 * A Windows service through sc.exe. There is no SIGTERM: `sc stop` sends SERVICE_CONTROL_STOP and the service
 * decides; the Service Control Manager never kills a stalled service, so after the grace period the agent kills
 * the service's process tree (`taskkill /PID n /T /F`). Running dependents make a stop fail with their names: the
 * rollout plan must stop them first (dependency order), the agent does not stop other services on its own.
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
    return parseQueryEx((await this.run("sc.exe", ["queryex", this.name])).stdout);
  }

  async state(): Promise<ServiceState> {
    const query = await this.query();
    return {
      running: query.state === "RUNNING",
      ...(query.pid > 0 ? { pid: query.pid } : {}),
      detail: query.state,
    };
  }

  async start(): Promise<number> {
    await this.run("sc.exe", ["start", this.name]);
    const { value } = await pollUntil(
      () => this.query(),
      (q) => q.state !== "START_PENDING",
      30_000,
      this.periodMs,
    );
    return value.pid;
  }

  async exited(): Promise<number | undefined> {
    const query = await this.query();
    return query.state === "STOPPED" ? query.serviceExitCode || query.win32ExitCode : undefined;
  }

  async stop(gracePeriodMs: number): Promise<StopResult | undefined> {
    const before = await this.query();
    if (before.state === "STOPPED") return undefined;
    const dependents = parseEnumDepend((await this.run("sc.exe", ["enumdepend", this.name])).stdout).filter(
      (d) => d.state !== "STOPPED",
    );
    if (dependents.length > 0) {
      throw new Error(
        `dependent services still running: ${dependents.map((d) => d.name).join(", ")} (stop them first)`,
      );
    }
    const signalSentAt = Date.now();
    await this.run("sc.exe", ["stop", this.name]);
    const stopped = (q: ScQuery) => q.state === "STOPPED";
    let result = await pollUntil(() => this.query(), stopped, gracePeriodMs, this.periodMs);
    let escalated = false;
    if (!result.done) {
      escalated = true;
      const pid = result.value.pid || before.pid;
      if (pid > 0) await this.run("taskkill.exe", ["/PID", String(pid), "/T", "/F"]);
      result = await pollUntil(() => this.query(), stopped, 15_000, this.periodMs);
      if (!result.done) throw new Error(`${this.name} still ${result.value.state} after taskkill`);
    }
    return { escalated, signalSentAt, exitedAt: Date.now(), pid: before.pid };
  }
}
