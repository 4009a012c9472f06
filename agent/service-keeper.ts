import { SpanKind } from "@opentelemetry/api";
import type { EventOutcome } from "../core/events.ts";
import type { LifelineSpan } from "../core/observability/tracing.ts";
import { startSpan } from "../core/observability/tracing.ts";
import { describeExit, type ExitObserved } from "../core/outcome.ts";
import type { ServiceConfig } from "./config.ts";
import type { ServiceDriver, ServiceState } from "./drivers/driver.ts";
import { probeOnce } from "./probes.ts";
import { type DownCause, decide, freshHistory, type RestartHistory, settled } from "./supervision.ts";

/** What a kept service is doing, as heartbeats and /health show it. */
export type KeeperPhase =
  /** Not kept: stopped by a command, or never seen running. */
  | "stopped"
  /** Kept running; checked every watch interval (and probed, with a liveness probe). */
  | "watching"
  /** Down, and left so by the restart policy (or unhealthy with policy never). */
  | "down"
  | "unhealthy"
  /** Down, a restart scheduled after a backoff delay. */
  | "backoff"
  | "restarting"
  /** Too many restarts in the window: none until a command or the quiet period. */
  | "crash_loop";

/** What the keeper needs from the agent: its events, its per-service queue and its start/stop steps. */
export interface KeeperHost {
  emit(
    action: string,
    outcome: EventOutcome,
    service: string,
    span: LifelineSpan,
    fields: KeeperEventFields,
  ): void;
  /** Runs `task` in the service's queue, after (and before) any command on it. */
  enqueue(service: string, task: () => Promise<void>): void;
  busy(service: string): boolean;
  /** Stops the service if `stopFirst` and it runs, then starts it: the same steps a command takes. */
  restart(
    service: ServiceConfig,
    span: LifelineSpan,
    stopFirst: boolean,
  ): Promise<{ outcome: EventOutcome; reason: string; evidence?: string; exit?: ExitObserved }>;
  saveDesired(service: string, desired: "running" | "stopped", by: string): void;
  metrics?: { restarts(service: string): void; up(service: string, up: boolean): void } | undefined;
  hostName: string;
}

export interface KeeperEventFields {
  reason?: string;
  evidence?: string;
  exit?: ExitObserved;
  output?: string[];
  extra?: Record<string, unknown>;
}

/**
 * Keeps one service running between commands: notices an exit nobody commanded (a watch every interval) and a
 * failing liveness probe, records each as a lifecycle event on an incident trace of its own (the restarts'
 * TRACEPARENT), and restarts per the policy's decision (supervision.ts), through the service's command queue so
 * that a command and a restart never run at once. A stop command suspends it (desired: stopped, timers
 * cancelled); a start or restart command resumes it from a fresh history.
 */
export class ServiceKeeper {
  readonly service: ServiceConfig;
  private readonly driver: ServiceDriver;
  private readonly host: KeeperHost;
  desired: "running" | "stopped";
  phase: KeeperPhase;
  private history: RestartHistory = freshHistory();
  /** Since when the service has been seen running (undefined while down). */
  private upSince: number | undefined;
  private livenessFailures = 0;
  private incident: LifelineSpan | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private livenessTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  nextRestartAt: number | undefined;
  private closed = false;
  private readonly watchIntervalMs: number;

  constructor(
    service: ServiceConfig,
    driver: ServiceDriver,
    host: KeeperHost,
    desired: "running" | "stopped",
  ) {
    this.service = service;
    this.driver = driver;
    this.host = host;
    this.desired = desired;
    this.phase = desired === "running" ? "watching" : "stopped";
    this.watchIntervalMs = service.watchIntervalMs ?? (service.driver === "process" ? 1_000 : 5_000);
  }

  /**
   * Starts watching. A service kept running that is found down here went down while the agent was not
   * looking: recorded as an exit whose code was not observed.
   */
  async open(): Promise<void> {
    if (this.desired === "running") {
      const state = await this.read();
      if (state?.status === "running") this.markUp();
      else if (state && (state.status === "stopped" || state.status === "missing"))
        this.down({ kind: "exited", exit: undefined }, state, "found down when the agent started");
    }
    this.scheduleWatch();
    this.scheduleLiveness();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.watchTimer);
    clearTimeout(this.livenessTimer);
    clearTimeout(this.restartTimer);
    this.incident?.end("unknown", "agent stopped");
    this.incident = undefined;
  }

  /** A stop command was accepted: the supervisor stands down for this service until a start. */
  suspend(commandId: string): void {
    this.desired = "stopped";
    this.phase = "stopped";
    clearTimeout(this.restartTimer);
    this.nextRestartAt = undefined;
    this.upSince = undefined;
    this.incident?.end("unknown", `supervision suspended by command ${commandId}`);
    this.incident = undefined;
    this.host.saveDesired(this.service.name, "stopped", commandId);
  }

  /** A start or restart command was accepted: kept running again, from a fresh history (a crash loop ends). */
  resume(commandId: string): void {
    this.desired = "running";
    this.phase = "watching";
    clearTimeout(this.restartTimer);
    this.nextRestartAt = undefined;
    this.history = freshHistory();
    this.incident?.end("unknown", `superseded by command ${commandId}`);
    this.incident = undefined;
    this.host.saveDesired(this.service.name, "running", commandId);
  }

  /** A start or restart command finished: up from now on success; the policy decides after a failure. */
  commandFinished(action: string, outcome: EventOutcome, reason: string, exit?: ExitObserved): void {
    if (this.desired !== "running" || (action !== "start" && action !== "restart")) return;
    if (outcome === "success") this.markUp();
    else if (outcome === "failure") this.down({ kind: "start_failed", reason, exit }, undefined, reason);
    // unknown: the next watch reads the state and goes on from what it finds.
  }

  /** For heartbeats and /health. */
  report(): Record<string, unknown> {
    return {
      desired: this.desired,
      phase: this.phase,
      policy: this.service.restart.policy,
      restarts_in_window: this.history.restarts.length,
      attempt: this.history.attempt,
      ...(this.nextRestartAt ? { next_restart_at: new Date(this.nextRestartAt).toISOString() } : {}),
    };
  }

  private async read(): Promise<ServiceState | undefined> {
    return Promise.resolve(this.driver.state()).catch(() => undefined);
  }

  private markUp(): void {
    this.phase = "watching";
    this.upSince = Date.now();
    this.livenessFailures = 0;
    this.host.metrics?.up(this.service.name, true);
  }

  private scheduleWatch(): void {
    if (this.closed) return;
    this.watchTimer = setTimeout(
      () => void this.watch().finally(() => this.scheduleWatch()),
      this.watchIntervalMs,
    );
  }

  /** One look at a kept service: an exit nobody commanded is recorded once, when it is first seen. */
  private async watch(): Promise<void> {
    if (this.desired !== "running" || this.host.busy(this.service.name)) return;
    if (this.phase !== "watching" && this.phase !== "unhealthy" && this.phase !== "down") return;
    const state = await this.read();
    if (!state || this.closed || this.desired !== "running" || this.host.busy(this.service.name)) return;
    if (state.status === "running") {
      if (this.upSince === undefined) this.markUp();
      else this.history = settled(this.service.restart, this.history, Date.now() - this.upSince);
      return;
    }
    if ((state.status === "stopped" || state.status === "missing") && this.upSince !== undefined) {
      const exit = await (this.driver.awaitExit
        ? this.driver.awaitExit(1_000)
        : Promise.resolve(this.driver.exited())
      ).catch(() => undefined);
      this.down({ kind: "exited", exit }, state, undefined);
    }
    // starting / stopping / unknown: in the service manager's hands; the next look decides.
  }

  private scheduleLiveness(): void {
    const probe = this.service.liveness;
    if (!probe || this.closed) return;
    this.livenessTimer = setTimeout(
      () => void this.probeLiveness().finally(() => this.scheduleLiveness()),
      probe.periodMs,
    );
  }

  private async probeLiveness(): Promise<void> {
    const probe = this.service.liveness;
    if (!probe || this.desired !== "running" || this.upSince === undefined) return;
    if (this.phase !== "watching" && this.phase !== "unhealthy") return;
    if (this.host.busy(this.service.name) || Date.now() - this.upSince < probe.initialDelayMs) return;
    const healthy = await probeOnce(probe);
    if (this.closed || this.desired !== "running" || this.host.busy(this.service.name)) return;
    if (healthy) {
      if (this.phase === "unhealthy") {
        this.phase = "watching";
        this.emitIncident("service.healthy", "success", {
          reason: "liveness probe passes again",
          evidence: `${probeTarget(probe)} passed`,
        });
        this.endIncident("success", "liveness probe passes again");
      }
      this.livenessFailures = 0;
      return;
    }
    if (++this.livenessFailures < probe.failureThreshold || this.phase === "unhealthy") return;
    this.down(
      { kind: "unhealthy", reason: `liveness probe failed ${this.livenessFailures} times in a row` },
      undefined,
      undefined,
    );
  }

  /** Records why the service is down and carries out the policy's decision. */
  private down(cause: DownCause, state: ServiceState | undefined, note: string | undefined): void {
    // An unhealthy service still runs: its liveness is still probed, and its exit still noticed.
    if (cause.kind !== "unhealthy") this.upSince = undefined;
    this.host.metrics?.up(this.service.name, cause.kind === "unhealthy");
    this.openIncident(cause);
    const { decision, history } = decide(this.service.restart, this.history, cause, Date.now());
    this.history = history;
    const then =
      decision.kind === "leave"
        ? `not restarted: ${decision.reason}`
        : decision.kind === "restart"
          ? `restart ${decision.attempt} in ${decision.delayMs} ms`
          : "crash loop";
    if (cause.kind === "exited") {
      const exitText = cause.exit ? describeExit(cause.exit) : "an exit status the agent could not observe";
      const output = this.driver.lastOutput?.(10) ?? [];
      this.emitIncident("service.exited", exitOutcome(cause.exit), {
        reason: `${note ? `${note}: ` : ""}exited with ${exitText}, no command asked for it; ${then}`,
        evidence: state?.evidence ?? "the service manager reports it down",
        ...(cause.exit ? { exit: cause.exit } : {}),
        ...(output.length > 0 ? { output } : {}),
      });
    } else if (cause.kind === "unhealthy") {
      this.emitIncident("service.unhealthy", "failure", {
        reason: `${cause.reason}; ${then}`,
        evidence: `${probeTarget(this.service.liveness)} failing`,
      });
    }
    // start_failed: the start's own events already say why; the decision follows below.
    if (decision.kind === "leave") {
      this.phase = cause.kind === "unhealthy" ? "unhealthy" : "down";
      if (cause.kind !== "unhealthy") this.endIncident("failure", then);
      return;
    }
    if (decision.kind === "crash_loop") {
      this.phase = "crash_loop";
      this.nextRestartAt = decision.retryAt;
      this.emitIncident("service.crash_loop", "failure", {
        reason: `${decision.restarts} restarts within ${this.service.restart.windowMs} ms: no more until a start command or ${new Date(decision.retryAt).toISOString()}`,
        extra: { lifeline: { restarts: decision.restarts } },
      });
      this.restartTimer = setTimeout(() => {
        // The quiet period is over: one more try, from a fresh history.
        this.history = freshHistory();
        this.scheduleRestart(0, 1, cause.kind === "unhealthy");
      }, decision.retryAt - Date.now());
      return;
    }
    this.emitIncident("service.restart_scheduled", "success", {
      reason: `restart ${decision.attempt} in ${decision.delayMs} ms (policy ${this.service.restart.policy})`,
      extra: { lifeline: { restart: { attempt: decision.attempt, delay_ms: decision.delayMs } } },
    });
    this.scheduleRestart(decision.delayMs, decision.attempt, cause.kind === "unhealthy");
  }

  private scheduleRestart(delayMs: number, attempt: number, stopFirst: boolean): void {
    this.phase = "backoff";
    this.nextRestartAt = Date.now() + delayMs;
    this.restartTimer = setTimeout(() => {
      this.host.enqueue(this.service.name, () => this.restartNow(attempt, stopFirst));
    }, delayMs);
  }

  private async restartNow(attempt: number, stopFirst: boolean): Promise<void> {
    // A command may have come first (queued before this): a stop suspends, a start resumes; either way, not ours.
    if (this.closed || this.desired !== "running" || this.phase !== "backoff") return;
    this.phase = "restarting";
    this.nextRestartAt = undefined;
    const span = this.incident ?? this.openIncident({ kind: "exited", exit: undefined });
    this.host.metrics?.restarts(this.service.name);
    const result = await this.host.restart(this.service, span, stopFirst).catch((error: Error) => ({
      outcome: "unknown" as const,
      reason: error.message,
      evidence: undefined,
      exit: undefined,
    }));
    if (this.closed || this.desired !== "running" || this.phase !== "restarting") return;
    if (result.outcome === "success") {
      this.emitIncident("service.restarted", "success", {
        reason: `restart ${attempt}: ${result.reason}`,
        ...(result.evidence ? { evidence: result.evidence } : {}),
        extra: { lifeline: { restart: { attempt } } },
      });
      this.endIncident("success", `restarted (attempt ${attempt})`);
      this.markUp();
      return;
    }
    this.emitIncident("service.restart_failed", result.outcome, {
      reason: `restart ${attempt}: ${result.reason}`,
      ...(result.evidence ? { evidence: result.evidence } : {}),
      ...(result.exit ? { exit: result.exit } : {}),
      extra: { lifeline: { restart: { attempt } } },
    });
    if (result.outcome === "unknown") {
      // What the service is doing is not known: the next watch reads it and goes on from there.
      this.phase = "watching";
      this.upSince = Date.now();
      return;
    }
    this.down({ kind: "start_failed", reason: result.reason, exit: result.exit }, undefined, undefined);
  }

  private openIncident(cause: DownCause): LifelineSpan {
    if (this.incident) return this.incident;
    // A trace of its own per incident: the exit, every restart and its outcome, until the service is back.
    this.incident = startSpan(`supervise ${this.service.name}: ${cause.kind}`, {
      kind: SpanKind.INTERNAL,
      attributes: {
        "host.name": this.host.hostName,
        "service.name": this.service.name,
        "lifeline.restart_policy": this.service.restart.policy,
      },
    });
    return this.incident;
  }

  private endIncident(outcome: "success" | "failure", message: string): void {
    this.incident?.end(outcome, message);
    this.incident = undefined;
  }

  private emitIncident(action: string, outcome: EventOutcome, fields: KeeperEventFields): void {
    const span = this.incident ?? this.openIncident({ kind: "exited", exit: undefined });
    this.host.emit(action, outcome, this.service.name, span, fields);
  }
}

/** An exit code 0 ended well, a code or signal did not, and an exit not observed is not known. */
function exitOutcome(exit: ExitObserved | undefined): EventOutcome {
  if (!exit) return "unknown";
  return exit.code === 0 && !exit.signal ? "success" : "failure";
}

function probeTarget(probe: ServiceConfig["liveness"]): string {
  if (probe?.http) return `liveness http probe ${probe.http.url}`;
  if (probe?.tcp) return `liveness tcp probe ${probe.tcp.host}:${probe.tcp.port}`;
  return `liveness exec probe ${probe?.exec?.command.join(" ")}`;
}
