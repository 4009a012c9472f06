/**
 * The rollout's decisions as a pure function: events in (a step settled, an approval, pause, resume, abort),
 * decisions out (begin a wave, send a step, cancel one, halt, pause, finish). No Kafka, no clock, no promises: the
 * runner (run.ts) is the shell that carries decisions out and feeds back what happened, and a resumed rollout is
 * the same events replayed.
 *
 * The plan is a graph, not a sequence: a service's waves run in order, and its first wave begins once every wave
 * of the services it comes after is done (start and restart: its dependencies; stop: its dependants). Independent
 * branches run side by side, bounded by maxInFlight per service and maxInFlightTotal overall. On one host, a step
 * whose predecessor did not succeed there is cancelled with that reason: a service is never started on top of a
 * dependency that did not start, nor a dependency stopped under a dependant still running.
 */

import { backoffCap } from "../core/retry.ts";
import type { PlannedWave } from "./plan.ts";

export type OnFailure = "halt" | "pause" | "rollback";

export interface ScheduleConfig {
  waves: PlannedWave[];
  /** Service → the services whose waves must all be done before its first wave begins. */
  after: Map<string, string[]>;
  /** Commands in flight at once per service (one wave of a service runs at a time). */
  maxInFlight: number;
  /** Commands in flight at once over the whole rollout. */
  maxInFlightTotal: number;
  budget: { maxFailures: number; maxFailurePercent?: number | undefined };
  onFailure: OnFailure;
  /** After a step settles, its slot stays taken this long before the next step (waves.soakMs; a wave may say otherwise). */
  soakMs: number;
  /** Waves whose gate was opened before (a resumed rollout): they do not wait again. */
  opened?: Set<number>;
  /**
   * Failures the agent marked retryable are tried again, up to `attempts` more times, after `backoffMs` doubled
   * per attempt up to `maxBackoffMs` (the runner adds jitter). Only the final attempt counts against the budget.
   */
  retries?: { attempts: number; backoffMs: number; maxBackoffMs: number };
  /**
   * A start or restart that succeeded is a success only if the service is still running, the same process and
   * healthy, this long after (waves.minHealthyTimeMs): observed again, its slot taken meanwhile.
   */
  minHealthyTimeMs?: number;
  /**
   * At most this many of a service's instances down at once, by this rollout (waves.maxUnavailable, like a
   * PodDisruptionBudget): a stop or restart in progress, a stop done, a restart that failed. A step that would go
   * past it waits; when nothing of the service is still in progress (nothing can come back up), it is cancelled.
   */
  maxUnavailable?: number;
  /**
   * Resumed after a restart: the commands already sent for each step (its attempts so far). The step goes on from
   * its latest attempt, so a crash between retries neither grants fresh attempts nor renumbers them.
   */
  attemptsMade?: Map<string, number>;
}

type WaveState = "blocked" | "awaiting_approval" | "running" | "done";
type StepState = "waiting" | "in_flight" | "retry_wait" | "verifying" | "soaking" | "settled" | "cancelled";

/** States in which a step takes one of its wave's maxInFlight slots (and one of maxInFlightTotal). */
const HOLDS_SLOT = new Set<StepState>(["in_flight", "retry_wait", "verifying", "soaking"]);
const ENDED = new Set<StepState>(["settled", "cancelled"]);

interface StepEntry {
  key: string;
  action: string;
  host: string;
  service: string;
  wave: number;
  state: StepState;
  /** Settled and verified a success. */
  succeeded: boolean;
  /** How long its slot stays taken after it settled (its wave's, or the plan's). */
  soakMs: number;
  /** The attempt in flight (or last made), from 1. */
  attempt: number;
  /** A start or restart: observed again minHealthyTimeMs after it succeeded. */
  verify: boolean;
  /** Waiting to be tried again, and its time came while the rollout was paused. */
  due?: boolean;
}

/**
 * A wave's running counts, kept as its steps change state, so that each event costs what it touches rather than
 * a pass over the whole plan (a 100,000-step rollout is 100,000 events).
 */
interface WaveRun {
  planned: PlannedWave;
  /** Position in the plan: waves are considered in plan order. */
  index: number;
  steps: StepEntry[];
  /** Steps neither settled nor cancelled. */
  open: number;
  /** Steps holding a slot. */
  holding: number;
  /** Steps before it are past "waiting": where the next step to send is looked for. */
  cursor: number;
  /** Retries whose backoff is over, to send when there is no pause. */
  due: StepEntry[];
  /**
   * The waves that must be done before this one begins: the service's previous wave, and the last wave of each
   * service it comes after (a service's waves run in order, so its last done means all are).
   */
  waitsFor: number[];
  /** The waves that wait for this one. */
  unblocks: number[];
}

export interface ScheduleState {
  readonly waves: Map<number, WaveState>;
  readonly steps: Map<string, StepEntry>;
  /** Steps holding a slot. */
  inFlight: number;
  failures: number;
  /** Settled or cancelled steps. */
  ended: number;
  paused?: string;
  halted?: string;
  aborted?: string;
  finished: boolean;
  /** Approvals that arrived before their gate (undefined: the next gate). */
  early: Array<number | undefined>;
  readonly runs: Map<number, WaveRun>;
  /** Waves running now. */
  readonly running: Set<number>;
  /** Blocked waves to look at again: every wave at first, then those a finished wave unblocked. */
  readonly candidates: Set<number>;
  /** Per service (stops and restarts): instances down by this rollout, and those with a step in progress. */
  readonly unavailable: Map<string, { down: number; inProgress: number }>;
  /** The steps on one host of one service (`host\u0000service`). */
  readonly byHostService: Map<string, StepEntry[]>;
}

export type ScheduleEvent =
  | { type: "begin" }
  /**
   * A step's outcome: `counts` when it counts against the failure budget (failed, timed out, unknown),
   * `retryable` when the agent verified the service is where the same action may be tried again.
   */
  | { type: "settled"; key: string; success: boolean; counts: boolean; retryable?: boolean }
  /** A retry's backoff is over. */
  | { type: "retry_due"; key: string }
  /** The observation minHealthyTimeMs after a start: still running and healthy, or not (and whether it counts). */
  | { type: "verified"; key: string; success: boolean; counts: boolean }
  /** A settled step's soak is over: its slot is free. */
  | { type: "soaked"; key: string }
  | { type: "approved"; wave?: number }
  | { type: "pause"; reason: string }
  | { type: "resume" }
  | { type: "abort"; reason: string };

export type Decision =
  | { type: "await_approval"; wave: number }
  /** An approval opened this wave's gate (at once, or one that arrived before the gate). */
  | { type: "gate_opened"; wave: number; approvedFor: number | undefined }
  | { type: "begin_wave"; wave: number }
  | { type: "send"; key: string; wave: number; attempt: number }
  /** The step failed and will be tried again after `delayMs` (before jitter); its slot stays taken. */
  | { type: "retry"; key: string; wave: number; attempt: number; delayMs: number }
  /** Observe the started service again after `ms`; the step's outcome waits for it. */
  | { type: "verify"; key: string; wave: number; ms: number }
  /** The step's last outcome is its final one (sent once per step, before any soak). */
  | { type: "final"; key: string; wave: number }
  | { type: "soak"; key: string; ms: number }
  | { type: "cancel"; key: string; wave: number; reason: string }
  | { type: "wave_done"; wave: number }
  | { type: "paused"; reason: string }
  | { type: "resumed" }
  | { type: "halted"; reason: string; rollback: boolean }
  | { type: "finished"; status: "done" | "halted" | "aborted" };

export const keyOf = (step: { host: string; service: string; action: string }): string =>
  `${step.host}/${step.service}/${step.action}`;

export function initialState(config: ScheduleConfig): ScheduleState {
  const waves = new Map<number, WaveState>();
  const steps = new Map<string, StepEntry>();
  const runs = new Map<number, WaveRun>();
  const byHostService = new Map<string, StepEntry[]>();
  const lastOf = new Map<string, number>();
  for (const [index, wave] of config.waves.entries()) {
    waves.set(wave.wave, "blocked");
    const entries: StepEntry[] = [];
    for (const step of wave.steps) {
      const entry: StepEntry = {
        key: keyOf(step),
        action: step.action,
        host: step.host,
        service: step.service,
        wave: wave.wave,
        state: "waiting",
        succeeded: false,
        soakMs: wave.soakMs ?? config.soakMs,
        attempt: Math.max(1, config.attemptsMade?.get(keyOf(step)) ?? 1),
        verify: (config.minHealthyTimeMs ?? 0) > 0 && step.action !== "stop",
      };
      steps.set(entry.key, entry);
      entries.push(entry);
      const hostService = `${step.host}\u0000${step.service}`;
      const list = byHostService.get(hostService);
      if (list) list.push(entry);
      else byHostService.set(hostService, [entry]);
    }
    runs.set(wave.wave, {
      planned: wave,
      index,
      steps: entries,
      open: entries.length,
      holding: 0,
      cursor: 0,
      due: [],
      waitsFor: [],
      unblocks: [],
    });
  }
  // A service's waves in order of their numbers; each waits for the one before it.
  const byService = new Map<string, number[]>();
  for (const wave of [...config.waves].sort((a, b) => a.wave - b.wave)) {
    const list = byService.get(wave.service) ?? [];
    const previous = list.at(-1);
    if (previous !== undefined) (runs.get(wave.wave) as WaveRun).waitsFor.push(previous);
    list.push(wave.wave);
    byService.set(wave.service, list);
    lastOf.set(wave.service, wave.wave);
  }
  for (const wave of config.waves) {
    const run = runs.get(wave.wave) as WaveRun;
    for (const before of config.after.get(wave.service) ?? []) {
      const last = lastOf.get(before);
      if (last !== undefined && last !== wave.wave) run.waitsFor.push(last);
    }
    for (const waited of run.waitsFor) runs.get(waited)?.unblocks.push(wave.wave);
  }
  return {
    waves,
    steps,
    inFlight: 0,
    failures: 0,
    ended: 0,
    finished: false,
    early: [],
    runs,
    running: new Set(),
    candidates: new Set(config.waves.map((w) => w.wave)),
    unavailable: new Map(),
    byHostService,
  };
}

/** What a step counts for its service's availability floor: down by this rollout, and still in progress. */
function unavailability(step: StepEntry): { down: number; inProgress: number } {
  if (step.action === "start") return { down: 0, inProgress: 0 };
  if (HOLDS_SLOT.has(step.state) && step.state !== "soaking") return { down: 1, inProgress: 1 };
  if (step.state === "settled" || step.state === "soaking") {
    const down = step.action === "stop" ? step.succeeded : !step.succeeded;
    return { down: down ? 1 : 0, inProgress: 0 };
  }
  return { down: 0, inProgress: 0 };
}

/** Every change of a step's state goes through here: the wave's, the rollout's and the service's counts follow. */
function transition(state: ScheduleState, step: StepEntry, next: StepState, succeeded?: boolean): void {
  const run = state.runs.get(step.wave) as WaveRun;
  const before = unavailability(step);
  if (HOLDS_SLOT.has(step.state)) {
    run.holding--;
    state.inFlight--;
  }
  if (ENDED.has(step.state)) {
    run.open++;
    state.ended--;
  }
  step.state = next;
  if (succeeded !== undefined) step.succeeded = succeeded;
  if (HOLDS_SLOT.has(next)) {
    run.holding++;
    state.inFlight++;
  }
  if (ENDED.has(next)) {
    run.open--;
    state.ended++;
  }
  const after = unavailability(step);
  if (before.down !== after.down || before.inProgress !== after.inProgress) {
    const counts = state.unavailable.get(step.service) ?? { down: 0, inProgress: 0 };
    counts.down += after.down - before.down;
    counts.inProgress += after.inProgress - before.inProgress;
    state.unavailable.set(step.service, counts);
  }
}

/**
 * Whether the failures so far exceed the plan's budget (a count, or a percentage of all the rollout's steps): the
 * reason, or undefined. Checked as each result arrives, so a wave stops sending at the threshold.
 */
export function overBudget(
  failures: number,
  total: number,
  budget: { maxFailures: number; maxFailurePercent?: number | undefined },
): string | undefined {
  const percent = total > 0 ? (failures / total) * 100 : 0;
  const overCount = failures > budget.maxFailures;
  const overPercent = budget.maxFailurePercent !== undefined && percent > budget.maxFailurePercent;
  if (!overCount && !overPercent) return undefined;
  return `${failures} of ${total} steps failed, timed out or unknown (budget ${budget.maxFailures}${budget.maxFailurePercent !== undefined ? ` or ${budget.maxFailurePercent} %` : ""})`;
}

/** One event applied: the state changes in place, and the decisions to carry out, in order, are returned. */
export function reduce(config: ScheduleConfig, state: ScheduleState, event: ScheduleEvent): Decision[] {
  if (state.finished) return [];
  const decisions: Decision[] = [];
  switch (event.type) {
    case "begin":
      break;
    case "settled": {
      const step = state.steps.get(event.key);
      if (!step || (step.state !== "in_flight" && step.state !== "waiting")) return [];
      const retries = config.retries;
      if (
        !event.success &&
        event.retryable &&
        retries &&
        step.attempt <= retries.attempts &&
        !state.aborted &&
        !state.halted
      ) {
        // Tried again: the slot stays taken, nothing counts yet.
        transition(state, step, "retry_wait");
        step.attempt++;
        decisions.push({
          type: "retry",
          key: step.key,
          wave: step.wave,
          attempt: step.attempt,
          delayMs: backoffCap(step.attempt - 2, retries.backoffMs, retries.maxBackoffMs),
        });
        break;
      }
      if (event.success && step.verify) {
        // Not a success yet: the service must still be up, the same process and healthy after minHealthyTimeMs.
        transition(state, step, "verifying");
        decisions.push({
          type: "verify",
          key: step.key,
          wave: step.wave,
          ms: config.minHealthyTimeMs ?? 0,
        });
        break;
      }
      conclude(config, state, step, event.success, event.counts, decisions);
      break;
    }
    case "verified": {
      const step = state.steps.get(event.key);
      if (step?.state !== "verifying") return [];
      conclude(config, state, step, event.success, event.counts, decisions);
      break;
    }
    case "retry_due": {
      const step = state.steps.get(event.key);
      if (step?.state !== "retry_wait") return [];
      step.due = true; // sent by advance() below, unless paused (then on continue)
      state.runs.get(step.wave)?.due.push(step);
      break;
    }
    case "soaked": {
      const step = state.steps.get(event.key);
      if (step?.state !== "soaking") return [];
      transition(state, step, "settled");
      break;
    }
    case "approved": {
      const gated = [...state.waves]
        .filter(([, s]) => s === "awaiting_approval")
        .map(([wave]) => wave)
        .sort((a, b) => a - b);
      const wave = event.wave === undefined ? gated[0] : gated.find((w) => w === event.wave);
      if (wave === undefined) {
        state.early.push(event.wave);
        return [];
      }
      decisions.push({ type: "gate_opened", wave, approvedFor: event.wave });
      begin(state, wave, decisions);
      break;
    }
    case "pause":
      if (state.paused || state.halted || state.aborted) return [];
      state.paused = event.reason;
      decisions.push({ type: "paused", reason: event.reason });
      break;
    case "resume":
      if (!state.paused) return [];
      state.paused = undefined;
      decisions.push({ type: "resumed" });
      break;
    case "abort":
      if (state.aborted) return [];
      state.aborted = event.reason;
      state.paused = undefined;
      cancelWaiting(config, state, event.reason, decisions);
      break;
  }
  advance(config, state, decisions);
  return decisions;
}

/** A step's outcome is final: recorded, its soak begun, a failure counted. */
function conclude(
  config: ScheduleConfig,
  state: ScheduleState,
  step: StepEntry,
  success: boolean,
  counts: boolean,
  decisions: Decision[],
): void {
  decisions.push({ type: "final", key: step.key, wave: step.wave });
  if (step.soakMs > 0 && !state.aborted && !state.halted) {
    transition(state, step, "soaking", success);
    decisions.push({ type: "soak", key: step.key, ms: step.soakMs });
  } else {
    transition(state, step, "settled", success);
  }
  if (counts) countFailure(config, state, decisions);
}

/** A final failure: past the budget, the plan's onFailure decides. */
function countFailure(config: ScheduleConfig, state: ScheduleState, decisions: Decision[]): void {
  state.failures++;
  const over = overBudget(state.failures, state.steps.size, config.budget);
  if (!over || state.halted || state.aborted) return;
  if (config.onFailure === "pause") {
    // Every failure past the budget pauses again, after a human continued.
    if (!state.paused) {
      state.paused = over;
      decisions.push({ type: "paused", reason: over });
    }
    return;
  }
  state.halted = over;
  decisions.push({ type: "halted", reason: over, rollback: config.onFailure === "rollback" });
  cancelWaiting(config, state, over, decisions);
}

/**
 * Every step not sent yet will not be: cancelled with the reason. A step waiting to be tried again is not tried:
 * its last failure is final.
 */
function cancelWaiting(config: ScheduleConfig, state: ScheduleState, reason: string, out: Decision[]): void {
  for (const wave of config.waves) {
    for (const planned of wave.steps) {
      const step = state.steps.get(keyOf(planned));
      if (step?.state === "retry_wait") {
        transition(state, step, "settled");
        state.failures++;
        out.push({ type: "final", key: step.key, wave: wave.wave });
        continue;
      }
      if (step?.state !== "waiting") continue;
      transition(state, step, "cancelled");
      out.push({ type: "cancel", key: step.key, wave: wave.wave, reason });
    }
  }
}

/** The running waves in plan order (a handful: one per service at most). */
function runningInOrder(state: ScheduleState): WaveRun[] {
  return [...state.running].map((wave) => state.runs.get(wave) as WaveRun).sort((a, b) => a.index - b.index);
}

/** A running wave whose steps all ended is done, and the waves waiting for it are looked at again. */
function closeEnded(state: ScheduleState, out: Decision[]): boolean {
  let closed = false;
  for (const run of runningInOrder(state)) {
    if (run.open > 0) continue;
    state.waves.set(run.planned.wave, "done");
    state.running.delete(run.planned.wave);
    for (const next of run.unblocks) state.candidates.add(next);
    out.push({ type: "wave_done", wave: run.planned.wave });
    closed = true;
  }
  return closed;
}

function begin(state: ScheduleState, wave: number, out: Decision[]): void {
  state.waves.set(wave, "running");
  state.running.add(wave);
  out.push({ type: "begin_wave", wave });
}

/** Begins what may begin, sends what has room, closes waves that ended, finishes when nothing is left. */
function advance(config: ScheduleConfig, state: ScheduleState, out: Decision[]): void {
  const stopped = state.halted ?? state.aborted;
  closeEnded(state, out);
  if (!stopped) {
    const candidates = [...state.candidates]
      .map((wave) => state.runs.get(wave) as WaveRun)
      .sort((a, b) => a.index - b.index);
    for (const run of candidates) {
      const wave = run.planned;
      state.candidates.delete(wave.wave);
      // Not ready: a wave it waits for is not done, and that wave's end puts it back among the candidates.
      if (state.waves.get(wave.wave) !== "blocked" || !ready(state, run)) continue;
      if (wave.gate && !config.opened?.has(wave.wave)) {
        const early = state.early.findIndex((w) => w === undefined || w === wave.wave);
        if (early < 0) {
          state.waves.set(wave.wave, "awaiting_approval");
          out.push({ type: "await_approval", wave: wave.wave });
          continue;
        }
        const [approvedFor] = state.early.splice(early, 1);
        out.push({ type: "gate_opened", wave: wave.wave, approvedFor });
      }
      begin(state, wave.wave, out);
    }
  }
  if (!stopped && !state.paused) {
    for (const run of runningInOrder(state)) {
      // A retry keeps its slot (counted already): sent when due.
      for (const step of run.due.splice(0)) {
        if (step.state !== "retry_wait" || !step.due) continue;
        step.due = false;
        transition(state, step, "in_flight");
        out.push({ type: "send", key: step.key, wave: run.planned.wave, attempt: step.attempt });
      }
      while (run.cursor < run.steps.length) {
        if (run.holding >= config.maxInFlight || state.inFlight >= config.maxInFlightTotal) break;
        const step = run.steps[run.cursor] as StepEntry;
        if (step.state !== "waiting") {
          run.cursor++;
          continue;
        }
        // Every step of a wave is the same service and action: one that must wait holds back the rest.
        const floor = availabilityFloor(config, state, step);
        if (floor === "wait") break;
        run.cursor++;
        const blocker = floor ?? failedPredecessor(config, state, step);
        if (blocker) {
          transition(state, step, "cancelled");
          out.push({ type: "cancel", key: step.key, wave: run.planned.wave, reason: blocker });
          continue;
        }
        transition(state, step, "in_flight");
        out.push({ type: "send", key: step.key, wave: run.planned.wave, attempt: step.attempt });
      }
    }
    // A wave whose steps were all cancelled for their predecessors ended here, and may unblock others.
    if (closeEnded(state, out)) {
      advance(config, state, out);
      return;
    }
  }
  if (state.ended === state.steps.size && state.inFlight === 0) {
    const anyWaiting = [...state.waves.values()].some((w) => w === "awaiting_approval");
    if (anyWaiting && !stopped) return;
    state.finished = true;
    out.push({
      type: "finished",
      status: state.aborted ? "aborted" : state.halted ? "halted" : "done",
    });
  }
}

/** A wave may begin once its service's earlier waves and every wave of the services it comes after are done. */
function ready(state: ScheduleState, run: WaveRun): boolean {
  return run.waitsFor.every((wave) => state.waves.get(wave) === "done");
}

/**
 * Whether sending this step would take its service past maxUnavailable: "wait" while something of the service is
 * still in progress (it may come back), the reason to cancel when nothing is, undefined when it may go.
 */
function availabilityFloor(
  config: ScheduleConfig,
  state: ScheduleState,
  step: StepEntry,
): "wait" | string | undefined {
  const max = config.maxUnavailable;
  if (max === undefined || step.action === "start") return undefined;
  const { down, inProgress } = state.unavailable.get(step.service) ?? { down: 0, inProgress: 0 };
  if (down < max) return undefined;
  if (inProgress > 0) return "wait";
  return `availability floor: ${down} of ${step.service}'s instances down by this rollout (maxUnavailable ${max})`;
}

/** On this step's host, a service it comes after whose step there did not succeed: the reason to cancel. */
function failedPredecessor(
  config: ScheduleConfig,
  state: ScheduleState,
  step: StepEntry,
): string | undefined {
  for (const service of config.after.get(step.service) ?? []) {
    for (const other of state.byHostService.get(`${step.host}\u0000${service}`) ?? []) {
      if (!other.succeeded)
        return `${service} on ${step.host} did not succeed (${other.state === "cancelled" ? "cancelled" : "not verified"}), and ${step.service} comes after it`;
    }
  }
  return undefined;
}

/**
 * The services each service comes after in this rollout's direction: for start and restart its dependencies, for
 * stop its dependants (stopped first). Services outside the plan's waves are left out.
 */
export function executionOrder(
  services: Array<{ name: string; dependsOn: string[] }>,
  action: "stop" | "start" | "restart",
): Map<string, string[]> {
  const after = new Map<string, string[]>(services.map((s) => [s.name, []]));
  for (const service of services) {
    for (const dependency of service.dependsOn) {
      if (action === "stop") after.get(dependency)?.push(service.name);
      else after.get(service.name)?.push(dependency);
    }
  }
  return after;
}

/**
 * The longest chain of waves through the graph (by count of waves): what bounds the rollout's duration however
 * many run in parallel. Services in execution order, each with its number of waves.
 */
export function criticalPath(waves: PlannedWave[], after: Map<string, string[]>): string[] {
  const count = new Map<string, number>();
  for (const wave of waves) count.set(wave.service, (count.get(wave.service) ?? 0) + 1);
  const memo = new Map<string, { length: number; path: string[] }>();
  const longest = (service: string): { length: number; path: string[] } => {
    const known = memo.get(service);
    if (known) return known;
    let best = { length: 0, path: [] as string[] };
    for (const before of after.get(service) ?? []) {
      const candidate = longest(before);
      if (candidate.length > best.length) best = candidate;
    }
    const own = count.get(service) ?? 0;
    const result = { length: best.length + own, path: own > 0 ? [...best.path, service] : best.path };
    memo.set(service, result);
    return result;
  };
  let best = { length: 0, path: [] as string[] };
  for (const service of count.keys()) {
    const candidate = longest(service);
    if (candidate.length > best.length) best = candidate;
  }
  return best.path;
}

/**
 * Whether a started service is still what its start verified, `ms` after: the status command's observation
 * against the start's pid. Running, the same process (when both pids are known) and not failing its health probe
 * is healthy; anything else is `failed` with what was seen, and no observation at all is `unknown`.
 */
export function judgeHealth(
  started: { pid?: number | undefined },
  status:
    | {
        outcome: "success" | "failure" | "unknown";
        reason?: string | undefined;
        evidence: string;
        observed?: { status?: string; pid?: number; healthy?: boolean } | undefined;
      }
    | undefined,
  ms: number,
): { status: "success" | "failed" | "unknown"; reason?: string; evidence: string } {
  if (!status)
    return {
      status: "unknown",
      reason: `not observed ${ms} ms after it started`,
      evidence: "no status reply",
    };
  const observed = status.observed;
  if (status.outcome !== "success" || !observed?.status)
    return {
      status: "unknown",
      reason: `its state ${ms} ms after it started could not be read${status.reason ? ` (${status.reason})` : ""}`,
      evidence: status.evidence,
    };
  if (observed.status !== "running")
    return {
      status: "failed",
      reason: `${observed.status} ${ms} ms after it started`,
      evidence: status.evidence,
    };
  if (started.pid !== undefined && observed.pid !== undefined && observed.pid !== started.pid)
    return {
      status: "failed",
      reason: `restarted within ${ms} ms of its start (pid ${started.pid}, now ${observed.pid})`,
      evidence: status.evidence,
    };
  if (observed.healthy === false)
    return {
      status: "failed",
      reason: `health probe failing ${ms} ms after it started`,
      evidence: status.evidence,
    };
  // What the success rests on, and what it could not check: without both pids a restart in between is not seen.
  const pid =
    started.pid !== undefined && observed.pid !== undefined
      ? `same pid ${observed.pid}`
      : "pid not compared (not known both at start and now)";
  const probe = observed.healthy === true ? "health probe passing" : "no health probe";
  return { status: "success", evidence: `${status.evidence}; running, ${pid}, ${probe}` };
}
