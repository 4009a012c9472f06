import { DATA_VIEWS } from "./objects.ts";

/**
 * Alerting rules as Kibana alerting API bodies (`.es-query` rules, Query DSL). `install` creates or updates
 * them with these ids; `check` runs each `esQuery` against Elasticsearch seeded with lifecycle events.
 */
export interface RuleDefinition {
  id: string;
  name: string;
  /** What the rule says, for the docs and for check's output. */
  summary: string;
  body: {
    name: string;
    rule_type_id: ".es-query";
    consumer: "stackAlerts";
    schedule: { interval: string };
    tags: string[];
    params: {
      searchType: "esQuery";
      index: string[];
      timeField: "@timestamp";
      esQuery: string;
      timeWindowSize: number;
      timeWindowUnit: "m";
      threshold: number[];
      thresholdComparator: ">" | "<";
      size: number;
      aggType: "count";
      groupBy: "all" | "top";
      termField?: string;
      termSize?: number;
      excludeHitsFromPreviousRun: boolean;
    };
    actions: Array<{
      id: string;
      group: string;
      params: Record<string, unknown>;
      frequency?: Record<string, unknown>;
    }>;
  };
}

/** The server-log connector every rule notifies by default (see the README to add email, Slack, webhooks). */
export const SERVER_LOG_CONNECTOR = {
  id: "lifeline-server-log",
  body: { name: "Lifeline: Kibana server log", connector_type_id: ".server-log", config: {}, secrets: {} },
};

const lifecycleIndices = DATA_VIEWS.lifecycle.title.split(",");
/** Heartbeats the agent sends per window at its default interval (10 s): 18 in 3 minutes. */
export const HEARTBEAT_WINDOW_MINUTES = 3;
export const HEARTBEAT_MIN_PER_WINDOW = 9;

function rule(options: {
  id: string;
  name: string;
  summary: string;
  query: Record<string, unknown>;
  windowMinutes?: number;
  threshold?: { comparator: ">" | "<"; value: number };
  groupByHost?: boolean;
  message: string;
}): RuleDefinition {
  const threshold = options.threshold ?? { comparator: ">", value: 0 };
  return {
    id: options.id,
    name: options.name,
    summary: options.summary,
    body: {
      name: options.name,
      rule_type_id: ".es-query",
      consumer: "stackAlerts",
      schedule: { interval: "1m" },
      tags: ["lifeline"],
      params: {
        searchType: "esQuery",
        index: lifecycleIndices,
        timeField: "@timestamp",
        esQuery: JSON.stringify({ query: options.query }),
        timeWindowSize: options.windowMinutes ?? 5,
        timeWindowUnit: "m",
        threshold: [threshold.value],
        thresholdComparator: threshold.comparator,
        size: 100,
        aggType: "count",
        groupBy: options.groupByHost ? "top" : "all",
        ...(options.groupByHost ? { termField: "host.name", termSize: 1000 } : {}),
        excludeHitsFromPreviousRun: !options.groupByHost,
      },
      actions: [
        {
          id: SERVER_LOG_CONNECTOR.id,
          group: "query matched",
          params: { level: "warn", message: options.message },
          frequency: { summary: false, notify_when: "onActionGroupChange", throttle: null },
        },
      ],
    },
  };
}

const term = (field: string, value: string) => ({ term: { [field]: value } });
const terms = (field: string, values: string[]) => ({ terms: { [field]: values } });

export function alertingRules(): RuleDefinition[] {
  return [
    rule({
      id: "lifeline-stop-failed",
      name: "Lifeline: a stop failed or ended unknown",
      summary: "a stop or restart command completed with outcome failure or unknown",
      query: {
        bool: {
          filter: [
            term("event.action", "command.completed"),
            terms("lifeline.action", ["stop", "restart"]),
            terms("event.outcome", ["failure", "unknown"]),
          ],
        },
      },
      message:
        "Lifeline: {{context.hits.length}} stop(s) failed or ended unknown in the last 5 minutes: {{#context.hits}}{{_source.host.name}}/{{_source.service.name}} ({{_source.event.reason}}, trace {{_source.trace.id}}) {{/context.hits}}",
    }),
    rule({
      id: "lifeline-start-failed",
      name: "Lifeline: a start failed or ended unknown",
      summary: "a start or restart command completed with outcome failure or unknown",
      query: {
        bool: {
          filter: [
            term("event.action", "command.completed"),
            terms("lifeline.action", ["start", "restart"]),
            terms("event.outcome", ["failure", "unknown"]),
          ],
        },
      },
      message:
        "Lifeline: {{context.hits.length}} start(s) failed or ended unknown in the last 5 minutes: {{#context.hits}}{{_source.host.name}}/{{_source.service.name}} ({{_source.event.reason}}, trace {{_source.trace.id}}) {{/context.hits}}",
    }),
    rule({
      id: "lifeline-command-rejected",
      name: "Lifeline: an agent refused a command",
      summary:
        "an agent refused a message on the control topic (bad signature, unknown key, expired, undeclared service or action, malformed)",
      query: { bool: { filter: [term("event.action", "command.rejected")] } },
      message:
        "Lifeline: command refused: {{#context.hits}}{{_source.host.name}}: {{_source.event.reason}} {{/context.hits}}",
    }),
    rule({
      id: "lifeline-stop-escalated",
      name: "Lifeline: a stop exceeded its grace period",
      summary: "a service did not exit within its grace period and was killed (stop.escalated)",
      query: { bool: { filter: [term("event.action", "stop.escalated")] } },
      message:
        "Lifeline: grace period exceeded, killed: {{#context.hits}}{{_source.host.name}}/{{_source.service.name}} (trace {{_source.trace.id}}) {{/context.hits}}",
    }),
    rule({
      id: "lifeline-rollout-halted",
      name: "Lifeline: a rollout halted",
      summary: "a rollout went past its failure budget and halted (rollout.halted)",
      query: { bool: { filter: [term("event.action", "rollout.halted")] } },
      message:
        "Lifeline: rollout halted: {{#context.hits}}{{_source.lifeline.rollout_id}}: {{_source.event.reason}} (trace {{_source.trace.id}}) {{/context.hits}}",
    }),
    rule({
      id: "lifeline-service-crash-loop",
      name: "Lifeline: a service is in a crash loop",
      summary:
        "an agent stopped restarting a service after too many restarts in its window (service.crash_loop)",
      query: { bool: { filter: [term("event.action", "service.crash_loop")] } },
      message:
        "Lifeline: crash loop, no more restarts: {{#context.hits}}{{_source.host.name}}/{{_source.service.name}} ({{_source.event.reason}}, trace {{_source.trace.id}}) {{/context.hits}}",
    }),
    rule({
      id: "lifeline-service-exited",
      name: "Lifeline: a service exited without a command",
      summary: "a service the agent keeps running exited when no command asked for it (service.exited)",
      query: { bool: { filter: [term("event.action", "service.exited")] } },
      message:
        "Lifeline: unexpected exit: {{#context.hits}}{{_source.host.name}}/{{_source.service.name}} ({{_source.event.reason}}, trace {{_source.trace.id}}) {{/context.hits}}",
    }),
    rule({
      id: "lifeline-service-unhealthy",
      name: "Lifeline: a service fails its liveness probe",
      summary:
        "a running service failed its liveness probe failureThreshold times in a row (service.unhealthy)",
      query: { bool: { filter: [term("event.action", "service.unhealthy")] } },
      message:
        "Lifeline: liveness failing: {{#context.hits}}{{_source.host.name}}/{{_source.service.name}} ({{_source.event.reason}}, trace {{_source.trace.id}}) {{/context.hits}}",
    }),
    rule({
      id: "lifeline-agent-silent",
      name: "Lifeline: an agent stopped sending heartbeats",
      summary: `a host sent fewer than ${HEARTBEAT_MIN_PER_WINDOW} heartbeats in ${HEARTBEAT_WINDOW_MINUTES} minutes (expected 18)`,
      query: { bool: { filter: [term("event.action", "agent.heartbeat")] } },
      windowMinutes: HEARTBEAT_WINDOW_MINUTES,
      threshold: { comparator: "<", value: HEARTBEAT_MIN_PER_WINDOW },
      groupByHost: true,
      message:
        "Lifeline: agent on {{context.group}} sent {{context.value}} heartbeats in 3 minutes (expected 18)",
    }),
  ];
}
