import type { CommandRunner, ServiceDriver, ServiceState, StopResult } from "./driver.ts";
import { pollUntil, runCommand } from "./run-command.ts";

export interface UnitStatus {
  activeState: string;
  subState: string;
  mainPid: number;
  execMainStatus: number;
}

/** Parses `systemctl show --property=...` output (key=value lines). */
export function parseShow(stdout: string): UnitStatus {
  const values = new Map(
    stdout
      .split("\n")
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1).trim()] as const),
  );
  return {
    activeState: values.get("ActiveState") ?? "unknown",
    subState: values.get("SubState") ?? "unknown",
    mainPid: Number(values.get("MainPID") ?? 0),
    execMainStatus: Number(values.get("ExecMainStatus") ?? 0),
  };
}

/**
 * A systemd unit. systemd runs its own stop sequence (KillSignal, TimeoutStopSec, SIGKILL); the agent asks for
 * a stop, polls `systemctl show` through deactivating, and escalates with `systemctl kill --signal=SIGKILL` if the
 * unit is still not down after the agent's grace period.
 */
export class SystemdDriver implements ServiceDriver {
  private readonly unit: string;
  private readonly run: CommandRunner;
  private readonly periodMs: number;

  constructor(unit: string, run: CommandRunner = runCommand, periodMs = 250) {
    this.unit = unit;
    this.run = run;
    this.periodMs = periodMs;
  }

  async show(): Promise<UnitStatus> {
    const { stdout } = await this.run("systemctl", [
      "show",
      this.unit,
      "--property=ActiveState,SubState,MainPID,ExecMainStatus",
    ]);
    return parseShow(stdout);
  }

  async state(): Promise<ServiceState> {
    const status = await this.show();
    const running = status.activeState === "active" || status.activeState === "reloading";
    return {
      running,
      ...(status.mainPid > 0 ? { pid: status.mainPid } : {}),
      detail: `${status.activeState} (${status.subState})`,
    };
  }

  async start(): Promise<number> {
    await this.run("systemctl", ["start", "--no-block", this.unit]);
    const { value } = await pollUntil(
      () => this.show(),
      (s) => s.activeState !== "activating",
      30_000,
      this.periodMs,
    );
    return value.mainPid;
  }

  async exited(): Promise<number | undefined> {
    const status = await this.show();
    return status.activeState === "failed" ||
      (status.activeState === "inactive" && status.execMainStatus !== 0)
      ? status.execMainStatus
      : undefined;
  }

  async stop(gracePeriodMs: number): Promise<StopResult | undefined> {
    const before = await this.show();
    if (before.activeState === "inactive" || before.activeState === "failed") return undefined;
    const signalSentAt = Date.now();
    await this.run("systemctl", ["stop", "--no-block", this.unit]);
    const down = (s: UnitStatus) => s.activeState === "inactive" || s.activeState === "failed";
    let result = await pollUntil(() => this.show(), down, gracePeriodMs, this.periodMs);
    let escalated = false;
    if (!result.done) {
      escalated = true;
      await this.run("systemctl", ["kill", "--signal=SIGKILL", this.unit]);
      result = await pollUntil(() => this.show(), down, 10_000, this.periodMs);
      if (!result.done) throw new Error(`${this.unit} still ${result.value.activeState} after SIGKILL`);
    }
    return { escalated, signalSentAt, exitedAt: Date.now(), pid: before.mainPid };
  }
}
