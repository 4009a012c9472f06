import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { parse } from "yaml";
import { ConfigError } from "../core/errors.ts";

export const validateHelp = `Usage: lifeline validate <file>... [--kind KIND]

Checks config files the way the component that reads them will: YAML syntax, every key known (a misspelt one
names the key you probably meant), types and ranges, keys that parse (Ed25519 public keys), a plan's dependencies
(unknown names, cycles). Prints what each file holds; exit 0 when all are valid, 2 otherwise.

Options:
  --kind KIND   agent | shipper | indexer | collector | plan | fleet  [from the file's name, else its keys]

The environment overrides apply as at run time (LIFELINE_HOST_NAME, LIFELINE_KAFKA_BROKERS, ...).
`;

const KINDS = ["agent", "shipper", "indexer", "collector", "plan", "fleet"] as const;
type Kind = (typeof KINDS)[number];

/** Which component a file is for: its name (agent.yaml, rollout.example.yaml ...) or, failing that, its keys. */
export function guessKind(file: string, document: unknown): Kind | undefined {
  const name = basename(file).toLowerCase();
  const byName: Array<[RegExp, Kind]> = [
    [/agent/, "agent"],
    [/shipper/, "shipper"],
    [/indexer/, "indexer"],
    [/collector/, "collector"],
    [/fleet/, "fleet"],
    [/rollout|plan/, "plan"],
  ];
  for (const [pattern, kind] of byName) if (pattern.test(name)) return kind;
  if (typeof document !== "object" || document === null) return undefined;
  const keys = new Set(Object.keys(document));
  if (keys.has("trustedKeys") || keys.has("stateDir")) return "agent";
  if (keys.has("inputs") || keys.has("checkpointDir")) return "shipper";
  if (keys.has("action") && keys.has("services")) return "plan";
  if (keys.has("hosts")) return "fleet";
  if (keys.has("listen")) return "collector";
  if (keys.has("groupId") || keys.has("namespace") || keys.has("indices")) return "indexer";
  return undefined;
}

/** Loads `file` with its component's own loader; returns a one-line summary of what it declares. */
async function check(file: string, kind: Kind): Promise<string> {
  switch (kind) {
    case "agent": {
      const config = (await import("../agent/config.ts")).loadAgentConfig(file);
      return `agent for ${config.host.name}: services ${config.services.map((s) => `${s.name} (${s.driver})`).join(", ")}; ${config.trustedKeys.length} trusted keys`;
    }
    case "shipper": {
      const config = (await import("../shipper/config.ts")).loadShipperConfig(file);
      return `shipper for ${config.host.name}: inputs ${config.inputs.map((i) => `${i.name} (${i.kind})`).join(", ")}; topics ${config.topicPrefix}.*`;
    }
    case "indexer": {
      const config = (await import("../indexer/config.ts")).loadIndexerConfig(file);
      return `indexer: group ${config.groupId}, topics ${config.topicPrefix}.*, namespace ${config.namespace}`;
    }
    case "collector": {
      const config = (await import("../collector/config.ts")).loadCollectorConfig(file);
      return `collector: OTLP/HTTP on ${config.listen.host}:${config.listen.port}, topics ${config.topicPrefix}.*`;
    }
    case "plan": {
      const { dependencyOrder, loadPlan } = await import("../controller/plan.ts");
      const plan = loadPlan(file);
      return `rollout plan ${plan.name}: ${plan.action} ${dependencyOrder(plan.services).join(" → ")}`;
    }
    case "fleet": {
      const fleet = (await import("../controller/plan.ts")).loadFleet(file);
      return `fleet: ${fleet.hosts.length} hosts`;
    }
  }
}

export async function runValidate(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      kind: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(validateHelp);
    return values.help ? 0 : 2;
  }
  if (values.kind && !KINDS.includes(values.kind as Kind)) {
    process.stderr.write(`lifeline validate: --kind must be one of ${KINDS.join(", ")}\n`);
    return 2;
  }
  let failed = 0;
  for (const file of positionals) {
    let document: unknown;
    try {
      document = parse(readFileSync(file, "utf8"));
    } catch {
      // Unreadable or not YAML: the loader below says which, precisely.
    }
    const kind = (values.kind as Kind | undefined) ?? guessKind(file, document);
    if (!kind) {
      process.stderr.write(`${file}: cannot tell which component it configures; name it with --kind\n`);
      failed++;
      continue;
    }
    try {
      process.stdout.write(`${file}: valid ${kind} config: ${await check(file, kind)}\n`);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      process.stderr.write(`${file}: invalid ${kind} config: ${error.message}\n`);
      failed++;
    }
  }
  return failed === 0 ? 0 : 2;
}
