import type { SignedCommand } from "../core/commands.ts";
import type { KafkaPort as Kafka } from "../core/kafka/port.ts";
import { readSince } from "../core/kafka/read-since.ts";
import { type AttributedOutcome, type OutcomeEvent, outcomeFrom } from "../core/outcome.ts";
import type { Plan, PlannedStep, RolloutPlan } from "./plan.ts";
import { joinPlan, type PlanPart } from "./plan-record.ts";
import { type ResumeState, type SentCommand, type StepResult, stepKey } from "./run.ts";

export interface HistoryEvent extends OutcomeEvent {
  "@timestamp"?: string;
  trace?: { id?: string };
  span?: { id?: string };
  lifeline?: OutcomeEvent["lifeline"] & {
    rollout_id?: string;
    command_id?: string;
    wave?: number;
    step?: PlannedStep;
    plan?: Plan;
    built?: RolloutPlan;
    /** How many rollout.plan_part events carry the plan's steps (absent: the steps are in `built`). */
    built_parts?: number;
    plan_part?: PlanPart;
    undeliverable?: Record<string, string>;
    command?: SignedCommand;
  };
}

export interface RolloutHistory {
  plan: Plan;
  built: RolloutPlan;
  undeliverable: Map<string, string>;
  state: ResumeState;
  /** The rollout already ended: its status. */
  completed?: string;
}

/** The time a rollout id carries (`<name>-<base36 ms>`), to start reading just before it. */
export function startOf(rolloutId: string): number | undefined {
  const time = Number.parseInt(rolloutId.slice(rolloutId.lastIndexOf("-") + 1), 36);
  return Number.isFinite(time) && time > 0 && time <= Date.now() ? time : undefined;
}

/**
 * Rebuilds a rollout's state from the lifecycle topic, the only state there is: its plan (from `rollout.planned`),
 * the waves started, the commands sent, and the outcomes the agents reported. Throws when the topic has no
 * such rollout.
 */
export async function readRolloutHistory(
  kafka: Kafka,
  topic: string,
  rolloutId: string,
): Promise<RolloutHistory> {
  const since = (startOf(rolloutId) ?? 0) - 60_000;
  const events: HistoryEvent[] = [];
  await readSince(kafka, topic, Math.max(0, since), (text) => {
    if (!text.includes(rolloutId)) return;
    try {
      const event = JSON.parse(text) as HistoryEvent;
      if (event.lifeline?.rollout_id === rolloutId) events.push(event);
    } catch {
      // Not an event of ours.
    }
  });
  return rolloutHistoryFrom(rolloutId, topic, events);
}

/**
 * The state a resumed controller starts from, decided from the rollout's events in the order they were written:
 * the latest command of each step speaks for it, and every command sent for a step counts as one attempt.
 */
export function rolloutHistoryFrom(rolloutId: string, topic: string, events: HistoryEvent[]): RolloutHistory {
  const planned = events.find((e) => e.event?.action === "rollout.planned");
  if (!planned?.lifeline?.plan || !planned.lifeline.built || !planned.trace?.id || !planned.span?.id) {
    throw new Error(`rollout ${rolloutId}: no rollout.planned event with its plan on ${topic}`);
  }
  const sent = new Map<string, { step: PlannedStep; command: SentCommand }>();
  const reports = new Map<string, HistoryEvent[]>();
  const startedWaves = new Set<number>();
  let completed: string | undefined;
  let aborted: string | undefined;
  let paused: string | undefined;
  const recorded = new Set<string>();
  for (const event of events) {
    const action = event.event?.action;
    const lifeline = event.lifeline ?? {};
    if (action === "wave.started" && lifeline.wave !== undefined) startedWaves.add(lifeline.wave);
    if (action === "command.sent" && lifeline.step && lifeline.command_id) {
      sent.set(lifeline.command_id, {
        step: lifeline.step,
        command: {
          commandId: lifeline.command_id,
          ...(lifeline.command?.command?.id === lifeline.command_id ? { signed: lifeline.command } : {}),
        },
      });
    }
    if ((action === "command.completed" || action === "command.rejected") && lifeline.command_id)
      reports.set(lifeline.command_id, [...(reports.get(lifeline.command_id) ?? []), event]);
    if (action === "rollout.completed") completed = event.event?.reason ?? "completed";
    if (action === "rollout.aborted") aborted = event.event?.reason ?? "aborted";
    // Paused until continued: a controller that takes the rollout over keeps it paused.
    if (action === "rollout.paused") paused ??= event.event?.reason ?? "paused";
    if (action === "rollout.continued") paused = undefined;
    if (action === "step.completed" && lifeline.step) recorded.add(stepKey(lifeline.step));
  }
  const results = new Map<string, StepResult>();
  const pending = new Map<string, SentCommand>();
  const attempts = new Map<string, number>();
  for (const { step, command } of sent.values()) {
    const { commandId } = command;
    attempts.set(stepKey(step), (attempts.get(stepKey(step)) ?? 0) + 1);
    // A retry is a later command for the same step: the latest one speaks for it.
    results.delete(stepKey(step));
    pending.delete(stepKey(step));
    // The same rule as a running controller: the first verified report of the addressed host.
    const outcome = (reports.get(commandId) ?? [])
      .map((event) => outcomeFrom(event, step.host))
      .find((o): o is AttributedOutcome => o !== undefined);
    if (!outcome) {
      pending.set(stepKey(step), command);
      continue;
    }
    results.set(stepKey(step), {
      ...step,
      commandId,
      status:
        outcome.outcome === "success" ? "success" : outcome.outcome === "failure" ? "failed" : "unknown",
      ...(outcome.reason ? { reason: outcome.reason } : {}),
      escalated: outcome.escalated,
      evidence: outcome.evidence,
      // A retryable failure stays one: the resumed schedule may try it again if attempts are left.
      ...(outcome.retryable ? { retryable: true } : {}),
      ...(outcome.pid !== undefined ? { pid: outcome.pid } : {}),
    });
  }
  return {
    plan: planned.lifeline.plan,
    built:
      planned.lifeline.built_parts === undefined
        ? planned.lifeline.built
        : joinPlan(
            planned.lifeline.built,
            planned.lifeline.built_parts,
            events.flatMap((e) =>
              e.event?.action === "rollout.plan_part" && e.lifeline?.plan_part ? [e.lifeline.plan_part] : [],
            ),
          ),
    undeliverable: new Map(Object.entries(planned.lifeline.undeliverable ?? {})),
    state: {
      rolloutId,
      root: { traceId: planned.trace.id, spanId: planned.span.id, flags: 1 },
      results,
      pending,
      attempts,
      startedWaves,
      ...(aborted ? { aborted } : {}),
      ...(paused ? { paused } : {}),
      recorded,
    },
    ...(completed ? { completed } : {}),
  };
}
