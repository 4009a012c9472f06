import { parseArgs } from "node:util";
import { z } from "zod";
import { loadConfigFile } from "../core/config.ts";
import { buildPlan, describePlan, loadPlan } from "./plan.ts";

export const rolloutHelp = `Usage: lifeline rollout --plan FILE --fleet FILE --dry-run [--json]

Plans a batch stop/start/restart across the fleet: services in dependency order (stop in reverse), hosts in waves.
--dry-run prints the exact ordered plan (waves, hosts, services, deadlines) and changes nothing.

Options:
  --plan FILE    the rollout plan (YAML; see controller/rollout.example.yaml)
  --fleet FILE   hosts: [{ name, groups, labels, services }] (YAML); live presence from heartbeats comes later
  --dry-run      print the plan, run nothing
  --json         the plan as JSON
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
  if (!values["dry-run"]) {
    process.stderr.write(
      "lifeline rollout: running a rollout is not built yet; use --dry-run to see the plan\n",
    );
    return 2;
  }
  process.stdout.write(values.json ? `${JSON.stringify(built, null, 2)}\n` : describePlan(plan, built));
  return 0;
}
