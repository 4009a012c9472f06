import { randomBytes } from "node:crypto";
import type { StreamKind } from "../core/ecs/mappings.ts";

type Seed = [StreamKind, Record<string, unknown>];

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

/**
 * Lifecycle events as the agent and the controller write them, for `dashboards check`: a healthy namespace
 * (a rollout that went well, agents that keep sending heartbeats) and a failing one (a failed and an unknown
 * stop, an escalation, a halted rollout, an agent that went silent two minutes ago).
 */
export function seedScenarios(now: number): Record<"healthy" | "failing", Seed[]> {
  const at = (secondsAgo: number) => new Date(now - secondsAgo * 1000).toISOString();
  const event = (
    secondsAgo: number,
    host: string,
    action: string,
    outcome: string,
    extra: {
      service?: string;
      command?: string;
      rollout?: string;
      duration?: number;
      reason?: string;
      trace?: string;
      commandAction?: string;
      wave?: number;
      /** More lifeline.* fields, e.g. a step.completed's step_status and step. */
      lifeline?: Record<string, unknown>;
    } = {},
  ): Seed => [
    "lifecycle",
    {
      "@timestamp": at(secondsAgo),
      message: `${action}${extra.reason ? `: ${extra.reason}` : ""}`,
      host: { name: host },
      ...(extra.service ? { service: { name: extra.service, environment: "production" } } : {}),
      event: {
        id: `seed-${hex(8)}`,
        kind: "event",
        provider: host === "controller" ? "lifeline-controller" : "lifeline-agent",
        action,
        outcome,
        ...(extra.duration !== undefined ? { duration: extra.duration } : {}),
        ...(extra.reason ? { reason: extra.reason } : {}),
      },
      ...(extra.trace ? { trace: { id: extra.trace }, span: { id: hex(8) } } : {}),
      lifeline: {
        schema_version: 1,
        ...(extra.command ? { command_id: extra.command } : {}),
        ...(extra.rollout ? { rollout_id: extra.rollout } : {}),
        ...(extra.commandAction ? { action: extra.commandAction } : {}),
        ...(extra.wave !== undefined ? { wave: extra.wave } : {}),
        ...extra.lifeline,
      },
    },
  ];
  const stop = (
    secondsAgo: number,
    host: string,
    service: string,
    options: { outcome: string; escalate?: boolean; action?: string; rollout: string; trace: string },
  ): Seed[] => {
    const command = hex(8);
    const common = {
      service,
      command,
      rollout: options.rollout,
      trace: options.trace,
      commandAction: options.action ?? "stop",
    };
    return [
      event(secondsAgo, host, "command.received", "success", common),
      event(secondsAgo - 1, host, "stop.signal_sent", "success", common),
      ...(options.escalate
        ? [
            event(secondsAgo - 6, host, "stop.escalated", "success", {
              ...common,
              duration: 5_000_000_000,
              reason: "grace period of 5000 ms exceeded: SIGKILL",
            }),
          ]
        : []),
      ...(options.outcome === "success" || options.escalate
        ? [
            event(secondsAgo - 7, host, "stop.completed", "success", {
              ...common,
              duration: options.escalate ? 5_100_000_000 : 1_200_000_000,
            }),
          ]
        : []),
      event(secondsAgo - 8, host, "command.completed", options.outcome, {
        ...common,
        reason:
          options.outcome === "success"
            ? "stopped"
            : options.outcome === "unknown"
              ? "agent restarted during stop"
              : "port 8080 still open",
      }),
      // The controller's one final record of the step.
      event(secondsAgo - 8, "controller", "step.completed", options.outcome, {
        command,
        rollout: options.rollout,
        trace: options.trace,
        commandAction: options.action ?? "stop",
        lifeline: {
          step_status:
            options.outcome === "success" ? "success" : options.outcome === "failure" ? "failed" : "unknown",
          escalated: Boolean(options.escalate),
          step: { host, service, action: options.action ?? "stop" },
        },
      }),
    ];
  };
  const controller = (
    secondsAgo: number,
    rollout: string,
    trace: string,
    actions: Array<[string, string]>,
  ): Seed[] =>
    actions.map(([action, outcome], i) =>
      event(secondsAgo - i, "controller", action, outcome, {
        rollout,
        trace,
        ...(action === "wave.started" ? { wave: 1 } : {}),
      }),
    );
  const heartbeats = (
    host: string,
    everySeconds: number,
    fromSecondsAgo: number,
    toSecondsAgo: number,
  ): Seed[] => {
    const out: Seed[] = [];
    for (let s = fromSecondsAgo; s >= toSecondsAgo; s -= everySeconds)
      out.push(event(s, host, "agent.heartbeat", "success"));
    return out;
  };
  const logLine = (secondsAgo: number, host: string, service: string, trace: string): Seed => [
    "logs",
    {
      "@timestamp": at(secondsAgo),
      message: `listening on 8080 traceparent=00-${trace}-${hex(8)}-01`,
      host: { name: host },
      service: { name: service },
      log: { level: "info", file: { path: `/var/log/${service}.log` }, offset: 0 },
      trace: { id: trace },
      event: { id: `seed-${hex(8)}` },
    },
  ];
  const span = (secondsAgo: number, service: string, name: string, trace: string, outcome: string): Seed => [
    "spans",
    {
      "@timestamp": at(secondsAgo),
      event: { id: `seed-${hex(8)}`, outcome },
      trace: { id: trace },
      span: { id: hex(8), name, kind: "internal" },
      service: { name: service },
    },
  ];

  /** A delta request count of one minute, as the collector writes an OTLP metric point. */
  const requests = (secondsAgo: number, service: string, code: number, value: number): Seed => [
    "metrics",
    {
      "@timestamp": at(secondsAgo),
      event: { id: `seed-${hex(8)}`, kind: "metric", dataset: "lifeline.metrics" },
      service: { name: service },
      host: { name: "web-1" },
      metric: {
        name: "http.server.request.count",
        unit: "{request}",
        type: "sum",
        temporality: "delta",
        monotonic: true,
        value,
      },
      lifeline: { attributes: { "http.route": "/orders", "http.response.status_code": code } },
    },
  ];
  const good = hex(16);
  const healthy: Seed[] = [
    ...controller(120, "shop-restart-ok", good, [
      ["rollout.planned", "success"],
      ["wave.started", "success"],
      ["command.sent", "success"],
      ["rollout.completed", "success"],
    ]),
    ...stop(110, "web-1", "api", {
      outcome: "success",
      action: "restart",
      rollout: "shop-restart-ok",
      trace: good,
    }),
    ...stop(100, "web-2", "api", { outcome: "success", rollout: "shop-restart-ok", trace: good }),
    ...heartbeats("web-1", 10, 175, 0),
    ...heartbeats("web-2", 10, 175, 0),
    logLine(105, "web-1", "api", good),
    span(120, "lifeline-controller", "rollout shop-restart", good, "success"),
    requests(120, "api", 200, 600),
    requests(60, "api", 200, 580),
  ];
  const bad = hex(16);
  const incident = hex(16);
  const failing: Seed[] = [
    ...controller(120, "shop-stop-bad", bad, [
      ["rollout.planned", "success"],
      ["wave.started", "success"],
      ["command.sent", "success"],
      ["rollout.halted", "failure"],
      ["rollout.completed", "failure"],
    ]),
    ...stop(110, "web-1", "api", { outcome: "failure", rollout: "shop-stop-bad", trace: bad }),
    ...stop(100, "web-2", "api", {
      outcome: "unknown",
      action: "restart",
      rollout: "shop-stop-bad",
      trace: bad,
    }),
    ...stop(90, "web-3", "worker", {
      outcome: "success",
      escalate: true,
      rollout: "shop-stop-bad",
      trace: bad,
    }),
    ...heartbeats("web-1", 10, 175, 0),
    // web-3's agent went silent 140 s ago.
    ...heartbeats("web-3", 10, 175, 140),
    logLine(95, "web-3", "worker", bad),
    span(120, "lifeline-controller", "rollout shop-stop", bad, "failure"),
    // The api's requests fell and its 5xx rose while web-1's stop failed.
    requests(120, "api", 200, 610),
    requests(110, "api", 200, 240),
    requests(110, "api", 503, 75),
    // A start that failed its health probe, and a message no trusted key signed.
    event(85, "web-2", "start.probe_failed", "failure", {
      service: "cache",
      reason: "health probe failed 40 times in a row",
      trace: bad,
      rollout: "shop-stop-bad",
      commandAction: "start",
    }),
    event(85, "web-2", "command.completed", "failure", {
      service: "cache",
      reason: "not healthy after start: health probe failed 40 times in a row",
      trace: bad,
      rollout: "shop-stop-bad",
      commandAction: "start",
    }),
    event(60, "web-1", "command.rejected", "failure", { reason: "bad_signature" }),
    // web-1's cache died at 3 a.m. style: killed, unhealthy, restarted until a crash loop.
    event(80, "web-1", "service.unhealthy", "failure", {
      service: "cache",
      reason: "liveness probe failed 3 times in a row; restart 1 in 734 ms",
      trace: incident,
    }),
    event(70, "web-1", "service.exited", "failure", {
      service: "cache",
      reason: "exited with signal SIGKILL, no command asked for it; crash loop",
      trace: incident,
    }),
    event(70, "web-1", "service.crash_loop", "failure", {
      service: "cache",
      reason: "5 restarts within 300000 ms: no more until a start command or later",
      trace: incident,
    }),
  ];
  return { healthy, failing };
}
