import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { z } from "zod";
import { loadConfigFile } from "../core/config.ts";
import { resolveKafka } from "../core/connections.ts";
import { createKafka } from "../core/kafka/client.ts";
import { ensureTopics } from "../core/kafka/topics.ts";
import { createLogger } from "../core/logger.ts";
import { startTracing } from "../core/observability/tracing.ts";
import { buildPlan, describePlan, loadPlan } from "./plan.ts";
import { RolloutRunner } from "./run.ts";

export const rolloutHelp = `Usage: lifeline rollout --plan FILE --fleet FILE --dry-run [--json]
       lifeline rollout --plan FILE --fleet FILE --key FILE --key-id ID [--json]

Plans a batch stop/start/restart across the fleet: services in dependency order (stop in reverse), hosts in waves.
--dry-run prints the exact ordered plan (waves, hosts, services, deadlines) and changes nothing.

Options:
  --plan FILE    the rollout plan (YAML; see controller/rollout.example.yaml)
  --fleet FILE   hosts: [{ name, groups, labels, services }] (YAML); live presence from heartbeats comes later
  --dry-run      print the plan, run nothing
  --key FILE     the controller's Ed25519 private key (lifeline agent keygen), to sign the commands
  --key-id ID    the id the agents trust it under
  --json         the plan (or the result) as JSON

Without --dry-run the rollout runs: signed commands per wave, outcomes followed on <prefix>.lifecycle, a halt
past the failure budget, then the rollback policy; exit 0 only when every step succeeded.
`;

const fleetSchema = z.strictObject({
  hosts: z.array(
    z.strictObject({
      name: z.string().min(1),
      groups: z.array(z.string()).default([]),
      labels: z.record(z.string(), z.string()).default({}),
      services: z.array(z.string()).default([]),
    }),
  ),
});

export async function runRollout(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      plan: { type: "string" },
      fleet: { type: "string" },
      "dry-run": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      key: { type: "string" },
      "key-id": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || !values.plan || !values.fleet) {
    process.stdout.write(rolloutHelp);
    return values.help ? 0 : 2;
  }
  const plan = loadPlan(values.plan);
  const fleet = loadConfigFile(values.fleet, fleetSchema).hosts;
  const built = buildPlan(plan, fleet);
  if (values["dry-run"]) {
    process.stdout.write(values.json ? `${JSON.stringify(built, null, 2)}\n` : describePlan(plan, built));
    return 0;
  }
  if (!values.key || !values["key-id"]) {
    process.stderr.write(
      "lifeline rollout: --key and --key-id are needed to sign the commands (or use --dry-run)\n",
    );
    return 2;
  }
  const logger = createLogger("controller", {
    destination: 2,
    level: process.env.LIFELINE_LOG_LEVEL ?? "warn",
  });
  const kafka = createKafka({ ...resolveKafka(), clientId: "lifeline-controller" }, logger);
  const topicPrefix = process.env.LIFELINE_TOPIC_PREFIX ?? "lifeline";
  await ensureTopics(kafka, [`${topicPrefix}.control`, `${topicPrefix}.lifecycle`]);
  const runner = new RolloutRunner({
    kafka,
    logger,
    topicPrefix,
    signer: { keyId: values["key-id"], privateKeyPem: readFileSync(values.key, "utf8") },
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  const stopTracing = await startTracing("controller", { logger });
  const result = await runner.run(plan, built).finally(stopTracing);
  if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    process.stdout.write(`rollout ${result.rolloutId}: ${result.status} (trace ${result.traceId})\n`);
    for (const step of [...result.steps, ...result.rollback]) {
      process.stdout.write(
        `  ${step.host.padEnd(16)} ${step.service.padEnd(12)} ${step.action.padEnd(8)} ${step.status}${step.reason ? `  ${step.reason}` : ""}\n`,
      );
    }
  }
  return result.status === "success" ? 0 : 1;
}
