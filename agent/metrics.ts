import { Counter, Gauge } from "prom-client";
import { componentRegistry } from "../core/observability/metrics.ts";

/**
 * The agent's Prometheus metrics, with the process's own (CPU, RSS, event-loop lag). Loaded only when the
 * agent's `http` endpoint is configured: an agent without it does not load prom-client at all.
 */
export function createAgentMetrics() {
  const registry = componentRegistry("agent");
  const restartsTotal = new Counter({
    name: "lifeline_agent_service_restarts_total",
    help: "Restarts the agent's supervision started (not commands)",
    labelNames: ["service"] as const,
    registers: [registry],
  });
  const up = new Gauge({
    name: "lifeline_agent_service_up",
    help: "1 while a service the agent keeps running is seen running, 0 once it is seen down",
    labelNames: ["service"] as const,
    registers: [registry],
  });
  return {
    registry,
    commands: new Counter({
      name: "lifeline_agent_commands_total",
      help: "Commands run to the end, by action and outcome",
      labelNames: ["action", "outcome"] as const,
      registers: [registry],
    }),
    events: new Counter({
      name: "lifeline_agent_lifecycle_events_total",
      help: "Lifecycle events written to the journal, by event.action and outcome",
      labelNames: ["action", "outcome"] as const,
      registers: [registry],
    }),
    controlRecordsRead: new Counter({
      name: "lifeline_agent_control_records_read_total",
      help: "Records read from this host's partition of the control topic (its own commands and those of the hosts sharing the partition)",
      registers: [registry],
    }),
    restarts: (service: string) => restartsTotal.inc({ service }),
    up: (service: string, isUp: boolean) => up.set({ service }, isUp ? 1 : 0),
  };
}

export type AgentMetrics = ReturnType<typeof createAgentMetrics>;
