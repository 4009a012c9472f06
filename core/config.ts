import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { z } from "zod";
import { ConfigError } from "./errors.ts";

/**
 * The longest wait a Node timer can hold: 2^31 - 1 ms, 24.8 days. A longer setTimeout fires after 1 ms, so a soak,
 * a deadline or a grace period past it would end at once and be recorded as if it had been waited for.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** A duration in milliseconds that Lifeline times with a timer: a whole number, at most MAX_TIMER_MS. */
export const timerMs = () =>
  z
    .number()
    .int()
    .nonnegative()
    .max(MAX_TIMER_MS, `at most ${MAX_TIMER_MS} ms (24.8 days): a longer wait cannot be timed`);

/** An environment variable that overrides one config key, e.g. LIFELINE_KAFKA_BROKERS → kafka.brokers. */
export interface EnvOverride {
  path: string;
  parse?: (raw: string) => unknown;
}

export const parseList = (raw: string): string[] =>
  raw
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);

export const parseBoolean = (raw: string): boolean => {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError("config.bad_boolean", `expected true or false, got "${raw}"`);
};

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  overrides?: Record<string, EnvOverride>;
}

/** Reads a YAML file, applies environment overrides, validates strictly. Errors name the file and the key. */
export function loadConfigFile<S extends z.ZodType>(
  file: string,
  schema: S,
  options: LoadConfigOptions = {},
): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw new ConfigError(
      "config.unreadable",
      `cannot read config file ${file}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  return parseConfig(text, file, schema, options);
}

export function parseConfig<S extends z.ZodType>(
  text: string,
  source: string,
  schema: S,
  options: LoadConfigOptions = {},
): z.output<S> {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    const first = document.errors[0];
    throw new ConfigError("config.bad_yaml", `${source}: invalid YAML: ${first?.message ?? "unknown error"}`);
  }
  const raw = document.toJS() ?? {};
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError("config.bad_yaml", `${source}: the top level must be a mapping of keys`);
  }
  applyEnvOverrides(
    raw as Record<string, unknown>,
    options.overrides ?? {},
    options.env ?? process.env,
    source,
  );
  return validateConfig(raw, source, schema);
}

export function validateConfig<S extends z.ZodType>(raw: unknown, source: string, schema: S): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => describeIssue(issue, schema));
  throw new ConfigError(
    "config.invalid",
    `${source}: invalid configuration\n${problems.map((p) => `  - ${p}`).join("\n")}`,
  );
}

export function applyEnvOverrides(
  target: Record<string, unknown>,
  overrides: Record<string, EnvOverride>,
  env: NodeJS.ProcessEnv,
  source: string,
): void {
  for (const [name, override] of Object.entries(overrides)) {
    const value = envValue(env, name, source);
    if (value === undefined || value === "") continue;
    let parsed: unknown;
    try {
      parsed = override.parse ? override.parse(value) : value;
    } catch (error) {
      throw new ConfigError(
        "config.bad_env",
        `${source}: environment variable ${name}: ${(error as Error).message}`,
      );
    }
    setPath(target, override.path, parsed);
  }
}

/**
 * A variable's value, or the contents of the file its `_FILE` twin names (Docker and Kubernetes secrets:
 * LIFELINE_KAFKA_PASSWORD_FILE=/run/secrets/kafka), without its final newline. The variable itself wins.
 */
function envValue(env: NodeJS.ProcessEnv, name: string, source: string): string | undefined {
  const value = env[name];
  if (value !== undefined && value !== "") return value;
  const file = env[`${name}_FILE`];
  if (!file) return value;
  try {
    return readFileSync(file, "utf8").replace(/\r?\n$/, "");
  } catch (error) {
    throw new ConfigError(
      "config.bad_env",
      `${source}: environment variable ${name}_FILE: cannot read ${file}: ${(error as Error).message}`,
    );
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1] as string] = value;
}

function describeIssue(issue: z.core.$ZodIssue, schema: z.ZodType): string {
  const at = issue.path.length > 0 ? issue.path.join(".") : "(top level)";
  if (issue.code === "unrecognized_keys") {
    const known = schemaKeysAt(schema, issue.path);
    return issue.keys
      .map((key) => {
        const where = issue.path.length > 0 ? `${at}.${key}` : key;
        const suggestion = closest(key, known);
        const hint = suggestion ? `did you mean "${suggestion}"?` : `known keys: ${known.join(", ")}`;
        return `${where}: unknown key (${hint})`;
      })
      .join("\n  - ");
  }
  return `${at}: ${issue.message}`;
}

type SchemaDef = {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  in?: z.ZodType;
};

/** The keys an object schema accepts at a path, looking through optional/default/array wrappers. */
function schemaKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let node: z.ZodType | undefined = schema;
  let remaining = [...path];
  for (let guard = 0; node && guard < 64; guard++) {
    const def: SchemaDef = (node as unknown as { _zod: { def: SchemaDef } })._zod.def;
    if (def.innerType) node = def.innerType;
    else if (def.type === "pipe") node = def.in;
    else if (def.type === "array" && typeof remaining[0] === "number") {
      node = def.element;
      remaining = remaining.slice(1);
    } else if (def.type === "object" && def.shape) {
      if (remaining.length === 0) return Object.keys(def.shape);
      node = def.shape[String(remaining[0])];
      remaining = remaining.slice(1);
    } else return [];
  }
  return [];
}

function closest(key: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = levenshtein(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(current + 1, (row[j - 1] as number) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] as number;
}
