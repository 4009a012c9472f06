import { homedir } from "node:os";
import { join } from "node:path";
import { localServicesDir } from "../core/connections.ts";
import { ConfigError } from "../core/errors.ts";

/**
 * Versions chosen on purpose (see docs/operations.md, "Local Kafka and Elasticsearch"):
 * - Kafka 4.4.0: newest 4.x; kafkajs 2.2.4 negotiates API versions that KIP-896 kept (checked by the
 *   integration tests: idempotent produce, consumer groups, headers, SASL PLAIN/SCRAM).
 * - Elasticsearch 9.5.4: newest 9.x integration-test zip served by Maven Central; @elastic/elasticsearch 9.x.
 */
export const DEFAULT_KAFKA_VERSION = "4.4.0";
export const DEFAULT_ELASTICSEARCH_VERSION = "9.5.4";

export interface LocalServicesSettings {
  /** Data, logs, configs and pid files of the running servers. */
  dir: string;
  /** Downloads (Maven local repository, unpacked jars), shared by every clone and CI run. */
  cacheDir: string;
  mavenRepoUrl: string | undefined;
  kafka: {
    version: string;
    port: number;
    controllerPort: number;
    /** A second listener with SASL (PLAIN and SCRAM), so clients' auth paths are tested for real. */
    saslPort: number;
    heapMb: number;
    javaHome: string | undefined;
  };
  elasticsearch: {
    version: string;
    port: number;
    transportPort: number;
    heapMb: number;
    javaHome: string | undefined;
    /** Elasticsearch refuses to run as root; when we are root it runs as this system user. */
    user: string;
  };
}

export function localServicesSettings(env: NodeJS.ProcessEnv = process.env): LocalServicesSettings {
  return {
    dir: localServicesDir(env),
    cacheDir: env.LIFELINE_CACHE_DIR ?? join(homedir(), ".cache/lifeline"),
    mavenRepoUrl: env.LIFELINE_MAVEN_REPO_URL || undefined,
    kafka: {
      version: env.LIFELINE_KAFKA_VERSION ?? DEFAULT_KAFKA_VERSION,
      port: port(env, "LIFELINE_SERVICES_KAFKA_PORT", 19092),
      controllerPort: port(env, "LIFELINE_SERVICES_KAFKA_CONTROLLER_PORT", 19093),
      saslPort: port(env, "LIFELINE_SERVICES_KAFKA_SASL_PORT", 19094),
      heapMb: size(env, "LIFELINE_SERVICES_KAFKA_HEAP_MB", 512),
      javaHome: env.LIFELINE_JAVA_HOME || undefined,
    },
    elasticsearch: {
      version: env.LIFELINE_ES_VERSION ?? DEFAULT_ELASTICSEARCH_VERSION,
      port: port(env, "LIFELINE_SERVICES_ES_PORT", 19200),
      transportPort: port(env, "LIFELINE_SERVICES_ES_TRANSPORT_PORT", 19300),
      heapMb: size(env, "LIFELINE_SERVICES_ES_HEAP_MB", 768),
      javaHome: env.LIFELINE_ES_JAVA_HOME || undefined,
      user: env.LIFELINE_ES_USER ?? "lifeline-es",
    },
  };
}

function port(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  return integer(env, name, fallback, 1, 65535);
}

function size(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  return integer(env, name, fallback, 128, 1024);
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(
      "services.bad_env",
      `${name}=${raw}: expected a whole number from ${min} to ${max}`,
    );
  }
  return value;
}
