import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { agentConfigSchema } from "../../agent/config.ts";
import { collectorConfigSchema } from "../../collector/config.ts";
import { planSchema } from "../../controller/plan.ts";
import { indexerConfigSchema } from "../../indexer/config.ts";
import { shipperConfigSchema } from "../../shipper/config.ts";

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  options?: z.ZodType[];
  left?: z.ZodType;
  right?: z.ZodType;
  valueType?: z.ZodType;
  getter?: () => z.ZodType;
}

/** Every key of every object a schema accepts, as dotted paths ("services[].health.http.url"). */
function schemaKeys(schema: z.ZodType, prefix = "", seen = new Set<unknown>()): string[] {
  if (seen.has(schema)) return [];
  seen.add(schema);
  const def = (schema as unknown as { _zod: { def: Def } })._zod.def;
  const next = (child: z.ZodType | undefined, path = prefix) => (child ? schemaKeys(child, path, seen) : []);
  switch (def.type) {
    case "object":
      return Object.entries(def.shape ?? {}).flatMap(([key, child]) => {
        const path = prefix ? `${prefix}.${key}` : key;
        return [path, ...next(child, path)];
      });
    case "array":
      return next(def.element, `${prefix}[]`);
    case "record":
      return next(def.valueType, `${prefix}.*`);
    case "union":
      return (def.options ?? []).flatMap((option) => next(option));
    case "intersection":
      return [...next(def.left), ...next(def.right)];
    case "pipe":
      return [...next(def.in), ...next(def.out)];
    case "lazy":
      return next(def.getter?.());
    default:
      return next(def.innerType);
  }
}

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));

/**
 * Keys a schema has that the example file never names (as `key:`, commented out or not). The connection sections
 * (`kafka:`, `elasticsearch:`) are shared by every component and documented once, in docs/configuration.md: the
 * example names the section, the doc every key under it.
 */
function missingKeys(schema: z.ZodType, example: string): string[] {
  const text = readFileSync(root(example), "utf8");
  const connections = readFileSync(root("docs/configuration.md"), "utf8");
  const keys = [...new Set(schemaKeys(schema))];
  return keys.filter((path) => {
    const key = path.split(".").at(-1)?.replace("[]", "") ?? "";
    if (key === "*") return false;
    if (/^(kafka|elasticsearch)\./.test(path))
      return !connections.includes(`\`${path}`) && !connections.includes(`.${key}\``);
    return !new RegExp(`(^|[\\s{,#-])${key}:`, "m").test(text);
  });
}

describe("every example config names every key its component reads", () => {
  it.each([
    ["agent", agentConfigSchema, "agent/agent.example.yaml"],
    ["shipper", shipperConfigSchema, "shipper/shipper.example.yaml"],
    ["indexer", indexerConfigSchema, "indexer/indexer.example.yaml"],
    ["collector", collectorConfigSchema, "collector/collector.example.yaml"],
    ["rollout plan", planSchema, "controller/rollout.example.yaml"],
  ] as const)("%s", (_name, schema, example) => {
    expect(missingKeys(schema as z.ZodType, example).join(" ")).toBe("");
  });
});
