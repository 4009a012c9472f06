import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parse } from "yaml";
import { ConfigError } from "../core/errors.ts";

export const KINDS = ["agent", "shipper", "indexer", "collector", "plan", "fleet"] as const;
export type Kind = (typeof KINDS)[number];

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

export async function runValidate(files: string[], values: { kind?: Kind }): Promise<number> {
  let failed = 0;
  for (const file of files) {
    let document: unknown;
    try {
      document = parse(readFileSync(file, "utf8"));
    } catch {
      // Unreadable or not YAML: the loader below says which, precisely.
    }
    const kind = values.kind ?? guessKind(file, document);
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
