import { createPrivateKey, createPublicKey, type KeyObject, randomUUID } from "node:crypto";
import { SpanKind } from "@opentelemetry/api";
import { type Command, type SignedCommand, type SignedStatement, signCommand } from "../core/commands.ts";
import { controlMessages, controlPartitionCount } from "../core/control-plane.ts";
import { deterministicId, EVENT_PROVIDERS, type EventOutcome, lifecycleEvent } from "../core/events.ts";
import { CoalescingSender } from "../core/kafka/coalescing-sender.ts";
import { unpackRecords } from "../core/kafka/packing.ts";
import type { KafkaPort as Kafka, KafkaProducer as Producer } from "../core/kafka/port.ts";
import { TopicFollower } from "../core/kafka/topic-follower.ts";
import type { Logger } from "../core/logger.ts";
import { type LifelineSpan, startSpan } from "../core/observability/tracing.ts";
import {
  type AttributedOutcome,
  type OutcomeEvent,
  outcomeFrom,
  STEP_OUTCOMES,
  type StepStatus,
} from "../core/outcome.ts";
import { jittered } from "../core/retry.ts";
import { topicNames } from "../core/topics.ts";
import type { TraceContext } from "../core/trace-context.ts";
import { type Approval, rejectApproval } from "./approval.ts";
import type { Plan, PlannedStep, RolloutPlan } from "./plan.ts";
import { splitPlan } from "./plan-record.ts";
import {
  type Decision,
  executionOrder,
  initialState,
  judgeHealth,
  reduce,
  type ScheduleConfig,
  type ScheduleEvent,
  type ScheduleState,
} from "./schedule.ts";

export type { StepStatus };
export type RolloutStatus = "success" | "failed" | "incomplete" | "halted" | "cancelled";

/** What a restarted controller knows of a rollout from the lifecycle topic (see history.ts). */
export interface ResumeState {
  rolloutId: string;
  /** The original rollout span: the resumed part continues its trace. */
  root: TraceContext;
  /** Steps whose outcome is known. */
  results: Map<string, StepResult>;
  /** Steps whose command was sent (or about to be), outcome not yet seen. */
  pending: Map<string, SentCommand>;
  startedWaves: Set<number>;
  /** The rollout was aborted before the controller stopped: nothing new is sent. */
  aborted?: string;
  /** The rollout was paused (and not continued) before the controller stopped: it stays paused. */
  paused?: string;
  /** Steps whose step.completed is on the topic already (stepKey). */
  recorded?: Set<string>;
  /** Commands sent per step (stepKey) before the restart: its attempts so far; `results`/`pending` hold the latest. */
  attempts?: Map<string, number>;
  /** Re-reads the state once the controller follows the topic again, so no outcome falls in between. */
  refresh?: () => Promise<ResumeState>;
}

/** A command as `command.sent` recorded it: the signed message itself, so a resumed controller can send it again. */
export interface SentCommand {
  commandId: string;
  signed?: SignedCommand;
}

export interface StepProgress {
  settled: number;
  failed: number;
  total: number;
  wave: number;
  waves: number;
}

export const stepKey = (step: PlannedStep): string => `${step.host}/${step.service}/${step.action}`;

export interface StepResult extends PlannedStep {
  commandId: string;
  status: StepStatus;
  reason?: string;
  /** The stop needed escalation (SIGKILL, taskkill): the step can still be a success, and is counted apart. */
  escalated?: boolean;
  /** What the status rests on: the agent's verified event, or the controller's own decision. */
  evidence?: string;
  /** A failure the agent marked retryable (the service verified where a fresh attempt starts). */
  retryable?: boolean;
  /** The attempt this result came from, when the step was tried more than once. */
  attempts?: number;
  /** The pid the agent reported with its completion (a start's new process). */
  pid?: number;
}

/** Counts of a rollout's steps by status, escalations apart (they are successes that needed force). */
export interface RolloutSummary {
  total: number;
  success: number;
  failed: number;
  timed_out: number;
  unknown: number;
  undeliverable: number;
  cancelled: number;
  escalated: number;
}

export function summarize(steps: StepResult[]): RolloutSummary {
  const summary: RolloutSummary = {
    total: steps.length,
    success: 0,
    failed: 0,
    timed_out: 0,
    unknown: 0,
    undeliverable: 0,
    cancelled: 0,
    escalated: 0,
  };
  for (const step of steps) {
    if (step.status in summary) summary[step.status as keyof RolloutSummary]++;
    if (step.escalated) summary.escalated++;
  }
  return summary;
}

export function describeSummary(s: RolloutSummary): string {
  const parts = [`${s.success} succeeded${s.escalated > 0 ? ` (${s.escalated} escalated)` : ""}`];
  for (const key of ["failed", "timed_out", "unknown", "undeliverable", "cancelled"] as const)
    if (s[key] > 0) parts.push(`${s[key]} ${key.replace("_", " ")}`);
  return `${s.total} steps: ${parts.join(", ")}`;
}

/** Sends signed in one turn of the event loop before the sender gets to put them on the wire. */
const SEND_SLICE = 250;

/**
 * A rollout's one status. `success` only when every planned step has a verified success: a step missing from the
 * results (the controller failed before it settled) makes it `incomplete`, never `success`.
 */
export function rolloutStatus(ended: {
  aborted: boolean;
  halted: boolean;
  planned: number;
  steps: StepResult[];
}): RolloutStatus {
  if (ended.aborted) return "cancelled";
  if (ended.halted) return "halted";
  const { steps } = ended;
  if (steps.length === ended.planned && steps.every((s) => s.status === "success")) return "success";
  if (steps.some((s) => s.status === "failed" || s.status === "timed_out")) return "failed";
  return "incomplete";
}

/** Statuses that count against the failure budget: nothing verified that the step did what it should. */
const COUNTS_AGAINST_BUDGET = new Set<StepStatus>(["failed", "timed_out", "unknown"]);

export { overBudget } from "./schedule.ts";

export interface RolloutResult {
  rolloutId: string;
  traceId: string;
  status: RolloutStatus;
  steps: StepResult[];
  rollback: StepResult[];
  summary: RolloutSummary;
  haltReason?: string;
}

/** What the runner does for each of the schedule's decisions (schedule.ts). */
interface Shell {
  beginWave(wave: number): Promise<void>;
  send(key: string, wave: number, attempt: number): void;
  retry(key: string, wave: number, attempt: number, delayMs: number): Promise<void>;
  verify(key: string, wave: number, ms: number): void;
  final(key: string, wave: number): Promise<void>;
  soak(key: string, ms: number): void;
  cancel(key: string, wave: number, reason: string): Promise<void>;
  waveDone(wave: number): void;
  awaitApproval(wave: number): Promise<void>;
  gateOpened(wave: number, approvedFor: number | undefined): Promise<void>;
  paused(reason: string): Promise<void>;
  resumed(): Promise<void>;
  halted(reason: string, rollback: boolean): Promise<void>;
  finished(status: "done" | "halted" | "aborted"): void;
}

/**
 * Runs a built plan: waves in order, at most maxInFlight commands at once, each command signed and carrying the
 * traceparent of its own span (child of its wave's, child of the rollout's). Outcomes are followed on the
 * lifecycle topic; no outcome by the deadline is `timed_out` (never success). Past the failure budget nothing new
 * is scheduled, in-flight commands finish, `rollout.halted` is emitted and the rollback policy runs.
 */
export class RolloutRunner {
  private readonly kafka: Kafka;
  private readonly logger: Logger;
  private readonly topicPrefix: string;
  private readonly signer: { keyId: string; privateKeyPem: string };
  /** Parsed once: parsing the PEM for every command cost more than signing it. */
  private readonly signingKey: KeyObject;
  private readonly progress: (line: string) => void;
  private readonly undeliverable: Map<string, string>;
  private readonly onStep: ((progress: StepProgress) => void) | undefined;
  private producer: Producer | undefined;
  private lifecycle: CoalescingSender | undefined;
  private control: CoalescingSender | undefined;
  /** The control topic's partition count (each host's commands go to its partition: core/control-plane.ts). */
  private controlPartitions = 1;
  private partitionsCheck: NodeJS.Timeout | undefined;
  private follower: TopicFollower | undefined;
  /** The first verified outcome of each command this controller sent (core/outcome.ts outcomeFrom). */
  private readonly outcomes = new Map<string, AttributedOutcome>();
  /** The host each command was addressed to: only that host's agent may report its outcome. */
  private readonly addressed = new Map<string, string>();
  /** A valid abort received while steps were running: nothing new is sent. */
  private abortedBy: Approval | undefined;
  /** Published commands awaiting their outcome (awaitResult), by command id. */
  private readonly pending = new Map<string, Waiting>();
  // Set by run(): one runner runs one rollout.
  private rollout!: LifelineSpan;
  private rolloutId = "";
  private sequence = 0;
  private plan: Plan | undefined;
  /** Valid approvals not yet matched to the gate they opened. */
  private approvals: Approval[] = [];
  /** The span of each step's latest command, for its final record. */
  private readonly stepSpans = new Map<string, LifelineSpan>();
  /** Feeds an event to the running schedule (set by run()). */
  private dispatch: ((event: ScheduleEvent) => Promise<void>) | undefined;
  /** Who continued a paused rollout, for its record. */
  private continuedBy: string | undefined;
  /** The schedule's state while it runs (read to answer pause and continue). */
  private schedule: ScheduleState | undefined;
  /** Decisions that arrived before the schedule existed. */
  private queued: ScheduleEvent[] = [];

  constructor(options: {
    kafka: Kafka;
    logger: Logger;
    topicPrefix: string;
    signer: { keyId: string; privateKeyPem: string };
    progress: (line: string) => void;
    /** Hosts with no live agent: their steps are `undeliverable`, never sent, not counted as failures. */
    undeliverable?: Map<string, string>;
    /** Called as each step settles: for a live progress bar. */
    onStep?: (progress: StepProgress) => void;
  }) {
    this.onStep = options.onStep;
    this.undeliverable = options.undeliverable ?? new Map();
    this.kafka = options.kafka;
    this.logger = options.logger;
    this.topicPrefix = options.topicPrefix;
    this.signer = options.signer;
    this.signingKey = createPrivateKey(options.signer.privateKeyPem);
    this.progress = options.progress;
  }

  async run(plan: Plan, built: RolloutPlan, resume?: ResumeState): Promise<RolloutResult> {
    this.plan = plan;
    this.rolloutId = resume?.rolloutId ?? `${plan.name}-${Date.now().toString(36)}`;
    this.rollout = startSpan(`rollout ${plan.name}${resume ? " (resumed)" : ""}`, {
      ...(resume ? { parent: resume.root } : {}),
      attributes: { "lifeline.rollout_id": this.rolloutId, "lifeline.action": plan.action },
    });
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    // Concurrent steps' events and commands share requests; each step still awaits its own acknowledgement.
    const topics = topicNames(this.topicPrefix);
    this.lifecycle = new CoalescingSender(this.producer, topics.lifecycle);
    this.control = new CoalescingSender(this.producer, topics.control);
    await this.watchControlPartitions();
    if (resume?.aborted)
      this.abortedBy = {
        rolloutId: this.rolloutId,
        decision: "abort",
        by: "(recorded)",
        at: "",
        reason: resume.aborted,
      };
    await this.follow();
    if (resume?.refresh) {
      const latest = await resume.refresh();
      for (const [key, result] of latest.results)
        if (!resume.results.has(key)) resume.results.set(key, result);
      for (const key of latest.recorded ?? []) resume.recorded?.add(key);
    }
    try {
      if (resume) {
        await this.event("rollout.resumed", "success", {
          reason: `${resume.results.size} steps settled, ${resume.pending.size} awaiting their outcome`,
        });
      } else {
        // The plan's steps go in parts (controller/plan-record.ts): a large fleet's would not fit in one record.
        const { head, parts } = splitPlan(built);
        await this.event("rollout.planned", "success", {
          reason: `${built.waves.length} waves, ${built.hosts} hosts`,
          extra: {
            plan,
            built: head,
            built_parts: parts.length,
            undeliverable: Object.fromEntries(this.undeliverable),
          },
        });
        await Promise.all(
          parts.map((part) =>
            this.event("rollout.plan_part", "success", {
              reason: `plan part ${part.index + 1} of ${parts.length}: ${part.steps.length} steps`,
              extra: { plan_part: part },
            }),
          ),
        );
      }
      this.progress(
        `rollout ${this.rolloutId} ${resume ? "resumed" : "started"} (trace ${this.rollout.traceId})`,
      );
      const config: ScheduleConfig = {
        waves: built.waves,
        after: executionOrder(plan.services, plan.action),
        maxInFlight: plan.waves.maxInFlight,
        maxInFlightTotal: plan.waves.maxInFlightTotal ?? Number.POSITIVE_INFINITY,
        budget: plan.failureBudget,
        onFailure: plan.onFailure,
        soakMs: plan.waves.soakMs,
        opened: resume?.startedWaves ?? new Set(),
        ...(plan.retries ? { retries: plan.retries } : {}),
        minHealthyTimeMs: plan.waves.minHealthyTimeMs,
        ...(plan.waves.maxUnavailable !== undefined ? { maxUnavailable: plan.waves.maxUnavailable } : {}),
        ...(resume?.attempts ? { attemptsMade: resume.attempts } : {}),
      };
      const state = initialState(config);
      const planned = new Map<string, PlannedStep>();
      for (const wave of built.waves) for (const step of wave.steps) planned.set(stepKey(step), step);
      const total = planned.size;
      const results = new Map<string, StepResult>();
      const waveSpans = new Map<number, LifelineSpan>();
      let haltReason: string | undefined;
      let rollbackWanted = false;
      let failedCount = 0;
      let finish: (status: "done" | "halted" | "aborted") => void = () => {};
      const finished = new Promise<"done" | "halted" | "aborted">((resolve) => {
        finish = resolve;
      });
      // Events are applied one at a time, each one's decisions carried out in order before the next event.
      let chain = Promise.resolve();
      /** A decision the controller could not carry out: the rollout ends, and its record never says success. */
      let failure: string | undefined;
      const failed = (error: Error) => {
        this.logger.error({ err: error }, "rollout decision failed");
        failure ??= `the controller could not carry out a decision: ${error.message}`;
        finish(state.aborted ? "aborted" : "halted");
      };
      const dispatch = (event: ScheduleEvent): Promise<void> => {
        chain = chain.then(() => this.carryOut(reduce(config, state, event), shell)).catch(failed);
        return chain;
      };
      /**
       * Steps' final records on their way to Kafka. The next decision does not wait for one's acknowledgement
       * (10,000 settled steps would be 10,000 round trips in a row); the sender keeps them in order with the
       * events after them, and the rollout's own end waits for every one.
       */
      const recording = new Set<Promise<void>>();
      const track = (record: Promise<void>) => {
        const tracked = record.catch(failed).finally(() => recording.delete(tracked));
        recording.add(tracked);
      };
      /** Each step's latest attempt: final once the schedule says so (a retryable failure may be tried again). */
      const latest = new Map<string, StepResult>();
      const settle = (result: StepResult) => {
        latest.set(stepKey(result), result);
        void dispatch({
          type: "settled",
          key: stepKey(result),
          success: result.status === "success",
          counts: COUNTS_AGAINST_BUDGET.has(result.status),
          ...(result.retryable ? { retryable: true } : {}),
        });
      };
      const shell: Shell = {
        beginWave: async (wave) => {
          const planned = built.waves.find((w) => w.wave === wave);
          if (!planned) return;
          const span = startSpan(`wave ${wave} ${plan.action} ${planned.service}`, {
            parent: this.rollout,
            attributes: { "lifeline.wave": wave, "lifeline.hosts": planned.steps.length },
          });
          waveSpans.set(wave, span);
          const where = `${planned.service} on ${listHosts(planned.steps.map((s) => s.host))}`;
          if (!resume?.startedWaves.has(wave))
            await this.event("wave.started", "success", { reason: `wave ${wave}: ${where}`, span, wave });
          this.progress(`wave ${wave}/${built.waves.length}: ${plan.action} ${where}`);
        },
        send: (key, wave, attempt) => {
          const step = planned.get(key) as PlannedStep;
          const span = waveSpans.get(wave) ?? this.rollout;
          const settled = (result: StepResult) =>
            settle(attempt > 1 ? { ...result, attempts: attempt } : result);
          // The attempt the crashed run made last: its recorded outcome or command speaks for this send.
          const resumed = attempt === Math.max(1, resume?.attempts?.get(key) ?? 1);
          const known = resumed ? resume?.results.get(key) : undefined;
          // Settled before the restart; replayed through the same decisions, so a resumed run halts where the
          // crashed one did. Settled in a later turn, as a fresh send is: never inside the decision carrying it out.
          if (known) {
            queueMicrotask(() => settled(known));
            return;
          }
          const sent = resumed ? resume?.pending.get(key) : undefined;
          if (sent) this.awaitOutcome(step, sent, plan, settled);
          else this.startStep(plan, step, span, wave, settled);
        },
        retry: async (key, wave, attempt, delayMs) => {
          const last = latest.get(key) as StepResult;
          // Equal jitter: between half the backoff and all of it, so retries of many hosts do not line up.
          const ms = jittered(delayMs, "equal");
          const of = (plan.retries?.attempts ?? 0) + 1;
          await this.event("step.retry_scheduled", "failure", {
            reason: `${last.action} ${last.service} on ${last.host}: attempt ${attempt} of ${of} in ${ms} ms after ${last.status}${last.reason ? ` (${last.reason})` : ""}`,
            span: this.stepSpans.get(key) ?? waveSpans.get(wave) ?? this.rollout,
            ...(last.commandId ? { commandId: last.commandId } : {}),
            step: { host: last.host, service: last.service, action: last.action },
            wave,
            extra: { attempt, backoff_ms: ms, evidence: last.evidence },
          });
          this.progress(
            `  ${last.host} ${last.service}: ${last.status}${last.reason ? ` (${last.reason})` : ""}; retrying, attempt ${attempt} of ${of} in ${ms} ms`,
          );
          setTimeout(() => void dispatch({ type: "retry_due", key }), ms);
        },
        verify: (key, wave, ms) => {
          const started = latest.get(key) as StepResult;
          const span = this.stepSpans.get(key) ?? waveSpans.get(wave) ?? this.rollout;
          setTimeout(() => {
            void (async () => {
              const status = await this.execute(
                plan,
                { host: started.host, service: started.service, action: "status" },
                span,
                wave,
                false,
              ).catch(() => undefined);
              const observed = status?.commandId ? this.outcomes.get(status.commandId) : undefined;
              const judged = judgeHealth(started, observed, ms);
              latest.set(key, {
                ...started,
                status: judged.status,
                ...(judged.reason
                  ? { reason: `${started.reason ? `${started.reason}, then ` : ""}${judged.reason}` }
                  : {}),
                evidence: `${started.evidence ?? ""}; ${ms} ms later: ${judged.evidence}`,
              });
              await dispatch({
                type: "verified",
                key,
                success: judged.status === "success",
                counts: judged.status !== "success",
              });
            })();
          }, ms);
        },
        final: async (key, wave) => {
          const result = latest.get(key) as StepResult;
          results.set(key, result);
          this.progress(
            `  ${result.host} ${result.service}: ${result.status}${result.escalated ? " (escalated)" : ""}${result.attempts ? ` (attempt ${result.attempts})` : ""}${result.reason ? ` (${result.reason})` : ""}`,
          );
          if (COUNTS_AGAINST_BUDGET.has(result.status)) failedCount++;
          this.onStep?.({
            settled: results.size,
            failed: failedCount,
            total,
            wave,
            waves: built.waves.length,
          });
          // Its one final record (a resumed rollout's step may have it already).
          if (!(resume?.recorded?.has(key) && resume.results.get(key) === result))
            track(
              this.recordStep(result, this.stepSpans.get(key) ?? waveSpans.get(wave) ?? this.rollout, wave),
            );
          // Nothing after a step's final record uses its span: 10,000 of them need not live to the end.
          this.stepSpans.delete(key);
        },
        soak: (key, ms) => {
          setTimeout(() => void dispatch({ type: "soaked", key }), ms);
        },
        cancel: async (key, wave, reason) => {
          results.set(key, await this.cancel(planned.get(key) as PlannedStep, wave, reason));
        },
        waveDone: (wave) => {
          const failed = (built.waves.find((w) => w.wave === wave)?.steps ?? []).some(
            (s) => results.get(stepKey(s))?.status !== "success",
          );
          waveSpans.get(wave)?.end(failed ? "failure" : "success", failed ? "some steps failed" : undefined);
        },
        awaitApproval: async (wave) => {
          await this.event("rollout.awaiting_approval", "success", { reason: `before wave ${wave}`, wave });
          this.progress(
            `waiting for approval before wave ${wave}/${built.waves.length}: lifeline rollout approve ${this.rolloutId} --wave ${wave} (or abort)`,
          );
        },
        gateOpened: async (wave, approvedFor) => {
          const index = this.approvals.findIndex((a) => a.wave === approvedFor);
          const [approval] = index >= 0 ? this.approvals.splice(index, 1) : [];
          await this.event("rollout.approved", "success", {
            reason: `wave ${wave} by ${approval?.by ?? "(unknown)"}${approval?.reason ? `: ${approval.reason}` : ""}`,
            wave,
          });
          this.progress(`approved by ${approval?.by ?? "(unknown)"}`);
        },
        paused: async (reason) => {
          await this.event("rollout.paused", "success", {
            reason: `${reason}; in-flight steps finish, nothing new is sent until \`lifeline rollout continue ${this.rolloutId}\` (or abort)`,
          });
          this.progress(`paused: ${reason} (lifeline rollout continue ${this.rolloutId}, or abort)`);
        },
        resumed: async () => {
          await this.event("rollout.continued", "success", { reason: this.continuedBy ?? "continued" });
          this.progress(`continued${this.continuedBy ? ` (${this.continuedBy})` : ""}`);
        },
        halted: async (reason, rollback) => {
          haltReason = reason;
          rollbackWanted = rollback || plan.rollback === "start-stopped";
          await this.event("rollout.halted", "failure", { reason });
          this.progress(`halted: ${reason}`);
        },
        finished: (status) => finish(status),
      };
      this.dispatch = dispatch;
      this.schedule = state;
      if (resume?.aborted)
        await dispatch({ type: "abort", reason: this.abortReason(this.abortedBy as Approval) });
      else if (resume?.paused) {
        state.paused = resume.paused;
        this.progress(`paused before the controller restarted: ${resume.paused}`);
      }
      await dispatch({ type: "begin" });
      for (const event of this.queued.splice(0)) await dispatch(event);
      const ended = await finished;
      await chain;
      await Promise.all(recording);
      const steps = built.waves.flatMap((wave) =>
        wave.steps.map((step) => results.get(stepKey(step))).filter((r): r is StepResult => r !== undefined),
      );
      const aborted = ended === "aborted";
      if (aborted) haltReason = state.aborted;
      if (failure) haltReason ??= failure;
      // An abort means nothing new is sent: no rollback either.
      const rollback = haltReason && !aborted && rollbackWanted ? await this.rollBack(plan, steps) : [];
      const status = rolloutStatus({ aborted, halted: haltReason !== undefined, planned: total, steps });
      const summary = summarize(steps);
      await this.event("rollout.completed", status === "success" ? "success" : "failure", {
        reason: status,
        extra: { summary, summary_text: describeSummary(summary) },
      });
      this.rollout.end(status === "success" ? "success" : "failure", haltReason ?? status);
      return {
        rolloutId: this.rolloutId,
        traceId: this.rollout.traceId,
        status,
        steps,
        rollback,
        summary,
        ...(haltReason ? { haltReason } : {}),
      };
    } finally {
      clearInterval(this.partitionsCheck);
      await this.follower?.stop();
      await this.producer?.disconnect().catch(() => {});
    }
  }

  /** Carries out one event's decisions in order (sends start at once; their outcomes come back as events). */
  private async carryOut(decisions: Decision[], shell: Shell): Promise<void> {
    let sent = 0;
    for (const decision of decisions) {
      switch (decision.type) {
        case "begin_wave":
          await shell.beginWave(decision.wave);
          break;
        case "send":
          shell.send(decision.key, decision.wave, decision.attempt);
          // Signing is the costly part of a send: a wave of 10,000 hosts signed in one turn of the event loop
          // would hold every command back for a second. Between slices, the first ones are already on their way.
          if (++sent % SEND_SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
          break;
        case "retry":
          await shell.retry(decision.key, decision.wave, decision.attempt, decision.delayMs);
          break;
        case "final":
          await shell.final(decision.key, decision.wave);
          break;
        case "verify":
          shell.verify(decision.key, decision.wave, decision.ms);
          break;
        case "soak":
          shell.soak(decision.key, decision.ms);
          break;
        case "cancel":
          await shell.cancel(decision.key, decision.wave, decision.reason);
          break;
        case "wave_done":
          shell.waveDone(decision.wave);
          break;
        case "await_approval":
          await shell.awaitApproval(decision.wave);
          break;
        case "gate_opened":
          await shell.gateOpened(decision.wave, decision.approvedFor);
          break;
        case "paused":
          await shell.paused(decision.reason);
          break;
        case "resumed":
          await shell.resumed();
          break;
        case "halted":
          await shell.halted(decision.reason, decision.rollback);
          break;
        case "finished":
          shell.finished(decision.status);
          break;
      }
    }
  }

  /**
   * A signed decision. Approvals open gates and come from the plan's approvers; an abort is honoured at any point
   * of any rollout, signed by an approver or by the controller's own key (whoever may run the rollout may stop
   * it). Anything else is recorded as rejected, so `lifeline rollout abort` can tell its user.
   */
  private async onApproval(statement: unknown): Promise<void> {
    const payload = (statement as { payload?: { decision?: string } } | undefined)?.payload;
    const trusted = [...(this.plan?.approvers ?? [])];
    // Whoever may run the rollout may stop, pause or continue it; opening a gate takes an approver.
    if (payload?.decision !== "approve") trusted.push(this.ownKey());
    const reason = rejectApproval(statement, this.rolloutId, trusted);
    if (reason) return this.refuse(reason);
    const approval = (statement as SignedStatement<Approval>).payload;
    const by = `by ${approval.by}${approval.reason ? `: ${approval.reason}` : ""}`;
    const schedule = this.schedule;
    switch (approval.decision) {
      case "approve":
        this.approvals.push(approval);
        return this.feed({
          type: "approved",
          ...(approval.wave !== undefined ? { wave: approval.wave } : {}),
        });
      case "abort":
        if (this.abortedBy) return;
        this.abortedBy = approval;
        await this.event("rollout.aborted", "success", {
          reason: `${by}; in-flight steps finish, nothing new is sent`,
        });
        this.progress(`aborted ${by}: in-flight steps finish, nothing new is sent`);
        return this.feed({ type: "abort", reason: this.abortReason(approval) });
      case "pause":
        if (schedule?.halted || schedule?.aborted || schedule?.finished)
          return this.refuse(
            `cannot pause: the rollout ${schedule.aborted ? "was aborted" : "halted or ended"}`,
          );
        if (schedule?.paused) {
          await this.event("rollout.paused", "success", { reason: `already paused: ${schedule.paused}` });
          return;
        }
        return this.feed({ type: "pause", reason: `paused ${by}` });
      case "continue":
        if (!schedule?.paused) return this.refuse("cannot continue: the rollout is not paused");
        this.continuedBy = by;
        return this.feed({ type: "resume" });
    }
  }

  private async refuse(reason: string): Promise<void> {
    await this.event("rollout.approval_rejected", "failure", { reason });
    this.progress(`approval rejected: ${reason}`);
  }

  /** An event for the schedule; one that comes before the schedule exists waits for it. */
  private async feed(event: ScheduleEvent): Promise<void> {
    if (this.dispatch) await this.dispatch(event);
    else this.queued.push(event);
  }

  private ownKey(): { id: string; publicKey: string } {
    const publicKey = createPublicKey(this.signer.privateKeyPem).export({ type: "spki", format: "pem" });
    return { id: this.signer.keyId, publicKey: String(publicKey) };
  }

  private abortReason(decision: Approval): string {
    if (decision.by === "(recorded)") return `aborted before the controller restarted (${decision.reason})`;
    return `aborted by ${decision.by}${decision.reason ? `: ${decision.reason}` : ""}`;
  }

  /** A step that will not run: its own final event, with the reason. */
  private async cancel(step: PlannedStep, wave: number, reason: string): Promise<StepResult> {
    const result: StepResult = {
      ...step,
      commandId: "",
      status: "cancelled",
      reason,
      evidence: "not sent: the controller's decision",
    };
    await this.recordStep(result, this.rollout, wave);
    return result;
  }

  /**
   * The step's one final outcome, `step.completed`: its status, the outcome it maps to (core/outcome.ts
   * STEP_OUTCOMES), the reason and what it rests on. Timelines, summaries and dashboards count these.
   */
  private async recordStep(result: StepResult, span: LifelineSpan, wave: number | undefined): Promise<void> {
    const outcome = STEP_OUTCOMES[result.status as keyof typeof STEP_OUTCOMES] ?? "unknown";
    await this.event("step.completed", outcome, {
      reason: `${result.action} ${result.service} on ${result.host}: ${result.status}${result.reason ? ` (${result.reason})` : ""}`,
      span,
      ...(result.commandId ? { commandId: result.commandId } : {}),
      step: { host: result.host, service: result.service, action: result.action },
      ...(wave !== undefined ? { wave } : {}),
      extra: {
        step_status: result.status,
        escalated: Boolean(result.escalated),
        ...(result.evidence ? { evidence: result.evidence } : {}),
      },
    });
  }

  /**
   * A command recorded as sent before a controller restart. The controller may have died between recording it
   * and publishing it, so the identical signed message goes out again while it is valid: an agent that already
   * has it reports a duplicate and runs nothing twice. Then its outcome is awaited.
   */
  private awaitOutcome(
    step: PlannedStep,
    sent: SentCommand,
    plan: Plan,
    done: (result: StepResult) => void,
  ): void {
    const { commandId, signed } = sent;
    this.addressed.set(commandId, step.host);
    const republish =
      signed && !this.outcomes.has(commandId) && Date.parse(signed.command.expiresAt) > Date.now()
        ? this.publishCommand(step, signed)
        : Promise.resolve();
    republish.then(
      () => this.awaitResult(step, commandId, plan, done),
      (error: Error) => done(this.controllerFailed(step, error)),
    );
  }

  private async publishCommand(_step: PlannedStep, signed: SignedCommand): Promise<void> {
    // To the partition of the host it names, which that host's agent reads (one host's commands stay in order).
    const headers = signed.command.traceparent ? { traceparent: signed.command.traceparent } : undefined;
    const control = this.control;
    if (!control) return;
    await Promise.all(
      controlMessages(signed, this.controlPartitions, headers).map((message) => control.send(message)),
    );
  }

  /**
   * Reads the control topic's partition count now and every 30 s: agents check theirs as often, so after the
   * topic grows both sides agree again within that time (agent/control-feed.ts reads its new partition from a
   * minute before, so commands sent meanwhile are not missed).
   */
  private async watchControlPartitions(): Promise<void> {
    const topic = topicNames(this.topicPrefix).control;
    const read = async () => {
      this.controlPartitions = await controlPartitionCount(this.kafka, topic);
    };
    await read();
    this.partitionsCheck = setInterval(
      () =>
        void read().catch((error: Error) =>
          this.logger.warn({ topic, err: error.message }, "control topic partition count not refreshed"),
        ),
      30_000,
    );
    this.partitionsCheck.unref();
  }

  /** Start again, in dependency order, what this rollout stopped (or restarted and left down). */
  private async rollBack(plan: Plan, steps: StepResult[]): Promise<StepResult[]> {
    const stopped = steps.filter(
      (s) =>
        (s.action === "stop" && s.status === "success") || (s.action === "restart" && s.status === "failed"),
    );
    const order = [...new Set(steps.map((s) => s.service))].reverse();
    const results: StepResult[] = [];
    const span = startSpan("rollback", { parent: this.rollout });
    await this.event("rollback.started", "success", {
      reason: `${stopped.length} services to start again`,
      span,
    });
    for (const service of order) {
      for (const step of stopped.filter((s) => s.service === service)) {
        const result = await this.execute(
          plan,
          { host: step.host, service: step.service, action: "start" },
          span,
        );
        this.progress(`  rollback ${result.host} ${result.service}: ${result.status}`);
        results.push(result);
      }
    }
    span.end(results.every((r) => r.status === "success") ? "success" : "failure");
    return results;
  }

  /** Sends one step's command and follows it; its step.completed is recorded here unless `record` is false. */
  private execute(
    plan: Plan,
    step: PlannedStep,
    waveSpan: LifelineSpan,
    wave?: number,
    record = true,
  ): Promise<StepResult> {
    return new Promise<StepResult>((resolve, reject) =>
      this.startStep(plan, step, waveSpan, wave, (result, span) => {
        if (!record) return resolve(result);
        this.recordStep(result, span ?? waveSpan, wave).then(() => resolve(result), reject);
      }),
    );
  }

  /**
   * Starts one step: its command signed, recorded as sent, published. `done` gets the step's result once the
   * addressed agent's verified outcome arrives or the deadline passes (awaitResult), or at once if the controller
   * itself failed to send it. No step holds a suspended function while it waits: 10,000 of them in flight would.
   */
  private startStep(
    plan: Plan,
    step: PlannedStep,
    waveSpan: LifelineSpan,
    wave: number | undefined,
    done: (result: StepResult, span?: LifelineSpan) => void,
  ): void {
    const absent = this.undeliverable.get(step.host);
    if (absent) {
      queueMicrotask(() =>
        done({
          ...step,
          commandId: "",
          status: "undeliverable",
          reason: absent,
          evidence: "not sent: presence read from the lifecycle topic",
        }),
      );
      return;
    }
    const span = startSpan(`${step.action} ${step.service} on ${step.host}`, {
      parent: waveSpan,
      kind: SpanKind.PRODUCER,
      attributes: { "host.name": step.host, "service.name": step.service, "lifeline.action": step.action },
    });
    const ended = (result: StepResult) => {
      span.setAttributes({
        "lifeline.command_id": result.commandId,
        "lifeline.status": result.status,
        "lifeline.escalated": Boolean(result.escalated),
      });
      span.end(result.status === "success" ? "success" : "failure", result.reason);
      this.stepSpans.set(stepKey(step), span);
      done(result, span);
    };
    // Whatever fails here fails this step alone, as unknown: never the decision that started it.
    try {
      const command = this.command(plan, step, span);
      this.addressed.set(command.id, step.host);
      this.sendCommand(step, span, wave, command).then(
        () => this.awaitResult(step, command.id, plan, ended),
        (error: Error) => ended(this.controllerFailed(step, error)),
      );
    } catch (error) {
      ended(this.controllerFailed(step, error as Error));
    }
  }

  /** The step's command, carrying the traceparent of its own span. */
  private command(plan: Plan, step: PlannedStep, span: LifelineSpan): Command {
    const now = Date.now();
    return {
      id: randomUUID(),
      action: step.action,
      service: step.service,
      target: { hosts: [step.host] },
      parameters: {},
      issuedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + plan.deadlines.deliveryMs).toISOString(),
      deadline: new Date(now + plan.deadlines.executionMs).toISOString(),
      issuer: `controller:${plan.name}`,
      rolloutId: this.rolloutId,
      traceparent: span.traceparent,
    };
  }

  /** Signs the command, records it as sent, then publishes it. */
  private async sendCommand(
    step: PlannedStep,
    span: LifelineSpan,
    wave: number | undefined,
    command: Command,
  ): Promise<void> {
    const signed = signCommand(command, this.signer.keyId, this.signingKey);
    // Recorded before it is published: a controller killed in between resumes by sending this same command.
    await this.event("command.sent", "success", {
      reason: `${step.action} ${step.service} on ${step.host}`,
      span,
      commandId: command.id,
      step,
      ...(wave !== undefined ? { wave } : {}),
      extra: { command: signed },
    });
    await this.publishCommand(step, signed);
  }

  /** A step the controller could not send or follow: `unknown`, never a guess either way. */
  private controllerFailed(step: PlannedStep, error: Error): StepResult {
    return {
      ...step,
      commandId: "",
      status: "unknown",
      reason: `the controller failed while sending or following it: ${error.message}`,
      evidence: "no outcome: the controller's own error",
    };
  }

  /**
   * Waits for a published command's outcome: settled by the follower (settleCommand) when the addressed agent's
   * verified event arrives, or `timed_out` when the delivery and execution deadlines have both passed.
   */
  private awaitResult(
    step: PlannedStep,
    commandId: string,
    plan: Plan,
    done: (result: StepResult) => void,
  ): void {
    const limitMs = plan.deadlines.executionMs + plan.deadlines.deliveryMs;
    const timer = setTimeout(this.onDeadline, limitMs, commandId);
    this.pending.set(commandId, { step, limitMs, timer, done });
    // The outcome may have been read already (a resumed command's, or one faster than this turn).
    if (this.outcomes.has(commandId)) this.settleCommand(commandId);
  }

  private readonly onDeadline = (commandId: string): void => {
    const waiting = this.pending.get(commandId);
    if (!waiting) return;
    this.pending.delete(commandId);
    const { step, limitMs } = waiting;
    waiting.done({
      ...step,
      commandId,
      status: "timed_out",
      reason: "no verified outcome before the deadline",
      evidence: `no command.completed from ${step.host} within ${limitMs} ms`,
    });
  };

  /** A command's verified outcome arrived: its waiting step settles with it. */
  private settleCommand(commandId: string): void {
    const waiting = this.pending.get(commandId);
    const result = this.outcomes.get(commandId);
    if (!waiting || !result) return;
    this.pending.delete(commandId);
    clearTimeout(waiting.timer);
    waiting.done({
      ...waiting.step,
      commandId,
      status: result.outcome === "success" ? "success" : result.outcome === "failure" ? "failed" : "unknown",
      ...(result.reason ? { reason: result.reason } : {}),
      escalated: result.escalated,
      evidence: result.evidence,
      ...(result.retryable ? { retryable: true } : {}),
      ...(result.pid !== undefined ? { pid: result.pid } : {}),
    });
  }

  /**
   * Follows the lifecycle topic from its end: command.completed and command.rejected settle a command. Without a
   * consumer group (core/kafka/topic-follower.ts): a controller busy with 100,000 steps cannot lose its session,
   * be rebalanced and skip outcomes, and a run leaves nothing on the broker, even when killed.
   */
  private async follow(): Promise<void> {
    const follower = new TopicFollower(this.kafka, {
      topic: topicNames(this.topicPrefix).lifecycle,
      from: "end",
      logger: this.logger,
      onMessage: async (message) => {
        // Most of the topic is other events (this controller's own among them, 2.5 KB a step): only records that
        // can settle a command or carry a decision are decoded and parsed, the rest skipped in their bytes.
        if (!message.value || !SETTLING_MARKERS.some((marker) => (message.value as Buffer).includes(marker)))
          return;
        for (const text of unpackRecords(message.value)) {
          if (!SETTLING_TEXTS.some((marker) => text.includes(marker))) continue;
          let event: OutcomeEvent & { lifeline?: { rollout_id?: string; approval?: unknown } };
          try {
            event = JSON.parse(text);
          } catch {
            continue;
          }
          const id = event.lifeline?.command_id;
          const action = event.event?.action;
          if (action === "rollout.approval" && event.lifeline?.rollout_id === this.rolloutId) {
            await this.onApproval(event.lifeline.approval);
            continue;
          }
          const host = id ? this.addressed.get(id) : undefined;
          // Only the addressed agent's events about a command it verified settle it; the first one wins.
          if (!id || !host || this.outcomes.has(id)) continue;
          const outcome = outcomeFrom(event, host);
          if (!outcome) continue;
          this.outcomes.set(id, outcome);
          this.settleCommand(id);
        }
      },
    });
    this.follower = follower;
    await follower.start();
  }

  private async event(
    action: string,
    outcome: EventOutcome,
    fields: {
      reason?: string;
      span?: LifelineSpan;
      commandId?: string;
      wave?: number;
      step?: PlannedStep;
      /** Kept in the event (not indexed as fields): what `rollout resume` rebuilds the state from. */
      extra?: Record<string, unknown>;
    },
  ): Promise<void> {
    const now = new Date();
    const span = fields.span ?? this.rollout;
    const value = JSON.stringify(
      lifecycleEvent({
        at: now,
        id: deterministicId(this.rolloutId, action, now.getTime(), randomUUID()),
        sequence: this.sequence++,
        provider: EVENT_PROVIDERS.controller,
        host: "controller",
        action,
        outcome,
        message: `${action}: ${fields.reason ?? ""}`,
        reason: fields.reason,
        span,
        lifeline: {
          rollout_id: this.rolloutId,
          ...(fields.commandId ? { command_id: fields.commandId } : {}),
          ...(fields.wave !== undefined ? { wave: fields.wave } : {}),
          ...(fields.step ? { action: fields.step.action, step: fields.step } : {}),
          ...fields.extra,
        },
      }),
    );
    await this.lifecycle?.send({ key: this.rolloutId, value, headers: { traceparent: span.traceparent } });
    this.logger.info({ action, outcome, rolloutId: this.rolloutId }, "rollout event");
  }
}

/** A published command awaiting its outcome: settled by the follower or by its deadline. */
interface Waiting {
  step: PlannedStep;
  limitMs: number;
  timer: NodeJS.Timeout;
  done: (result: StepResult) => void;
}

/** What a lifecycle record that settles a command (or decides on the rollout) holds, as JSON writes it. */
const SETTLING_TEXTS = ['"command.completed"', '"command.rejected"', '"rollout.approval"'];
const SETTLING_MARKERS = SETTLING_TEXTS.map((marker) => Buffer.from(marker));

/**
 * Hosts for a wave's event and progress line: the first ten, then how many more. A wave of 100,000 hosts listed
 * whole would be one 1.5 MB event, over Kafka's default message.max.bytes; the steps' own events name each host.
 */
export function listHosts(hosts: string[], shown = 10): string {
  return hosts.length <= shown
    ? hosts.join(", ")
    : `${hosts.slice(0, shown).join(", ")} and ${hosts.length - shown} more (${hosts.length} hosts)`;
}
