import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { applyEnvOverrides, type EnvOverride, validateConfig } from "./config.ts";
import { elasticEnvOverrides, elasticSettingsSchema } from "./elastic/settings.ts";
import { ConfigError } from "./errors.ts";
import { kafkaEnvOverrides, kafkaSettingsSchema } from "./kafka/client.ts";

export const connectionsSchema = z.strictObject({
  kafka: kafkaSettingsSchema,
  elasticsearch: elasticSettingsSchema,
});
export type Connections = z.output<typeof connectionsSchema>;

export const connectionEnvOverrides: Record<string, EnvOverride> = {
  ...kafkaEnvOverrides,
  ...elasticEnvOverrides,
};

/** Where `lifeline services up` keeps the local servers' data, logs and the connections file. */
export function localServicesDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LIFELINE_SERVICES_DIR) return env.LIFELINE_SERVICES_DIR;
  // Elasticsearch runs as a dedicated user when we are root; /root is not readable for it.
  return process.getuid?.() === 0
    ? "/var/lib/lifeline/services"
    : join(homedir(), ".local/state/lifeline/services");
}

export function localConnectionsFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(localServicesDir(env), "connections.json");
}

type ConnectionSource = { env?: NodeJS.ProcessEnv; fromConfig?: Partial<Record<keyof Connections, unknown>> };

/**
 * Kafka and Elasticsearch settings for a component: the environment (LIFELINE_KAFKA_BROKERS, LIFELINE_ES_URL, ...)
 * wins over the config file's sections, which win over the local servers started by `lifeline services up`.
 */
export function resolveConnections(options: ConnectionSource = {}): Connections {
  return { kafka: resolveKafka(options), elasticsearch: resolveElastic(options) };
}

export function resolveKafka(options: ConnectionSource = {}): Connections["kafka"] {
  return resolveSection("kafka", "LIFELINE_KAFKA_BROKERS", options);
}

export function resolveElastic(options: ConnectionSource = {}): Connections["elasticsearch"] {
  return resolveSection("elasticsearch", "LIFELINE_ES_URL", options);
}

function resolveSection<K extends keyof Connections>(
  section: K,
  serverVariable: string,
  options: ConnectionSource,
): Connections[K] {
  const env = options.env ?? process.env;
  // A server named in the environment replaces the local one wholesale, credentials included.
  const base =
    options.fromConfig?.[section] ?? (env[serverVariable] ? undefined : readLocalConnections(env)?.[section]);
  const raw: Record<string, unknown> = { [section]: structuredClone(base) };
  const overrides = Object.fromEntries(
    Object.entries(connectionEnvOverrides).filter(([, o]) => o.path.startsWith(`${section}.`)),
  );
  applyEnvOverrides(raw, overrides, env, "environment");
  if (raw[section] === undefined) {
    throw new ConfigError(
      `connections.no_${section}`,
      `no ${section === "kafka" ? "Kafka" : "Elasticsearch"} configured`,
      {
        hint: `run \`lifeline services up\` for local servers, or set ${serverVariable}`,
      },
    );
  }
  const schema = connectionsSchema.shape[section];
  return validateConfig(raw[section], `${section} connection settings`, schema) as Connections[K];
}

function readLocalConnections(env: NodeJS.ProcessEnv): Connections | undefined {
  try {
    return JSON.parse(readFileSync(localConnectionsFile(env), "utf8")) as Connections;
  } catch {
    return undefined;
  }
}
