import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SpanKind } from "@opentelemetry/api";
import type { Command } from "../core/commands.ts";
import { deterministicId, EVENT_PROVIDERS, type EventOutcome, lifecycleEvent } from "../core/events.ts";
import type { KafkaPort as Kafka } from "../core/kafka/port.ts";
import type { Component } from "../core/lifecycle.ts";
import type { Logger } from "../core/logger.ts";
import { type LifelineSpan, type SpanOutcome, startSpan } from "../core/observability/tracing.ts";
import { describeExit, type ExitObserved, OutcomeError, stopEnding } from "../core/outcome.ts";
import { poll } from "../core/poll.ts";
import { retry } from "../core/retry.ts";
import { topicNames } from "../core/topics.ts";
import { parseTraceparent } from "../core/trace-context.ts";
import { CommandLog, type CommandRecord } from "./command-log.ts";
import type { AgentConfig, HookConfig, ServiceConfig } from "./config.ts";
import { ControlFeed } from "./control-feed.ts";
import type { ServiceDriver } from "./drivers/driver.ts";
import { ProcessDriver } from "./drivers/process.ts";
import { win32Scm } from "./drivers/scm-win32.ts";
import { SystemdDriver } from "./drivers/systemd.ts";
import { type ProcessPort, WindowsProcessDriver, win32Processes } from "./drivers/windows-process.ts";
import { type ScmPort, WindowsServiceDriver } from "./drivers/windows-service.ts";
import { Journal } from "./journal.ts";
import type { AgentMetrics } from "./metrics.ts";
import { probeOnce, runHook, waitHealthy } from "./probes.ts";
import { type KeeperEventFields, ServiceKeeper } from "./service-keeper.ts";
import { CommandVerifier } from "./verifier.ts";

/** What the events of a step assert, and on what evidence (core/outcome.ts). */
interface EventFields {
  reason?: string;
  message?: string;
  pid?: number;
  duration?: number;
  commandId?: string;
  evidence?: string;
  exit?: ExitObserved;
  escalated?: boolean;
  /**
   * A failed action that left the service in a verified, stable state from which the same action may be tried
   * afresh (a start that left it stopped, a stop that left it running): the controller may retry it.
   */
  retryable?: boolean;
  /** The last lines a service wrote before it died. */
  output?: string[];
  /** What an unverified message claimed to be: never the command's own fields. */
  claimed?: Record<string, unknown>;
  extra?: Record<string, unknown>;
}

interface ActionResult {
  outcome: EventOutcome;
  reason: string;
  fields: EventFields;
}

/** How far an action may go: the command's deadline (or the keeper's), and a command's shorter grace period. */
interface ActionLimits {
  deadline: number;
  gracePeriodMs?: number;
}

/** Thrown by a step whose outcome is already in the journal, so execute() records it as it is. */
class StepOutcome extends Error {
  readonly outcome: EventOutcome;
  readonly fields: EventFields;
  constructor(outcome: EventOutcome, reason: string, fields: EventFields = {}) {
    super(reason);
    this.outcome = outcome;
    this.fields = fields;
  }
}

/** Rejections of a command whose signature verified: those speak for the command (expired, not allowed here). */
const AUTHENTIC_REJECTIONS = new Set([
  "expired",
  "unknown_service",
  "action_not_allowed",
  "parameter_not_allowed",
]);

/** What an unverified message claimed, kept apart from the fields that identify a real command. */
function claimedOf(command: Command, raw: unknown): Record<string, unknown> {
  return {
    command_id: command.id,
    action: command.action,
    service: command.service,
    issuer: command.issuer,
    key_id: (raw as { keyId?: string }).keyId,
    ...(command.rolloutId ? { rollout_id: command.rolloutId } : {}),
    ...(command.traceparent ? { traceparent: command.traceparent } : {}),
  };
}

function probeName(probe: NonNullable<ServiceConfig["health"]>): string {
  if (probe.http) return `http probe ${probe.http.url}`;
  if (probe.tcp) return `tcp probe ${probe.tcp.host}:${probe.tcp.port}`;
  return `exec probe ${probe.exec?.command.join(" ")}`;
}

interface Context {
  command?: Command;
  /** Set from the command journal when there is no Command object (an agent restarted mid-action). */
  commandId?: string;
  rolloutId?: string;
  action?: string;
  issuer?: string;
  service?: string;
  /** The agent's span for the command: a child of the span that sent it (the command's traceparent). */
  span?: LifelineSpan;
}

/**
 * Runs verified commands on this host's declared services, one action at a time per service, and writes every
 * step as a lifecycle event to the journal (fsynced; the shipper carries it to Kafka). The command id is journaled
 * before acting; the Kafka offset is committed after the command is accepted into its service's queue.
 */
export class Agent implements Component {
  readonly name = "agent";
  private readonly config: AgentConfig;
  private readonly kafka: Kafka;
  private readonly logger: Logger;
  private readonly drivers = new Map<string, ServiceDriver>();
  private readonly queues = new Map<string, Promise<void>>();
  /** Tasks queued or running per service: the keeper does not judge a service while a command acts on it. */
  private readonly pending = new Map<string, number>();
  private readonly keepers = new Map<string, ServiceKeeper>();
  private readonly metrics: AgentMetrics | undefined;
  private started = false;
  private lifecycle: Journal | undefined;
  private commands: CommandLog | undefined;
  private verifier: CommandVerifier | undefined;
  private feed: ControlFeed | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private sequence = 0;
  /** Interrupted stops being watched until their service is down. */
  private readonly drains = new Set<NodeJS.Timeout>();

  constructor(options: { config: AgentConfig; kafka: Kafka; logger: Logger; metrics?: AgentMetrics }) {
    this.config = options.config;
    this.kafka = options.kafka;
    this.logger = options.logger;
    this.metrics = options.metrics;
    for (const service of this.config.services)
      this.drivers.set(service.name, driverFor(service, this.config.stateDir));
  }

  get journalPath(): string {
    return this.config.journal ?? join(this.config.stateDir, "journal.ndjson");
  }

  async start(): Promise<void> {
    this.lifecycle = new Journal(this.journalPath, this.config.journalRotation);
    const commands = new CommandLog(join(this.config.stateDir, "commands.ndjson"), {
      forgetAfterExpiryMs: this.config.forgetCommandsAfterExpiryMs,
    });
    this.commands = commands;
    this.verifier = new CommandVerifier(this.config, (id) => commands.has(id));
    await this.reportInterrupted(commands.unfinished());
    // The host's partition of the control topic, read without a consumer group (agent/control-feed.ts). "started"
    // means one fetch from the resolved position completed, so a command sent right after is seen.
    this.feed = new ControlFeed({
      reader: this.kafka.partitionReader(),
      topic: topicNames(this.config.topicPrefix).control,
      host: this.config.host.name,
      stateDir: this.config.stateDir,
      logger: this.logger,
      onMessage: (message) => {
        this.metrics?.controlRecordsRead.inc();
        this.onMessage(message.value);
      },
    });
    await this.feed.start();
    this.emit("agent.started", "success", {}, { message: `agent on ${this.config.host.name}` });
    await this.openKeepers();
    this.started = true;
    await this.sendHeartbeat();
    this.heartbeat = setInterval(() => void this.sendHeartbeat(), this.config.heartbeatIntervalMs);
  }

  async stop(): Promise<void> {
    this.started = false;
    clearInterval(this.heartbeat);
    for (const keeper of this.keepers.values()) keeper.close();
    for (const timer of this.drains) clearInterval(timer);
    this.drains.clear();
    await this.feed?.stop().catch(() => {});
    await Promise.all(this.queues.values());
    if (this.lifecycle) this.emit("agent.stopped", "success", {});
    this.lifecycle?.close();
    this.commands?.close();
    this.lifecycle = undefined;
  }

  private onMessage(value: Buffer | null): void {
    let raw: unknown;
    try {
      raw = JSON.parse(String(value));
    } catch {
      this.emit("command.rejected", "failure", {}, { reason: "malformed", message: "command is not JSON" });
      return;
    }
    const verdict = this.verifier?.verify(raw);
    if (!verdict || verdict.kind === "not_for_us") return;
    if (verdict.kind === "rejected") {
      // Only a command whose signature verified speaks for itself. Anything else (tampered, unknown key,
      // malformed) is recorded with what it claimed under lifeline.claimed, off the claimed command's trace.
      const authentic = verdict.command && AUTHENTIC_REJECTIONS.has(verdict.reason);
      const context = authentic && verdict.command ? this.contextOf(verdict.command) : {};
      const claimed = !authentic && verdict.command ? claimedOf(verdict.command, raw) : undefined;
      this.emit("command.rejected", "failure", context, {
        reason: verdict.reason,
        message: verdict.detail,
        evidence: verdict.detail,
        ...(claimed ? { claimed } : {}),
      });
      context.span?.end("failure", `rejected: ${verdict.reason}`);
      return;
    }
    const context = this.contextOf(verdict.command);
    if (verdict.kind === "duplicate") {
      const recorded = this.commands?.get(verdict.command.id);
      this.emit("command.duplicate", recorded?.outcome ?? "unknown", context, {
        reason:
          recorded?.state === "done"
            ? `already ran: ${recorded.reason ?? recorded.outcome}`
            : "already accepted, in progress",
      });
      context.span?.end("unknown");
      return;
    }
    const { command, service } = verdict;
    this.commands?.append({
      id: command.id,
      state: "accepted",
      service: service.name,
      action: command.action,
      ...(command.rolloutId ? { rolloutId: command.rolloutId } : {}),
      ...(command.traceparent ? { traceparent: command.traceparent } : {}),
      deadline: command.deadline,
      expiresAt: command.expiresAt,
      issuer: command.issuer,
      at: new Date().toISOString(),
    });
    this.emit("command.received", "success", context, { message: `${command.action} ${service.name}` });
    // The supervisor stands down at once for a stop (not after the queue gets to it: a restart it has scheduled
    // must not run first), and a start or restart makes the service one to keep running.
    const keeper = this.keepers.get(service.name);
    if (command.action === "stop") keeper?.suspend(command.id);
    if (command.action === "start" || command.action === "restart") keeper?.resume(command.id);
    this.enqueue(service.name, () => this.execute(command, service, context));
  }

  /** Runs `task` after everything queued for the service: one action at a time per service. */
  private enqueue(service: string, task: () => Promise<void>): void {
    this.pending.set(service, (this.pending.get(service) ?? 0) + 1);
    const previous = this.queues.get(service) ?? Promise.resolve();
    const next = previous
      .then(task)
      .catch((error: Error) => this.logger.error({ service, err: error }, "service task failed"))
      .finally(() => this.pending.set(service, (this.pending.get(service) ?? 1) - 1));
    this.queues.set(service, next);
  }

  /** Health for /health: started, and what each kept service is doing. */
  health(): { healthy: boolean; details: Record<string, unknown> } {
    return {
      healthy: this.started,
      details: {
        host: this.config.host.name,
        control: this.feed?.report(),
        services: this.supervision(),
      },
    };
  }

  private supervision(): Record<string, unknown> {
    return Object.fromEntries([...this.keepers].map(([name, keeper]) => [name, keeper.report()]));
  }

  private get desiredPath(): string {
    return join(this.config.stateDir, "desired.json");
  }

  /** What the agent was last asked to keep each service at, written anew (then renamed over) on every change. */
  private readDesired(): Record<string, { desired: "running" | "stopped"; by: string; at: string }> {
    try {
      return JSON.parse(readFileSync(this.desiredPath, "utf8"));
    } catch {
      return {};
    }
  }

  private saveDesired(service: string, desired: "running" | "stopped", by: string): void {
    const all = this.readDesired();
    all[service] = { desired, by, at: new Date().toISOString() };
    writeFileSync(`${this.desiredPath}.tmp`, JSON.stringify(all));
    renameSync(`${this.desiredPath}.tmp`, this.desiredPath);
  }

  /**
   * One keeper per service. What it keeps: the desired state a command last set (desired.json), or, for a
   * service no command has touched, what it is now (running: kept running; anything else: left alone).
   */
  private async openKeepers(): Promise<void> {
    const saved = this.readDesired();
    for (const service of this.config.services) {
      const driver = this.drivers.get(service.name) as ServiceDriver;
      const cleared = await driver
        .clearTraceContext?.()
        .catch((error: Error) => `not cleared: ${error.message}`);
      if (cleared) this.logger.warn({ service: service.name }, `trace context: ${cleared}`);
      let desired = saved[service.name]?.desired;
      if (!desired) {
        const state = await Promise.resolve(driver.state()).catch(() => undefined);
        desired = state?.status === "running" ? "running" : "stopped";
      }
      const keeper = new ServiceKeeper(service, driver, this.keeperHost(), desired);
      this.keepers.set(service.name, keeper);
      await keeper.open();
    }
  }

  private keeperHost() {
    return {
      hostName: this.config.host.name,
      metrics: this.metrics,
      emit: (
        action: string,
        outcome: EventOutcome,
        service: string,
        span: LifelineSpan,
        fields: KeeperEventFields,
      ) => this.emit(action, outcome, { service, span }, fields),
      enqueue: (service: string, task: () => Promise<void>) => this.enqueue(service, task),
      busy: (service: string) => (this.pending.get(service) ?? 0) > 0,
      saveDesired: (service: string, desired: "running" | "stopped", by: string) =>
        this.saveDesired(service, desired, by),
      restart: (service: ServiceConfig, span: LifelineSpan, stopFirst: boolean) =>
        this.restartForKeeper(service, span, stopFirst),
    };
  }

  /** A restart the keeper decided: the same steps as a command's, on the incident's trace. */
  private async restartForKeeper(
    service: ServiceConfig,
    span: LifelineSpan,
    stopFirst: boolean,
  ): Promise<{ outcome: EventOutcome; reason: string; evidence?: string; exit?: ExitObserved }> {
    const context: Context = { service: service.name, span };
    try {
      if (stopFirst) {
        const stopped = await this.stopService(
          service,
          { deadline: Date.now() + service.gracePeriodMs + 30_000 },
          context,
        );
        if (stopped.outcome !== "success") return { outcome: stopped.outcome, reason: stopped.reason };
      }
      const started = await this.startService(
        service,
        { deadline: Date.now() + service.startTimeoutMs },
        context,
      );
      return {
        outcome: started.outcome,
        reason: started.reason,
        ...(started.fields.evidence ? { evidence: started.fields.evidence } : {}),
      };
    } catch (error) {
      const failure = await this.failureOf(error, service);
      return {
        outcome: failure.outcome,
        reason: failure.reason,
        ...(failure.fields.evidence ? { evidence: failure.fields.evidence } : {}),
        ...(failure.fields.exit ? { exit: failure.fields.exit } : {}),
      };
    }
  }

  private async execute(command: Command, service: ServiceConfig, context: Context): Promise<void> {
    const began = Date.now();
    let result: ActionResult;
    try {
      if (Date.parse(command.deadline) <= began) {
        throw new OutcomeError(
          "timeout",
          "deadline passed before the action could start",
          `deadline ${command.deadline}, now ${new Date(began).toISOString()}`,
        );
      }
      const how: ActionLimits = {
        deadline: Date.parse(command.deadline),
        ...(command.parameters.gracePeriodMs !== undefined
          ? { gracePeriodMs: command.parameters.gracePeriodMs }
          : {}),
      };
      switch (command.action) {
        case "stop":
          result = await this.stopService(service, how, context);
          break;
        case "start":
          result = await this.startService(service, how, context);
          break;
        case "restart": {
          const stopped = await this.stopService(service, how, context);
          const started = await this.startService(service, how, context);
          result = {
            outcome: stopped.outcome === "success" ? started.outcome : stopped.outcome,
            reason:
              stopped.outcome === "success"
                ? `restarted: ${started.reason}`
                : `${stopped.reason}; then ${started.reason}`,
            fields: { ...stopped.fields, ...started.fields, escalated: Boolean(stopped.fields.escalated) },
          };
          break;
        }
        default: {
          const state = await (this.drivers.get(service.name) as ServiceDriver).state();
          // What was observed, structured: the status as its manager reports it, the pid, and (running, with a
          // health probe) whether the probe passes now. The command succeeds when the state could be read.
          const healthy =
            state.status === "running" && service.health ? await probeOnce(service.health) : undefined;
          result = {
            outcome: state.status === "unknown" || state.status === "missing" ? "failure" : "success",
            reason: state.running ? `running (pid ${state.pid})` : (state.detail ?? state.status),
            fields: {
              evidence: `${state.evidence}${healthy === undefined ? "" : `; ${probeName(service.health as NonNullable<ServiceConfig["health"]>)} ${healthy ? "passed" : "failed"}`}`,
              extra: {
                lifeline: {
                  observed: {
                    status: state.status,
                    ...(state.pid !== undefined ? { pid: state.pid } : {}),
                    ...(healthy !== undefined ? { healthy } : {}),
                  },
                },
              },
            },
          };
        }
      }
    } catch (error) {
      result = await this.failureOf(error, service);
    }
    if (result.outcome === "failure" && command.action !== "status")
      result = await this.withRetryable(result, command.action, service);
    const { outcome, reason, fields } = result;
    this.emit("command.completed", outcome, context, {
      ...fields,
      reason,
      duration: (Date.now() - began) * 1e6,
    });
    context.span?.setAttributes({
      "lifeline.result": reason,
      ...(fields.evidence ? { "lifeline.evidence": fields.evidence } : {}),
    });
    context.span?.end(outcome === "success" ? "success" : "failure", reason);
    this.commands?.append({
      id: command.id,
      state: "done",
      service: service.name,
      action: command.action,
      outcome,
      reason,
      at: new Date().toISOString(),
    });
    this.metrics?.commands.inc({ action: command.action, outcome });
    this.keepers.get(service.name)?.commandFinished(command.action, outcome, reason, fields.exit);
  }

  /**
   * What a thrown error means for the outcome. A driver's OutcomeError and a step's own outcome are verified
   * failures with their evidence; anything else (an unexpected error mid-action) leaves the service's state
   * unverified: `unknown`, with the state read now as what is known.
   */
  /**
   * A failure is retryable only when the service's manager says, after it, that the service is where a fresh
   * attempt starts from: stopped for a start or restart (never running: a second start would find it running and
   * succeed without its health check), running for a stop. Anything else (pending, unknown, missing) is not.
   */
  private async withRetryable(
    result: ActionResult,
    action: Command["action"],
    service: ServiceConfig,
  ): Promise<ActionResult> {
    const after = await Promise.resolve(this.drivers.get(service.name)?.state()).catch(() => undefined);
    const clean = action === "stop" ? "running" : "stopped";
    if (after?.status !== clean) return result;
    return {
      ...result,
      fields: {
        ...result.fields,
        retryable: true,
        evidence: `${result.fields.evidence ?? result.reason}; then ${after.evidence}`,
      },
    };
  }

  private async failureOf(error: unknown, service: ServiceConfig): Promise<ActionResult> {
    if (error instanceof StepOutcome)
      return { outcome: error.outcome, reason: error.message, fields: error.fields };
    if (error instanceof OutcomeError) {
      return {
        outcome: "failure",
        reason: error.message,
        fields: {
          evidence: error.evidence,
          ...(error.exitCode !== undefined ? { exit: { code: error.exitCode } } : {}),
        },
      };
    }
    const message = (error as Error).message;
    const now = await Promise.resolve(this.drivers.get(service.name)?.state()).catch(() => undefined);
    return {
      outcome: "unknown",
      reason: `${message}; service is ${now ? now.evidence : "in a state that could not be read"}`,
      fields: { evidence: now?.evidence ?? `error: ${message}` },
    };
  }

  private async stopService(
    service: ServiceConfig,
    limits: ActionLimits,
    context: Context,
  ): Promise<ActionResult> {
    const driver = this.drivers.get(service.name) as ServiceDriver;
    this.emit("stop.requested", "success", context);
    const state = await driver.state();
    if (state.status === "stopped")
      return { outcome: "success", reason: "already_stopped", fields: { evidence: state.evidence } };
    // Any other state goes to the driver: it follows pending states and fails on missing or unknown ones.
    const preStop = service.preStop;
    if (preStop && state.running) {
      await this.hook(preStop, "pre-stop hook", "stop.pre_stop_hook", context);
    }
    const grace = limits.gracePeriodMs ?? service.gracePeriodMs;
    const how = driver.stopControl;
    this.emit("stop.signal_sent", "success", context, {
      ...(state.pid !== undefined ? { pid: state.pid } : {}),
      message: `${how}${state.pid !== undefined ? ` (pid ${state.pid})` : ""}, grace ${grace} ms`,
      evidence: state.evidence,
    });
    const result = await this.phase(
      context,
      `stop: ${driver.stopSignal}, grace ${grace} ms`,
      async (span) => {
        const stopped = await driver.stop(grace);
        span.setAttributes({ "lifeline.escalated": Boolean(stopped?.escalated) });
        return stopped;
      },
    );
    if (!result) {
      return {
        outcome: "success",
        reason: "already_stopped",
        fields: { evidence: "the service manager reported it stopped before the stop was sent" },
      };
    }
    const duration = (result.exitedAt - result.signalSentAt) * 1e6;
    if (result.escalated) {
      this.emit("stop.escalated", "success", context, {
        pid: result.pid,
        reason: `grace period of ${grace} ms exceeded: ${driver.killControl}`,
        duration,
        escalated: true,
        evidence: result.evidence,
      });
    }
    const ending = stopEnding(result.exit, driver.stopSignal, result.escalated);
    const outcome: EventOutcome = ending === "exited_with_error" ? "failure" : "success";
    const fields: EventFields = {
      evidence: result.evidence,
      escalated: result.escalated,
      ...(result.exit ? { exit: result.exit } : {}),
    };
    this.emit("stop.completed", outcome, context, {
      ...fields,
      pid: result.pid,
      duration,
      reason: ending === "exit_unobserved" ? "exited (exit code not observable)" : ending,
    });
    const reason =
      ending === "exited_with_error"
        ? `stopped, but ${describeExit(result.exit)} during a graceful stop`
        : result.escalated
          ? "stopped (escalated)"
          : "stopped";
    const postStop = service.postStop;
    if (postStop) {
      // The stop is verified: a failing hook is recorded on its own event and does not undo that.
      await this.hook(postStop, "post-stop hook", "stop.post_stop_hook", context);
    }
    return { outcome, reason, fields };
  }

  private async startService(
    service: ServiceConfig,
    how: ActionLimits,
    context: Context,
  ): Promise<ActionResult> {
    const driver = this.drivers.get(service.name) as ServiceDriver;
    const state = await driver.state();
    if (state.status === "running")
      return { outcome: "success", reason: "already_running", fields: { evidence: state.evidence } };
    const began = Date.now();
    const deadline = Math.min(began + service.startTimeoutMs, how.deadline);
    for (const dependency of service.dependsOn) await this.awaitDependency(dependency, deadline, context);
    const preStart = service.preStart;
    if (preStart) {
      const hookFailed = await this.hook(preStart, "pre-start hook", "start.pre_start_hook", context);
      if (hookFailed)
        throw new StepOutcome("failure", `pre-start hook failed: ${hookFailed}`, {
          evidence: `not started: ${hookFailed}`,
        });
    }
    const traceparent = context.span?.traceparent;
    const started = await this.phase(context, "spawn", async () =>
      driver.start(traceparent ? { TRACEPARENT: traceparent } : {}, Math.max(0, deadline - Date.now())),
    );
    const { pid } = started;
    this.emit("start.spawned", "success", context, {
      pid,
      evidence: started.evidence,
      ...(started.traceContext ? { extra: { trace_context: started.traceContext } } : {}),
    });
    const gaveUp = async () => {
      const exit = await driver.exited();
      if (exit !== undefined) return `process exited with ${describeExit(exit)} while starting`;
      return Date.now() > deadline ? `not healthy within ${deadline - began} ms` : undefined;
    };
    const probe = service.health;
    let evidence: string;
    let failed: string | undefined;
    if (probe) {
      const health = await this.phase(context, "health probe", () => waitHealthy(probe, gaveUp));
      failed = health.healthy ? undefined : health.reason;
      evidence = health.healthy ? `${probeName(probe)} passed` : `${probeName(probe)}: ${health.reason}`;
    } else {
      // No probe: the service must stay up for minUptimeMs, watched for its exit all along.
      const upSince = Date.now();
      failed = await this.phase(context, `minimum uptime ${service.minUptimeMs} ms`, async () => {
        const { value } = await poll(
          async () => {
            const reason = await gaveUp();
            return {
              done: reason !== undefined || Date.now() - upSince >= service.minUptimeMs,
              value: reason,
            };
          },
          { timeoutMs: Number.POSITIVE_INFINITY, intervalMs: 50 },
        );
        return value;
      });
      evidence =
        failed ??
        `pid ${pid} alive ${Date.now() - upSince} ms after start (minUptimeMs ${service.minUptimeMs})`;
    }
    if (failed) {
      const exit = await driver.exited();
      const output = driver.lastOutput?.(10) ?? [];
      const fields: EventFields = {
        evidence,
        ...(exit ? { exit } : {}),
        ...(output.length > 0 ? { output } : {}),
      };
      this.emit(exit ? "start.exited" : "start.probe_failed", "failure", context, {
        ...fields,
        pid,
        reason: failed,
        duration: (Date.now() - began) * 1e6,
      });
      throw new StepOutcome("failure", failed, fields);
    }
    this.emit("start.healthy", "success", context, { pid, duration: (Date.now() - began) * 1e6, evidence });
    const postStart = service.postStart;
    if (postStart) {
      const hookFailed = await this.hook(postStart, "post-start hook", "start.post_start_hook", context);
      if (hookFailed) throw new StepOutcome("failure", `post-start hook failed: ${hookFailed}`, { evidence });
    }
    // The pid it started, on the command's completion too: a later status tells the same process from a new one.
    return {
      outcome: "success",
      reason: "started",
      fields: { evidence, ...(pid !== undefined ? { pid } : {}) },
    };
  }

  /**
   * Waits until a local service this one depends on is healthy (its health probe passes; running, without one),
   * checking again after a growing delay, until the start's deadline. The wait is a span; each check that finds
   * it not ready is an event with what was found.
   */
  private async awaitDependency(name: string, deadline: number, context: Context): Promise<void> {
    const dependency = this.config.services.find((s) => s.name === name) as ServiceConfig;
    const driver = this.drivers.get(name) as ServiceDriver;
    const began = Date.now();
    await this.phase(context, `wait for ${name}`, (span) =>
      retry(
        async (attempt) => {
          const state = await Promise.resolve(driver.state()).catch(() => undefined);
          const probe = dependency.health;
          const ready =
            state?.status === "running" && (probe ? await probeOnce(probe) : true)
              ? undefined
              : state?.status !== "running"
                ? `${name} is ${state?.status ?? "in a state that could not be read"}`
                : `${name} runs, ${probeName(probe as NonNullable<ServiceConfig["health"]>)} fails`;
          if (ready) throw new DependencyNotReady(ready, state?.evidence ?? ready);
          span.setAttributes({ "lifeline.attempts": attempt + 1 });
          this.emit("start.dependency_ready", "success", context, {
            reason: `${name} healthy after ${attempt + 1} checks`,
            duration: (Date.now() - began) * 1e6,
            evidence: probe ? `${probeName(probe)} passed` : (state?.evidence ?? ""),
          });
        },
        {
          retries: Number.POSITIVE_INFINITY,
          initialDelayMs: 250,
          maxDelayMs: 5_000,
          jitter: "equal",
          shouldRetry: (error) => error instanceof DependencyNotReady,
          onRetry: (error, attempt, wait) => {
            const { message, evidence } = error as DependencyNotReady;
            if (Date.now() + wait > deadline) {
              throw new StepOutcome(
                "failure",
                `dependency ${name} not healthy before the start's deadline: ${message}`,
                { evidence },
              );
            }
            this.emit("start.dependency_waiting", "unknown", context, {
              reason: `${message}; check ${attempt + 1} in ${wait} ms`,
              evidence,
            });
          },
        },
      ),
    );
  }

  /** Runs a hook as a traced phase and records it on its own event; resolves with why it failed, if it did. */
  private async hook(
    hook: HookConfig,
    phase: string,
    action: string,
    context: Context,
  ): Promise<string | undefined> {
    const began = Date.now();
    const failed = await this.phase(context, phase, () => runHook(hook, this.hookEnv(context)));
    this.emit(action, failed ? "failure" : "success", context, {
      reason: failed ?? "ok",
      duration: (Date.now() - began) * 1e6,
    });
    return failed;
  }

  private hookEnv(context: Context): Record<string, string> {
    return {
      LIFELINE_SERVICE: context.service ?? "",
      LIFELINE_COMMAND_ID: context.command?.id ?? "",
      ...(context.span ? { TRACEPARENT: context.span.traceparent } : {}),
    };
  }

  /**
   * Commands accepted but never finished: the agent died mid-action. Their outcome is `unknown` with the state
   * read now, on the command's own trace and rollout (journaled on acceptance). A stop whose service is still
   * draining is then watched: when it is down, or still up at the command's deadline, that is recorded too.
   */
  private async reportInterrupted(history: CommandRecord[]): Promise<void> {
    const done = new Set(history.filter((entry) => entry.state === "done").map((entry) => entry.id));
    for (const entry of history) {
      if (entry.state !== "accepted" || done.has(entry.id)) continue;
      const driver = this.drivers.get(entry.service);
      const state = await Promise.resolve(driver?.state()).catch(() => undefined);
      const parent = entry.traceparent ? parseTraceparent(entry.traceparent) : undefined;
      const span = parent
        ? startSpan(`agent ${entry.action} ${entry.service} (after an agent restart)`, {
            parent,
            kind: SpanKind.CONSUMER,
            attributes: {
              "host.name": this.config.host.name,
              "service.name": entry.service,
              "lifeline.command_id": entry.id,
              "lifeline.action": entry.action,
            },
          })
        : undefined;
      const context: Context = {
        service: entry.service,
        commandId: entry.id,
        action: entry.action,
        ...(entry.rolloutId ? { rolloutId: entry.rolloutId } : {}),
        ...(entry.issuer ? { issuer: entry.issuer } : {}),
        ...(span ? { span } : {}),
      };
      const found = state ? state.status : "unknown";
      const reason = `agent restarted during ${entry.action}; service is ${found}`;
      this.emit("command.completed", "unknown", context, {
        reason,
        evidence: state?.evidence ?? "the service's state could not be read",
      });
      span?.end("unknown", reason);
      this.commands?.append({
        ...entry,
        state: "done",
        outcome: "unknown",
        reason: `interrupted; service ${found}`,
        at: new Date().toISOString(),
      });
      if (
        driver &&
        state &&
        state.status !== "stopped" &&
        (entry.action === "stop" || entry.action === "restart")
      )
        this.watchDrain(driver, context, entry);
    }
  }

  /** Follows a stop interrupted by an agent restart until the service is down or the command's deadline. */
  private watchDrain(driver: ServiceDriver, context: Context, entry: CommandRecord): void {
    const deadline = Math.min(
      Math.max(Date.parse(entry.deadline ?? "") || 0, Date.now() + 30_000),
      Date.now() + 3_600_000,
    );
    const timer = setInterval(async () => {
      const state = await Promise.resolve(driver.state()).catch(() => undefined);
      if (state?.status === "stopped") {
        this.drains.delete(timer);
        clearInterval(timer);
        this.emit("stop.observed", "success", context, {
          reason: "stopped after the agent restarted (exit code not observable)",
          evidence: state.evidence,
        });
      } else if (Date.now() > deadline) {
        this.drains.delete(timer);
        clearInterval(timer);
        this.emit("stop.observed", "unknown", context, {
          reason: `still ${state?.status ?? "unknown"} at the command's deadline`,
          evidence: state?.evidence ?? "the service's state could not be read",
        });
      }
    }, 250);
    this.drains.add(timer);
  }

  private async sendHeartbeat(): Promise<void> {
    const services: Record<string, string> = {};
    for (const [name, driver] of this.drivers) {
      const state = await Promise.resolve(driver.state()).catch(
        () => ({ running: false, detail: "unknown" }) as const,
      );
      services[name] = state.running ? "running" : (state.detail ?? "stopped");
    }
    this.emit(
      "agent.heartbeat",
      "success",
      {},
      {
        extra: {
          agent: {
            version: "0.1.0",
            groups: this.config.host.groups,
            labels: this.config.host.labels,
            services,
            supervision: this.supervision(),
          },
        },
      },
    );
  }

  private contextOf(command: Command): Context {
    const span = startSpan(`agent ${command.action} ${command.service}`, {
      parent: parseTraceparent(command.traceparent),
      kind: SpanKind.CONSUMER,
      attributes: {
        "host.name": this.config.host.name,
        "service.name": command.service,
        "lifeline.command_id": command.id,
        "lifeline.action": command.action,
      },
    });
    return { command, service: command.service, span };
  }

  /** One step of an action as a child span of the command's. */
  private async phase<T>(
    context: Context,
    name: string,
    run: (span: LifelineSpan) => Promise<T>,
  ): Promise<T> {
    const span = startSpan(name, { parent: context.span });
    let outcome: SpanOutcome = "success";
    let message: string | undefined;
    try {
      const result = await run(span);
      // Hooks and probes report failure as a value, not an exception.
      if (typeof result === "string") [outcome, message] = ["failure", result];
      if (
        typeof result === "object" &&
        result !== null &&
        (result as { healthy?: boolean }).healthy === false
      ) {
        [outcome, message] = ["failure", (result as { reason?: string }).reason];
      }
      return result;
    } catch (error) {
      [outcome, message] = ["failure", (error as Error).message];
      throw error;
    } finally {
      span.end(outcome, message);
    }
  }

  private emit(action: string, outcome: EventOutcome, context: Context, fields: EventFields = {}): void {
    const now = new Date();
    const commandId = context.command?.id ?? context.commandId ?? fields.commandId;
    const rolloutId = context.command?.rolloutId ?? context.rolloutId;
    const commandAction = context.command?.action ?? context.action;
    const issuer = context.command?.issuer ?? context.issuer;
    const exitCode = fields.exit?.code ?? undefined;
    const signal = fields.exit?.signal ?? undefined;
    // Extra top-level fields; their `lifeline` object goes into the envelope's, not over it.
    const { lifeline: extraLifeline, ...extra } = (fields.extra ?? {}) as {
      lifeline?: Record<string, unknown>;
    };
    const event = lifecycleEvent({
      at: now,
      id: deterministicId(this.config.host.name, "agent", process.pid, now.getTime(), this.sequence),
      sequence: this.sequence++,
      provider: EVENT_PROVIDERS.agent,
      host: this.config.host.name,
      service: context.service,
      category: ["process"],
      action,
      outcome,
      message: fields.message ?? `${action}${fields.reason ? `: ${fields.reason}` : ""}`,
      duration: fields.duration,
      reason: fields.reason,
      process: { pid: fields.pid, exit_code: exitCode, signal },
      span: context.span,
      lifeline: {
        ...(commandId ? { command_id: commandId } : {}),
        ...(rolloutId ? { rollout_id: rolloutId } : {}),
        ...(commandAction ? { action: commandAction } : {}),
        ...(issuer ? { issuer } : {}),
        ...(fields.evidence ? { evidence: fields.evidence } : {}),
        ...(fields.escalated !== undefined ? { escalated: fields.escalated } : {}),
        ...(fields.retryable ? { retryable: true } : {}),
        ...(fields.output ? { output: fields.output } : {}),
        ...(fields.claimed ? { claimed: fields.claimed } : {}),
        ...extraLifeline,
      },
      extra,
    });
    this.lifecycle?.append(event);
    this.metrics?.events.inc({ action, outcome });
    this.logger.info(
      { action, outcome, service: context.service, commandId, reason: fields.reason },
      "lifecycle event",
    );
  }
}

/** A dependency found not ready yet: what it is, and the state read as evidence. */
class DependencyNotReady extends Error {
  readonly evidence: string;
  constructor(reason: string, evidence: string) {
    super(reason);
    this.evidence = evidence;
  }
}

/** One Win32 worker thread each for all of an agent's Windows services and programs, not one per service. */
let sharedScm: ScmPort | undefined;
let sharedProcesses: ProcessPort | undefined;
function scmPort(): ScmPort {
  sharedScm ??= win32Scm();
  return sharedScm;
}
function processPort(): ProcessPort {
  sharedProcesses ??= win32Processes();
  return sharedProcesses;
}

/** The driver for a declared service on this platform (`platform` for tests). */
export function driverFor(
  service: ServiceConfig,
  stateDir: string,
  platform: NodeJS.Platform = process.platform,
): ServiceDriver {
  if (service.driver === "systemd") return new SystemdDriver(service.unit as string);
  // On Windows the SCM's own API; elsewhere (a config checked on Linux) sc.exe, which will fail visibly.
  if (service.driver === "windows-service")
    return new WindowsServiceDriver(
      service.serviceName as string,
      platform === "win32" ? scmPort() : undefined,
      250,
      { stopDependents: service.stopDependents, suspendRecovery: service.suspendRecovery },
    );
  // Job objects and CTRL_C on Windows; process groups and signals elsewhere.
  if (platform === "win32") return new WindowsProcessDriver(service, stateDir, processPort());
  return new ProcessDriver(service, stateDir);
}
