import { join } from "node:path";
import { SpanKind } from "@opentelemetry/api";
import type { Consumer, Kafka } from "kafkajs";
import type { Command } from "../core/commands.ts";
import { deterministicId, type EventOutcome, SCHEMA_VERSION } from "../core/events.ts";
import type { Component } from "../core/lifecycle.ts";
import type { Logger } from "../core/logger.ts";
import { type LifelineSpan, type SpanOutcome, startSpan } from "../core/observability/tracing.ts";
import { parseTraceparent } from "../core/trace-context.ts";
import type { AgentConfig, ServiceConfig } from "./config.ts";
import type { ServiceDriver } from "./drivers/driver.ts";
import { ProcessDriver } from "./drivers/process.ts";
import { SystemdDriver } from "./drivers/systemd.ts";
import { WindowsServiceDriver } from "./drivers/windows-service.ts";
import { Journal } from "./journal.ts";
import { runHook, waitHealthy } from "./probes.ts";
import { CommandVerifier } from "./verifier.ts";

interface CommandRecord {
  id: string;
  state: "accepted" | "done";
  service: string;
  action: string;
  outcome?: EventOutcome;
  reason?: string;
  at: string;
}

interface Context {
  command?: Command;
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
  private lifecycle: Journal | undefined;
  private commands: Journal | undefined;
  private verifier: CommandVerifier | undefined;
  private consumer: Consumer | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private sequence = 0;

  constructor(options: { config: AgentConfig; kafka: Kafka; logger: Logger }) {
    this.config = options.config;
    this.kafka = options.kafka;
    this.logger = options.logger;
    for (const service of this.config.services)
      this.drivers.set(service.name, driverFor(service, this.config.stateDir));
  }

  get journalPath(): string {
    return this.config.journal ?? join(this.config.stateDir, "journal.ndjson");
  }

  async start(): Promise<void> {
    this.lifecycle = new Journal(this.journalPath);
    const commandsPath = join(this.config.stateDir, "commands.ndjson");
    const history = Journal.read<CommandRecord>(commandsPath);
    this.commands = new Journal(commandsPath);
    this.verifier = new CommandVerifier(
      this.config,
      history.map((entry) => entry.id),
    );
    await this.reportInterrupted(history);
    // A short session: after an agent restart its old membership expires quickly and commands flow again.
    this.consumer = this.kafka.consumer({
      groupId: `lifeline-agent-${this.config.host.name}`,
      sessionTimeout: 10_000,
      heartbeatInterval: 3_000,
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: `${this.config.topicPrefix}.control`, fromBeginning: false });
    // A new group starts at the topic's end; "started" must mean that end is resolved, so that a command sent
    // right after is seen. The first completed fetch proves it.
    const consumer = this.consumer;
    const fetching = new Promise<void>((resolve) => {
      const remove = consumer.on(consumer.events.FETCH, () => {
        remove();
        resolve();
      });
    });
    await consumer.run({ eachMessage: async ({ message }) => this.onMessage(message.value) });
    await fetching;
    this.emit("agent.started", "success", {}, { message: `agent on ${this.config.host.name}` });
    await this.sendHeartbeat();
    this.heartbeat = setInterval(() => void this.sendHeartbeat(), this.config.heartbeatIntervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    await this.consumer?.disconnect().catch(() => {});
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
      const context = verdict.command ? this.contextOf(verdict.command) : {};
      this.emit("command.rejected", "failure", context, { reason: verdict.reason, message: verdict.detail });
      context.span?.end("failure", `rejected: ${verdict.reason}`);
      return;
    }
    const context = this.contextOf(verdict.command);
    if (verdict.kind === "duplicate") {
      const recorded = Journal.read<CommandRecord>(join(this.config.stateDir, "commands.ndjson"))
        .filter((entry) => entry.id === verdict.command.id)
        .pop();
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
      at: new Date().toISOString(),
    });
    this.verifier?.markSeen(command.id);
    this.emit("command.received", "success", context, { message: `${command.action} ${service.name}` });
    const previous = this.queues.get(service.name) ?? Promise.resolve();
    const next = previous.then(() => this.execute(command, service, context));
    this.queues.set(
      service.name,
      next.catch(() => {}),
    );
  }

  private async execute(command: Command, service: ServiceConfig, context: Context): Promise<void> {
    const began = Date.now();
    let outcome: EventOutcome = "success";
    let reason: string;
    try {
      if (Date.parse(command.deadline) <= began)
        throw new Error("deadline passed before the action could start");
      switch (command.action) {
        case "stop":
          reason = await this.stopService(service, command, context);
          break;
        case "start":
          reason = await this.startService(service, command, context);
          break;
        case "restart":
          await this.stopService(service, command, context);
          reason = `restarted: ${await this.startService(service, command, context)}`;
          break;
        default: {
          const state = await this.drivers.get(service.name)?.state();
          reason = state?.running ? `running (pid ${state.pid})` : "stopped";
        }
      }
    } catch (error) {
      outcome = "failure";
      reason = (error as Error).message;
    }
    this.emit("command.completed", outcome, context, { reason, duration: (Date.now() - began) * 1e6 });
    context.span?.setAttributes({ "lifeline.result": reason });
    context.span?.end(outcome, reason);
    this.commands?.append({
      id: command.id,
      state: "done",
      service: service.name,
      action: command.action,
      outcome,
      reason,
      at: new Date().toISOString(),
    });
  }

  private async stopService(service: ServiceConfig, command: Command, context: Context): Promise<string> {
    const driver = this.drivers.get(service.name) as ServiceDriver;
    this.emit("stop.requested", "success", context);
    const state = await driver.state();
    if (!state.running) return "already_stopped";
    const preStop = service.preStop;
    if (preStop) {
      const began = Date.now();
      const failed = await this.phase(context, "pre-stop hook", () =>
        runHook(preStop, this.hookEnv(context)),
      );
      this.emit("stop.pre_stop_hook", failed ? "failure" : "success", context, {
        reason: failed ?? "ok",
        duration: (Date.now() - began) * 1e6,
      });
    }
    const grace = command.parameters.gracePeriodMs ?? service.gracePeriodMs;
    this.emit("stop.signal_sent", "success", context, {
      pid: state.pid,
      message: `${service.stopSignal} to process group ${state.pid}, grace ${grace} ms`,
    });
    const result = await this.phase(
      context,
      `stop: ${service.stopSignal}, grace ${grace} ms`,
      async (span) => {
        const stopped = await driver.stop(grace);
        span.setAttributes({ "lifeline.escalated": Boolean(stopped?.escalated) });
        return stopped;
      },
    );
    if (!result) return "already_stopped";
    if (result.escalated) {
      this.emit("stop.escalated", "success", context, {
        pid: result.pid,
        reason: `grace period of ${grace} ms exceeded: SIGKILL`,
        duration: (result.exitedAt - result.signalSentAt) * 1e6,
      });
    }
    this.emit("stop.completed", "success", context, {
      pid: result.pid,
      duration: (result.exitedAt - result.signalSentAt) * 1e6,
      reason: result.escalated ? "killed" : "exited",
    });
    return result.escalated ? "stopped (escalated)" : "stopped";
  }

  private async startService(service: ServiceConfig, command: Command, context: Context): Promise<string> {
    const driver = this.drivers.get(service.name) as ServiceDriver;
    if ((await driver.state()).running) return "already_running";
    const began = Date.now();
    const traceparent = context.span?.traceparent;
    const pid = await this.phase(context, "spawn", async () =>
      driver.start(traceparent ? { TRACEPARENT: traceparent } : {}),
    );
    this.emit("start.spawned", "success", context, { pid });
    const deadline = Math.min(began + service.startTimeoutMs, Date.parse(command.deadline));
    const gaveUp = async () => {
      const exit = await driver.exited();
      if (exit !== undefined) return `process exited with code ${exit} while starting`;
      return Date.now() > deadline ? `not healthy within ${deadline - began} ms` : undefined;
    };
    const stoppedEarly = service.health ? undefined : await gaveUp();
    const probe = service.health;
    const health = probe
      ? await this.phase(context, "health probe", () => waitHealthy(probe, gaveUp))
      : stoppedEarly === undefined
        ? ({ healthy: true } as const)
        : ({ healthy: false, reason: stoppedEarly } as const);
    if (!health.healthy) {
      this.emit("start.probe_failed", "failure", context, {
        pid,
        reason: health.reason,
        duration: (Date.now() - began) * 1e6,
      });
      throw new Error(health.reason);
    }
    this.emit("start.healthy", "success", context, { pid, duration: (Date.now() - began) * 1e6 });
    const postStart = service.postStart;
    if (postStart) {
      const hookBegan = Date.now();
      const failed = await this.phase(context, "post-start hook", () =>
        runHook(postStart, this.hookEnv(context)),
      );
      this.emit("start.post_start_hook", failed ? "failure" : "success", context, {
        reason: failed ?? "ok",
        duration: (Date.now() - hookBegan) * 1e6,
      });
      if (failed) throw new Error(`post-start hook failed: ${failed}`);
    }
    return "started";
  }

  private hookEnv(context: Context): Record<string, string> {
    return {
      LIFELINE_SERVICE: context.service ?? "",
      LIFELINE_COMMAND_ID: context.command?.id ?? "",
      ...(context.span ? { TRACEPARENT: context.span.traceparent } : {}),
    };
  }

  private async reportInterrupted(history: CommandRecord[]): Promise<void> {
    const done = new Set(history.filter((entry) => entry.state === "done").map((entry) => entry.id));
    for (const entry of history) {
      if (entry.state !== "accepted" || done.has(entry.id)) continue;
      const state = await this.drivers.get(entry.service)?.state();
      const found = state?.running ? `running (pid ${state.pid})` : "stopped";
      // The agent died mid-action: report what is true now, never a success it cannot prove.
      this.emit(
        "command.completed",
        "unknown",
        { service: entry.service },
        { reason: `agent restarted during ${entry.action}; service is ${found}`, commandId: entry.id },
      );
      this.commands?.append({
        ...entry,
        state: "done",
        outcome: "unknown",
        reason: `interrupted; service ${found}`,
        at: new Date().toISOString(),
      });
    }
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

  private emit(
    action: string,
    outcome: EventOutcome,
    context: Context,
    fields: {
      reason?: string;
      message?: string;
      pid?: number;
      duration?: number;
      commandId?: string;
      extra?: Record<string, unknown>;
    } = {},
  ): void {
    const now = new Date();
    const commandId = context.command?.id ?? fields.commandId;
    const event = {
      "@timestamp": now.toISOString(),
      message: fields.message ?? `${action}${fields.reason ? `: ${fields.reason}` : ""}`,
      host: { name: this.config.host.name },
      ...(context.service ? { service: { name: context.service } } : {}),
      event: {
        id: deterministicId(this.config.host.name, "agent", process.pid, now.getTime(), this.sequence),
        // Orders events of the same millisecond (timelines sort by @timestamp, then this).
        sequence: this.sequence++,
        kind: "event",
        category: ["process"],
        dataset: "lifeline.lifecycle",
        action,
        outcome,
        ...(fields.duration !== undefined ? { duration: Math.round(fields.duration) } : {}),
        ...(fields.reason ? { reason: fields.reason } : {}),
      },
      ...(fields.pid !== undefined ? { process: { pid: fields.pid } } : {}),
      ...(context.span
        ? {
            trace: { id: context.span.traceId },
            span: { id: context.span.spanId },
            ...(context.span.parentId ? { parent: { id: context.span.parentId } } : {}),
          }
        : {}),
      lifeline: {
        schema_version: SCHEMA_VERSION,
        ...(commandId ? { command_id: commandId } : {}),
        ...(context.command?.rolloutId ? { rollout_id: context.command.rolloutId } : {}),
        ...(context.command ? { action: context.command.action, issuer: context.command.issuer } : {}),
      },
      ...(fields.extra ?? {}),
    };
    this.lifecycle?.append(event);
    this.logger.info(
      { action, outcome, service: context.service, commandId, reason: fields.reason },
      "lifecycle event",
    );
  }
}

function driverFor(service: ServiceConfig, stateDir: string): ServiceDriver {
  if (service.driver === "systemd") return new SystemdDriver(service.unit as string);
  if (service.driver === "windows-service") return new WindowsServiceDriver(service.serviceName as string);
  return new ProcessDriver(service, stateDir);
}
