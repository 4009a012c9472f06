import { isControllerEvent } from "../core/events.ts";
import type { PlannedStep, RolloutPlan } from "./plan.ts";
import { joinPlan, type PlanPart } from "./plan-record.ts";

/** A controller event on the lifecycle topic, as much of it as the rollout list needs. */
export interface ControllerEvent {
  "@timestamp"?: string;
  host?: { name?: string };
  event?: { action?: string; outcome?: string; reason?: string; provider?: string };
  trace?: { id?: string };
  lifeline?: {
    rollout_id?: string;
    command_id?: string;
    wave?: number;
    step?: PlannedStep;
    step_status?: string;
    evidence?: string;
    plan?: { name?: string };
    built?: RolloutPlan;
    built_parts?: number;
    plan_part?: PlanPart;
  };
}

/** A step of a rollout as its controller recorded it. */
export interface StepState extends PlannedStep {
  wave: number;
  /** step.completed's status; "sent" (a command.sent and no step.completed yet) or "not sent". */
  status: string;
  commandId?: string;
  /** What the step's outcome rests on, as step.completed recorded it. */
  evidence?: string;
}

export interface RolloutRow {
  rolloutId: string;
  name: string;
  action: string;
  traceId?: string;
  startedAt: string;
  lastEventAt: string;
  lastEvent: string;
  /**
   * rollout.completed's status (success, failed, halted, incomplete, cancelled), or "open": no rollout.completed
   * yet. Open is all the topic says: a controller still running and one that died look the same until it is
   * resumed (`lifeline rollout resume`), so the last event and its time are given beside it.
   */
  status: string;
  /** The approval gate an open rollout's controller said it waits at (nothing has moved it on since). */
  waiting?: string;
  aborted?: string;
  halted?: string;
  steps: { planned: number; byStatus: Record<string, number> };
}

const isRolloutEvent = (e: ControllerEvent) =>
  isControllerEvent(e) && typeof e.lifeline?.rollout_id === "string";

/**
 * Rollouts from their controllers' events, newest first: only what was recorded. A rollout whose
 * rollout.planned is not among the events (read from later than its start) is left out rather than guessed.
 */
export function rolloutsFrom(events: ControllerEvent[]): RolloutRow[] {
  const byId = new Map<string, ControllerEvent[]>();
  for (const event of events.filter(isRolloutEvent)) {
    const id = event.lifeline?.rollout_id as string;
    byId.set(id, [...(byId.get(id) ?? []), event]);
  }
  const rows: RolloutRow[] = [];
  for (const [rolloutId, list] of byId) {
    const row = rolloutRow(rolloutId, list);
    if (row) rows.push(row);
  }
  return rows.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
}

function rolloutRow(rolloutId: string, events: ControllerEvent[]): RolloutRow | undefined {
  const planned = events.find((e) => e.event?.action === "rollout.planned");
  const built = planned ? plannedSteps(planned, events) : undefined;
  if (!planned || !built) return undefined;
  const last = events.at(-1) as ControllerEvent;
  const completed = events.findLast((e) => e.event?.action === "rollout.completed");
  const aborted = events.find((e) => e.event?.action === "rollout.aborted");
  const halted = events.find((e) => e.event?.action === "rollout.halted");
  const byStatus: Record<string, number> = {};
  for (const step of stepStates(events, built)) byStatus[step.status] = (byStatus[step.status] ?? 0) + 1;
  const lastAction = last.event?.action ?? "";
  const waiting = completed ? undefined : waitingFor(events);
  return {
    rolloutId,
    name: planned.lifeline?.plan?.name ?? built.name,
    action: built.action,
    ...(planned.trace?.id ? { traceId: planned.trace.id } : {}),
    startedAt: planned["@timestamp"] ?? "",
    lastEventAt: last["@timestamp"] ?? "",
    lastEvent: lastAction,
    status: completed ? (completed.event?.reason ?? "completed") : "open",
    ...(waiting ? { waiting } : {}),
    ...(aborted?.event?.reason ? { aborted: aborted.event.reason } : {}),
    ...(halted?.event?.reason ? { halted: halted.event.reason } : {}),
    steps: { planned: built.waves.reduce((n, w) => n + w.steps.length, 0), byStatus },
  };
}

/** The gate an open rollout's controller last said it waits at, unless something moved it on since. */
function waitingFor(events: ControllerEvent[]): string | undefined {
  const at = events.findLastIndex((e) => e.event?.action === "rollout.awaiting_approval");
  if (at < 0) return undefined;
  const movedOn = events
    .slice(at + 1)
    .some((e) => ["wave.started", "rollout.approved", "rollout.aborted"].includes(e.event?.action ?? ""));
  return movedOn ? undefined : (events[at]?.event?.reason ?? "approval");
}

const keyOf = (step: PlannedStep) => `${step.action} ${step.service} ${step.host}`;

/** Every planned step with what the controller recorded of it (the last record wins: a rollback's too). */
export function stepStates(events: ControllerEvent[], built: RolloutPlan): StepState[] {
  const sent = new Map<string, string>();
  const completed = new Map<string, ControllerEvent>();
  for (const event of events) {
    const step = event.lifeline?.step;
    if (!step) continue;
    if (event.event?.action === "command.sent") sent.set(keyOf(step), event.lifeline?.command_id ?? "");
    if (event.event?.action === "step.completed") completed.set(keyOf(step), event);
  }
  return built.waves.flatMap((wave) =>
    wave.steps.map((step) => {
      const done = completed.get(keyOf(step));
      const commandId = done?.lifeline?.command_id ?? sent.get(keyOf(step));
      return {
        ...step,
        wave: wave.wave,
        status: done
          ? (done.lifeline?.step_status ?? "unknown")
          : sent.has(keyOf(step))
            ? "sent"
            : "not sent",
        ...(commandId ? { commandId } : {}),
        ...(done?.lifeline?.evidence ? { evidence: done.lifeline.evidence } : {}),
      };
    }),
  );
}

const ago = (iso: string, now: number) => {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 120
    ? `${s} s ago`
    : s < 7200
      ? `${Math.round(s / 60)} min ago`
      : `${Math.round(s / 3600)} h ago`;
};

const counts = (byStatus: Record<string, number>) =>
  Object.entries(byStatus)
    .map(([status, n]) => `${n} ${status}`)
    .join(", ");

/** `lifeline rollout list`: one line each. */
export function describeRollouts(rows: RolloutRow[], now = Date.now()): string {
  if (rows.length === 0) return "no rollouts in this window\n";
  return `${rows
    .map((r) => {
      const state =
        r.status === "open"
          ? `open, last event ${r.lastEvent} ${ago(r.lastEventAt, now)}${r.waiting ? ` (awaiting approval: ${r.waiting})` : ""}`
          : r.status;
      return `${r.rolloutId}  ${r.action} ${r.name}  ${state}  started ${r.startedAt}  steps ${r.steps.planned}: ${counts(r.steps.byStatus)}`;
    })
    .join("\n")}\n`;
}

/** `lifeline rollout status <id>`: the rollout's line, then every step. */
export function describeStatus(row: RolloutRow, steps: StepState[], now = Date.now()): string {
  const lines = [describeRollouts([row], now).trimEnd()];
  if (row.status === "open")
    lines.push(
      "  open: no rollout.completed yet; a controller that died leaves it so (lifeline rollout resume <id>)",
    );
  if (row.halted) lines.push(`  halted: ${row.halted}`);
  if (row.aborted) lines.push(`  aborted: ${row.aborted}`);
  for (const step of steps)
    lines.push(
      `  wave ${step.wave}  ${step.action} ${step.service} on ${step.host}: ${step.status}${step.evidence ? `  (${step.evidence})` : ""}`,
    );
  return `${lines.join("\n")}\n`;
}

/**
 * The built plan of a rollout.planned event, its steps joined from the rollout.plan_part events when it was
 * recorded in parts (controller/plan-record.ts); undefined when a part is missing: then nothing is guessed.
 */
export function plannedSteps(planned: ControllerEvent, events: ControllerEvent[]): RolloutPlan | undefined {
  const built = planned.lifeline?.built;
  const parts = planned.lifeline?.built_parts;
  if (!built || parts === undefined) return built;
  try {
    return joinPlan(
      built,
      parts,
      events.flatMap((e) =>
        e.event?.action === "rollout.plan_part" && e.lifeline?.plan_part ? [e.lifeline.plan_part] : [],
      ),
    );
  } catch {
    return undefined;
  }
}
