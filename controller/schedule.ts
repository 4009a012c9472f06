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
}

type WaveState = "blocked" | "awaiting_approval" | "running" | "done";
type StepState = "waiting" | "in_flight" | "retry_wait" | "verifying" | "soaking" | "settled" | "cancelled";

/** States in which a step takes one of its wave's maxInFlight slots (and one of maxInFlightTotal). */
const HOLDS_SLOT = new Set<StepState>(["in_flight", "retry_wait", "verifying", "soaking"]);

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

export interface ScheduleState {
  readonly waves: Map<number, WaveState>;
  readonly steps: Map<string, StepEntry>;
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
  for (const wave of config.waves) {
    waves.set(wave.wave, "blocked");
    for (const step of wave.steps) {
      steps.set(keyOf(step), {
        key: keyOf(step),
        action: step.action,
        host: step.host,
        service: step.service,
        wave: wave.wave,
        state: "waiting",
        succeeded: false,
        soakMs: wave.soakMs ?? config.soakMs,
        attempt: 1,
        verify: (config.minHealthyTimeMs ?? 0) > 0 && step.action !== "stop",
      });
    }
  }
  return { waves, steps, inFlight: 0, failures: 0, ended: 0, finished: false, early: [] };
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
      if (step.state === "in_flight") state.inFlight--;
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
        step.state = "retry_wait";
        state.inFlight++;
        step.attempt++;
        decisions.push({
          type: "retry",
          key: step.key,
          wave: step.wave,
          attempt: step.attempt,
          delayMs: Math.min(retries.maxBackoffMs, retries.backoffMs * 2 ** (step.attempt - 2)),
        });
        break;
      }
      if (event.success && step.verify) {
        // Not a success yet: the service must still be up, the same process and healthy after minHealthyTimeMs.
        step.state = "verifying";
        state.inFlight++;
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
      state.inFlight--;
      conclude(config, state, step, event.success, event.counts, decisions);
      break;
    }
    case "retry_due": {
      const step = state.steps.get(event.key);
      if (step?.state !== "retry_wait") return [];
      step.due = true; // sent by advance() below, unless paused (then on continue)
      break;
    }
    case "soaked": {
      const step = state.steps.get(event.key);
      if (step?.state !== "soaking") return [];
      step.state = "settled";
      state.inFlight--;
      state.ended++;
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
      state.waves.set(wave, "running");
      decisions.push({ type: "gate_opened", wave, approvedFor: event.wave }, { type: "begin_wave", wave });
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
  step.succeeded = success;
  decisions.push({ type: "final", key: step.key, wave: step.wave });
  if (step.soakMs > 0 && !state.aborted && !state.halted) {
    step.state = "soaking";
    state.inFlight++;
    decisions.push({ type: "soak", key: step.key, ms: step.soakMs });
  } else {
    step.state = "settled";
    state.ended++;
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
        step.state = "settled";
        state.inFlight--;
        state.ended++;
        state.failures++;
        out.push({ type: "final", key: step.key, wave: wave.wave });
        continue;
      }
      if (step?.state !== "waiting") continue;
      step.state = "cancelled";
      state.ended++;
      out.push({ type: "cancel", key: step.key, wave: wave.wave, reason });
    }
  }
}

function waveEnded(state: ScheduleState, wave: PlannedWave): boolean {
  return wave.steps.every((s) => {
    const st = state.steps.get(keyOf(s))?.state;
    return st === "settled" || st === "cancelled";
  });
}

/** Begins what may begin, sends what has room, closes waves that ended, finishes when nothing is left. */
function advance(config: ScheduleConfig, state: ScheduleState, out: Decision[]): void {
  const stopped = state.halted ?? state.aborted;
  for (const wave of config.waves) {
    const current = state.waves.get(wave.wave);
    if (current === "running" && waveEnded(state, wave)) {
      state.waves.set(wave.wave, "done");
      out.push({ type: "wave_done", wave: wave.wave });
    }
  }
  if (!stopped) {
    for (const wave of config.waves) {
      if (state.waves.get(wave.wave) !== "blocked" || !ready(config, state, wave)) continue;
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
      state.waves.set(wave.wave, "running");
      out.push({ type: "begin_wave", wave: wave.wave });
    }
  }
  if (!stopped && !state.paused) {
    for (const wave of config.waves) {
      if (state.waves.get(wave.wave) !== "running") continue;
      let inWave = 0;
      for (const planned of wave.steps) {
        const step = state.steps.get(keyOf(planned));
        if (step && HOLDS_SLOT.has(step.state)) inWave++;
        // A retry keeps its slot (counted in inFlight already): sent when due.
        if (step?.state === "retry_wait" && step.due) {
          step.state = "in_flight";
          step.due = false;
          out.push({ type: "send", key: step.key, wave: wave.wave, attempt: step.attempt });
        }
      }
      for (const planned of wave.steps) {
        if (inWave >= config.maxInFlight || state.inFlight >= config.maxInFlightTotal) break;
        const step = state.steps.get(keyOf(planned));
        if (step?.state !== "waiting") continue;
        const floor = availabilityFloor(config, state, step);
        if (floor === "wait") continue;
        const blocker = floor ?? failedPredecessor(config, state, step);
        if (blocker) {
          step.state = "cancelled";
          state.ended++;
          out.push({ type: "cancel", key: step.key, wave: wave.wave, reason: blocker });
          continue;
        }
        step.state = "in_flight";
        state.inFlight++;
        inWave++;
        out.push({ type: "send", key: step.key, wave: wave.wave, attempt: 1 });
      }
    }
    // A wave whose steps were all cancelled for their predecessors ended here.
    for (const wave of config.waves) {
      if (state.waves.get(wave.wave) === "running" && waveEnded(state, wave)) {
        state.waves.set(wave.wave, "done");
        out.push({ type: "wave_done", wave: wave.wave });
        advance(config, state, out);
        return;
      }
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
function ready(config: ScheduleConfig, state: ScheduleState, wave: PlannedWave): boolean {
  const before = new Set(config.after.get(wave.service) ?? []);
  for (const other of config.waves) {
    if (other.wave === wave.wave) continue;
    const earlierOfSame = other.service === wave.service && other.wave < wave.wave;
    if ((earlierOfSame || before.has(other.service)) && state.waves.get(other.wave) !== "done") return false;
  }
  return true;
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
  let down = 0;
  let inProgress = 0;
  for (const other of state.steps.values()) {
    if (other.service !== step.service || other.action === "start") continue;
    if (HOLDS_SLOT.has(other.state) && other.state !== "soaking") {
      down++;
      inProgress++;
    } else if (other.state === "settled" || other.state === "soaking") {
      if (other.action === "stop" ? other.succeeded : !other.succeeded) down++;
    }
  }
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
    for (const other of state.steps.values()) {
      if (other.host !== step.host || other.service !== service) continue;
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
  return { status: "success", evidence: status.evidence };
}
