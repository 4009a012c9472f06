import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { resolveKafka } from "../core/connections.ts";
import { createKafka } from "../core/kafka/client.ts";
import { readSince } from "../core/kafka/read-since.ts";
import { ensureTopics } from "../core/kafka/topics.ts";
import { createLogger } from "../core/logger.ts";
import { startTracing } from "../core/observability/tracing.ts";
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

export const rolloutHelp = `Usage: lifeline rollout --plan FILE [--fleet FILE] --dry-run [--json]
       lifeline rollout --plan FILE [--fleet FILE] --key FILE --key-id ID [--json]
       lifeline rollout approve|abort|pause|continue <rollout-id> --key FILE --key-id ID [--wave N] [--by NAME]
                [--reason TEXT]
       lifeline rollout resume <rollout-id> --key FILE --key-id ID [--json]
       lifeline rollout list [--since-hours 24] [--json]
       lifeline rollout status <rollout-id> [--json]

Plans a batch stop/start/restart across the fleet as a graph: a service's waves run in order, and its first wave
begins once the services it comes after are done (start and restart: its dependencies; stop: its dependants);
independent services run side by side within waves.maxInFlight (per service) and waves.maxInFlightTotal.
--dry-run prints the graph, its critical path and every wave (hosts, services, deadlines) and changes nothing.

Options:
  --plan FILE    the rollout plan (YAML; see controller/rollout.example.yaml)
  --fleet FILE   hosts: [{ name, groups, labels, services }] (YAML); without it the fleet is the agents whose
                 heartbeat reached <prefix>.lifecycle within the presence window
  --presence-window-ms N   how recent a heartbeat must be for its host to count as live (default 60000);
                 targeted hosts without one are reported as undeliverable before anything starts
  --dry-run      print the plan, run nothing
  --key FILE     the controller's Ed25519 private key (lifeline agent keygen), to sign the commands
  --key-id ID    the id the agents trust it under
  --json         the plan (or the result) as JSON

Without --dry-run the rollout runs: signed commands per wave, outcomes followed on <prefix>.lifecycle, a halt
past the failure budget, then the rollback policy; exit 0 only when every step succeeded.
With \`waves.pause: approval\` it waits before each later wave for a decision signed by one of the plan's
approvers (approve or abort); unsigned or untrusted decisions are recorded as rejected and ignored.
resume rebuilds a rollout's state from <prefix>.lifecycle after a controller crash and continues it: settled
steps are kept; a command recorded as sent is published again as the same signed message (same id: an agent
that has it runs nothing twice) and its outcome awaited. Step statuses:
success, failed, timed_out, unknown, undeliverable, cancelled (each also recorded as one step.completed event);
escalated stops are successes counted apart. Rollout: success, failed, incomplete, halted, cancelled (aborted).
A plan that matches no host is an error (exit 2) unless it sets allowEmpty: true.
list and status read the controllers' events on <prefix>.lifecycle: each rollout's status is its
rollout.completed (success, failed, halted, incomplete, cancelled) or "open" with its last event and when; the topic
cannot tell a running controller from one that died (resume continues it). status lists every planned step with
its recorded status (or "sent" / "not sent") and evidence.
abort is honoured at any point of a running rollout (in-flight steps finish, nothing new is sent), signed by an
approver or by the controller's own key; so is pause (in-flight steps finish, nothing new is sent until continue).
onFailure: pause in the plan pauses instead of halting past the failure budget (each later failure pauses again).
approve|abort|pause|continue wait for the controller's answer and exit 1 when it refuses or no controller runs
that rollout. (continue ends a pause; resume takes over a rollout whose controller died.)
`;

export async function runRollout(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === "approve" || first === "abort" || first === "pause" || first === "continue")
    return decide(first, rest);
  if (first === "resume") return resume(rest);
  if (first === "list" || first === "status") return show(first, rest);
  return runPlan(argv);
}

/** Controller events of rollouts on the lifecycle topic since `sinceMs`. */
async function readControllerEvents(sinceMs: number, only?: string): Promise<ControllerEvent[]> {
  const { kafka, topicPrefix } = controllerKafka();
  const topic = `${topicPrefix}.lifecycle`;
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

/** `lifeline rollout list` and `lifeline rollout status <id>`: what the controllers recorded, nothing more. */
async function show(what: "list" | "status", argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "since-hours": { type: "string", default: "24" },
      json: { type: "boolean", default: false },
    },
  });
  if (what === "list") {
    const hours = Number(values["since-hours"]);
    if (!(hours > 0)) {
      process.stderr.write("Usage: lifeline rollout list [--since-hours N] [--json]\n");
      return 2;
    }
    const rows = rolloutsFrom(await readControllerEvents(Date.now() - hours * 3_600_000));
    process.stdout.write(
      values.json ? `${JSON.stringify({ rollouts: rows }, null, 2)}\n` : describeRollouts(rows),
    );
    return 0;
  }
  const rolloutId = positionals[0];
  if (!rolloutId) {
    process.stderr.write("Usage: lifeline rollout status <rollout-id> [--json]\n");
    return 2;
  }
  // From a minute before the time the id carries (or the whole topic for an id without one).
  const events = await readControllerEvents((startOf(rolloutId) ?? 0) - 60_000, rolloutId);
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

function signerFrom(values: { key?: string | undefined; "key-id"?: string | undefined }) {
  return values.key && values["key-id"]
    ? { keyId: values["key-id"], privateKeyPem: readFileSync(values.key, "utf8") }
    : undefined;
}

function controllerKafka() {
  const logger = createLogger("controller", {
    destination: 2,
    level: process.env.LIFELINE_LOG_LEVEL ?? "warn",
  });
  const kafka = createKafka({ ...resolveKafka(), clientId: "lifeline-controller" }, logger);
  return { logger, kafka, topicPrefix: process.env.LIFELINE_TOPIC_PREFIX ?? "lifeline" };
}

/** `lifeline rollout approve|abort|pause|continue <id>`: a signed decision on the lifecycle topic. */
async function decide(decision: Approval["decision"], argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      wave: { type: "string" },
      key: { type: "string" },
      "key-id": { type: "string" },
      by: { type: "string" },
      reason: { type: "string" },
    },
  });
  const signer = signerFrom(values);
  const rolloutId = positionals[0];
  if (!rolloutId || !signer) {
    process.stderr.write(
      `Usage: lifeline rollout ${decision} <rollout-id> --key FILE --key-id ID [--wave N] [--by NAME] [--reason TEXT]\n`,
    );
    return 2;
  }
  const { kafka, topicPrefix } = controllerKafka();
  const topic = `${topicPrefix}.lifecycle`;
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
          ...(values.wave !== undefined ? { wave: Number(values.wave) } : {}),
          ...(values.by ? { by: values.by } : {}),
          ...(values.reason ? { reason: values.reason } : {}),
        },
        signer,
      );
    },
    timeoutMs,
  );
  const what = `${decision} for ${rolloutId}${values.wave ? ` wave ${values.wave}` : ""}, signed by ${signer.keyId}`;
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
async function resume(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      key: { type: "string" },
      "key-id": { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const signer = signerFrom(values);
  const rolloutId = positionals[0];
  if (!rolloutId || !signer) {
    process.stderr.write("Usage: lifeline rollout resume <rollout-id> --key FILE --key-id ID [--json]\n");
    return 2;
  }
  const { logger, kafka, topicPrefix } = controllerKafka();
  const topic = `${topicPrefix}.lifecycle`;
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

async function runPlan(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      plan: { type: "string" },
      fleet: { type: "string" },
      "dry-run": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      key: { type: "string" },
      "key-id": { type: "string" },
      "presence-window-ms": { type: "string", default: "60000" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || !values.plan) {
    process.stdout.write(rolloutHelp);
    return values.help ? 0 : 2;
  }
  const plan = loadPlan(values.plan);
  const declared = values.fleet ? loadFleet(values.fleet).hosts : undefined;
  if (values["dry-run"] && declared) {
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
  if (!values["dry-run"] && !signer) {
    process.stderr.write(
      "lifeline rollout: --key and --key-id are needed to sign the commands (or use --dry-run)\n",
    );
    return 2;
  }
  const { logger, kafka, topicPrefix } = controllerKafka();
  await ensureTopics(kafka, [`${topicPrefix}.control`, `${topicPrefix}.lifecycle`]);
  // Presence: the agents whose heartbeat reached the lifecycle topic within the window.
  const windowMs = Number(values["presence-window-ms"]);
  const live = await readPresence(kafka, `${topicPrefix}.lifecycle`, { windowMs });
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
  if (values["dry-run"]) {
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
