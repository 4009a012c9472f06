import { readFileSync } from "node:fs";
import { resolveKafka } from "../core/connections.ts";
import { UsageError } from "../core/errors.ts";
import { createKafka } from "../core/kafka/client.ts";
import { readSince } from "../core/kafka/read-since.ts";
import { ensureTopics } from "../core/kafka/topics.ts";
import { createLogger } from "../core/logger.ts";
import { startTracing } from "../core/observability/tracing.ts";
import { topicNames } from "../core/topics.ts";
import { type Approval, followDecision, publishApproval } from "./approval.ts";
import { readRolloutHistory, startOf } from "./history.ts";
import { buildPlan, describePlan, emptyPlanError, loadFleet, loadPlan } from "./plan.ts";
import { readPresence } from "./presence.ts";
import {
  type ControllerEvent,
  describeRollouts,
  describeStatus,
  plannedSteps,
  rolloutsFrom,
  stepStates,
} from "./rollouts.ts";
import { describeSummary, type RolloutResult, RolloutRunner, type StepProgress } from "./run.ts";

interface Signing {
  key?: string | undefined;
  keyId?: string | undefined;
}

/** Controller events of rollouts on the lifecycle topic since `sinceMs`. */
async function readControllerEvents(
  topicPrefix: string,
  sinceMs: number,
  only?: string,
): Promise<ControllerEvent[]> {
  const { kafka } = controllerKafka();
  const topic = topicNames(topicPrefix).lifecycle;
  await ensureTopics(kafka, [topic]);
  const events: ControllerEvent[] = [];
  await readSince(kafka, topic, Math.max(0, sinceMs), (text) => {
    // Cheap checks first: most of the topic is agents' events.
    if (!text.includes('"controller"') || !text.includes(only ?? "rollout_id")) return;
    try {
      const event = JSON.parse(text) as ControllerEvent;
      if (!only || event.lifeline?.rollout_id === only) events.push(event);
    } catch {
      // Not an event.
    }
  });
  return events;
}

/** `lifeline rollout list`: what the controllers recorded, nothing more. */
export async function list(values: {
  sinceHours: number;
  json: boolean;
  topicPrefix: string;
}): Promise<number> {
  const rows = rolloutsFrom(
    await readControllerEvents(values.topicPrefix, Date.now() - values.sinceHours * 3_600_000),
  );
  process.stdout.write(
    values.json ? `${JSON.stringify({ rollouts: rows }, null, 2)}\n` : describeRollouts(rows),
  );
  return 0;
}

/** `lifeline rollout status <id>`: every planned step with its recorded status and evidence. */
export async function status(
  rolloutId: string,
  values: { json: boolean; topicPrefix: string },
): Promise<number> {
  // From a minute before the time the id carries (or the whole topic for an id without one).
  const events = await readControllerEvents(
    values.topicPrefix,
    (startOf(rolloutId) ?? 0) - 60_000,
    rolloutId,
  );
  const row = rolloutsFrom(events)[0];
  const planned = events.find((e) => e.event?.action === "rollout.planned");
  const built = planned ? plannedSteps(planned, events) : undefined;
  if (!row || !built) {
    process.stderr.write(
      `lifeline rollout status: no rollout.planned event for ${rolloutId} on the lifecycle topic\n`,
    );
    return 1;
  }
  const steps = stepStates(events, built);
  process.stdout.write(
    values.json ? `${JSON.stringify({ ...row, stepStates: steps }, null, 2)}\n` : describeStatus(row, steps),
  );
  return 0;
}

function signerFrom(values: Signing) {
  return values.key && values.keyId
    ? { keyId: values.keyId, privateKeyPem: readFileSync(values.key, "utf8") }
    : undefined;
}

function controllerKafka() {
  const logger = createLogger("controller", {
    destination: 2,
    level: process.env.LIFELINE_LOG_LEVEL ?? "warn",
  });
  const kafka = createKafka({ ...resolveKafka(), clientId: "lifeline-controller" }, logger);
  return { logger, kafka };
}

/** `lifeline rollout approve|abort|pause|continue <id>`: a signed decision on the lifecycle topic. */
export async function decide(
  decision: Approval["decision"],
  rolloutId: string,
  values: Signing & { wave?: number; by?: string; reason?: string; topicPrefix: string },
): Promise<number> {
  const signer = signerFrom(values);
  if (!signer) throw new UsageError("--key <file> and --key-id <id> are needed to sign the decision");
  const { topicPrefix } = values;
  const { kafka } = controllerKafka();
  const topic = topicNames(topicPrefix).lifecycle;
  await ensureTopics(kafka, [topic]);
  // A decision means something only to a rollout that exists and has not ended.
  let history: Awaited<ReturnType<typeof readRolloutHistory>>;
  try {
    history = await readRolloutHistory(kafka, topic, rolloutId);
  } catch (error) {
    process.stderr.write(`lifeline rollout ${decision}: ${(error as Error).message}\n`);
    return 1;
  }
  if (history.completed) {
    process.stderr.write(
      `lifeline rollout ${decision}: rollout ${rolloutId} already completed (${history.completed}); nothing to ${decision}\n`,
    );
    return 1;
  }
  const timeoutMs = Number(process.env.LIFELINE_DECISION_TIMEOUT_MS ?? 20_000);
  const answer = await followDecision(
    kafka,
    topic,
    rolloutId,
    async () => {
      await publishApproval(
        kafka,
        topic,
        {
          rolloutId,
          decision,
          ...(values.wave !== undefined ? { wave: values.wave } : {}),
          ...(values.by ? { by: values.by } : {}),
          ...(values.reason ? { reason: values.reason } : {}),
        },
        signer,
      );
    },
    timeoutMs,
  );
  const what = `${decision} for ${rolloutId}${values.wave !== undefined ? ` wave ${values.wave}` : ""}, signed by ${signer.keyId}`;
  if (answer.answer === "taken") {
    process.stdout.write(`${what}: taken by the controller (${answer.reason ?? decision})\n`);
    return 0;
  }
  if (answer.answer === "refused") {
    process.stderr.write(`${what}: refused by the controller: ${answer.reason ?? "no reason given"}\n`);
    return 1;
  }
  process.stderr.write(
    `${what}: published, but no controller answered within ${Math.round(timeoutMs / 1000)} s: the rollout is not running now. ` +
      `The decision stays on ${topic}${decision === "abort" ? `; \`lifeline rollout resume ${rolloutId}\` will see an abort` : ""}.\n`,
  );
  return 1;
}

/** `lifeline rollout resume <id>`: the state from the topic, then on without re-sending what already ran. */
export async function resume(
  rolloutId: string,
  values: Signing & { json: boolean; topicPrefix: string },
): Promise<number> {
  const signer = signerFrom(values);
  if (!signer) throw new UsageError("--key <file> and --key-id <id> are needed to sign the commands");
  const { topicPrefix } = values;
  const { logger, kafka } = controllerKafka();
  const topic = topicNames(topicPrefix).lifecycle;
  const history = await readRolloutHistory(kafka, topic, rolloutId);
  if (history.completed) {
    process.stderr.write(`rollout ${rolloutId} already completed: ${history.completed}\n`);
    return history.completed === "success" ? 0 : 1;
  }
  process.stderr.write(
    `resuming ${rolloutId}: ${history.state.results.size} steps settled, ${history.state.pending.size} awaiting their outcome\n`,
  );
  const output = progressOutput();
  const runner = new RolloutRunner({
    kafka,
    logger,
    topicPrefix,
    signer,
    progress: output.line,
    onStep: output.step,
    undeliverable: history.undeliverable,
  });
  const stopTracing = await startTracing("controller", { logger });
  const result = await runner
    .run(history.plan, history.built, {
      ...history.state,
      refresh: async () => (await readRolloutHistory(kafka, topic, rolloutId)).state,
    })
    .finally(stopTracing);
  output.done();
  printResult(result, values.json);
  return result.status === "success" ? 0 : 1;
}

/**
 * Progress on stderr: plain lines, and on a terminal a bar under them (steps settled, failures, wave) redrawn as
 * each step settles.
 */
function progressOutput(): {
  line: (text: string) => void;
  step: (progress: StepProgress) => void;
  done: () => void;
} {
  const tty = process.stderr.isTTY;
  let bar = "";
  // Writes to a pipe are synchronous: lines of one turn of the event loop go out in one write (10,000 settled
  // steps cost 10,000 write calls otherwise, a third of a second of the controller's time at that scale).
  let pending = "";
  const flush = () => {
    if (pending) process.stderr.write(pending);
    pending = "";
  };
  return {
    line: (text) => {
      if (tty) {
        process.stderr.write(`\r\x1b[K${text}\n${bar}`);
        return;
      }
      if (!pending) setImmediate(flush);
      pending += `${text}\n`;
    },
    step: (p) => {
      if (!tty) return;
      const width = 30;
      const filled = Math.round((p.settled / Math.max(1, p.total)) * width);
      bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${p.settled}/${p.total} steps, ${p.failed} failed, wave ${p.wave}/${p.waves}`;
      process.stderr.write(`\r\x1b[K${bar}`);
    },
    done: () => {
      flush();
      if (tty && bar) process.stderr.write("\n");
    },
  };
}

function printResult(result: RolloutResult, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `rollout ${result.rolloutId}: ${result.status} (trace ${result.traceId}); ${describeSummary(result.summary)}\n`,
  );
  for (const step of [...result.steps, ...result.rollback]) {
    const status = step.escalated ? `${step.status} (escalated)` : step.status;
    process.stdout.write(
      `  ${step.host.padEnd(16)} ${step.service.padEnd(12)} ${step.action.padEnd(8)} ${status}${step.reason ? `  ${step.reason}` : ""}\n`,
    );
  }
}

export async function runPlan(
  values: Signing & {
    plan?: string;
    fleet?: string;
    presenceWindowMs: number;
    dryRun: boolean;
    json: boolean;
    topicPrefix: string;
  },
): Promise<number> {
  if (!values.plan) throw new UsageError("--plan <file> is needed (lifeline rollout --help)");
  const plan = loadPlan(values.plan);
  const declared = values.fleet ? loadFleet(values.fleet).hosts : undefined;
  if (values.dryRun && declared) {
    const built = buildPlan(plan, declared);
    const empty = emptyPlanError(plan, built, declared.length, "the fleet file");
    if (empty) {
      process.stderr.write(`lifeline rollout: ${empty}\n`);
      return 2;
    }
    process.stdout.write(values.json ? `${JSON.stringify(built, null, 2)}\n` : describePlan(plan, built));
    return 0;
  }
  const signer = signerFrom(values);
  if (!values.dryRun && !signer) {
    throw new UsageError("--key <file> and --key-id <id> are needed to sign the commands (or use --dry-run)");
  }
  const { topicPrefix } = values;
  const { logger, kafka } = controllerKafka();
  const topics = topicNames(topicPrefix);
  await ensureTopics(kafka, [topics.control, topics.lifecycle]);
  // Presence: the agents whose heartbeat reached the lifecycle topic within the window.
  const windowMs = values.presenceWindowMs;
  const live = await readPresence(kafka, topics.lifecycle, { windowMs });
  const fleet = declared ?? [...live.values()];
  const built = buildPlan(plan, fleet);
  const empty = emptyPlanError(
    plan,
    built,
    fleet.length,
    declared ? "the fleet file" : `live agents (heartbeats in the last ${Math.round(windowMs / 1000)} s)`,
  );
  if (empty) {
    process.stderr.write(`lifeline rollout: ${empty}\n`);
    return 2;
  }
  const silence = `no agent heartbeat in the last ${Math.round(windowMs / 1000)} s`;
  const undeliverable = new Map(
    [...new Set(built.waves.flatMap((w) => w.steps.map((s) => s.host)))]
      .filter((host) => !live.has(host))
      .map((host) => [host, silence] as const),
  );
  if (values.dryRun) {
    process.stdout.write(values.json ? `${JSON.stringify(built, null, 2)}\n` : describePlan(plan, built));
    if (undeliverable.size > 0)
      process.stdout.write(`  undeliverable (${silence}): ${[...undeliverable.keys()].join(", ")}\n`);
    return 0;
  }
  process.stderr.write(
    `fleet: ${live.size} live agents${declared ? `, ${declared.length} hosts declared` : " (from heartbeats)"}\n`,
  );
  if (undeliverable.size > 0) {
    process.stderr.write(`undeliverable (${silence}): ${[...undeliverable.keys()].join(", ")}\n`);
  }
  const output = progressOutput();
  const runner = new RolloutRunner({
    kafka,
    logger,
    topicPrefix,
    signer: signer as NonNullable<typeof signer>,
    progress: output.line,
    onStep: output.step,
    undeliverable,
  });
  const stopTracing = await startTracing("controller", { logger });
  const result = await runner.run(plan, built).finally(stopTracing);
  output.done();
  printResult(result, values.json);
  return result.status === "success" ? 0 : 1;
}
