import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Connections, localConnectionsFile, resolveElastic, resolveKafka } from "../core/connections.ts";
import { describeElastic, type ElasticSettings } from "../core/elastic/client.ts";
import { describeKafka, type KafkaSettings } from "../core/kafka/client.ts";
import { elasticPaths, runningElasticPid, startElastic, waitForElastic } from "./elasticsearch.ts";
import { kafkaPaths, runningKafkaPid, startKafka, waitForKafka } from "./kafka.ts";
import { isAlive, processesMentioning, stopProcess } from "./process.ts";
import type { LocalServicesSettings } from "./settings.ts";

export type Progress = (message: string) => void;

/** Passwords made once per services folder: nothing secret is committed or shared between machines. */
export interface LocalSecrets {
  kafka: { username: string; password: string };
  elasticsearch: { username: string; password: string };
}

export interface ServiceReport {
  name: "kafka" | "elasticsearch";
  /** local: started and owned by `lifeline services`; external: named by the environment. */
  mode: "local" | "external";
  address: string;
  healthy: boolean;
  detail: string;
  version: string | undefined;
  pid: number | undefined;
  startMs: number | undefined;
  reused: boolean;
}

const START_TIMEOUT_MS = 180_000;

export async function servicesUp(
  settings: LocalServicesSettings,
  env: NodeJS.ProcessEnv,
  progress: Progress,
): Promise<ServiceReport[]> {
  await mkdir(settings.dir, { recursive: true });
  const secrets = await loadSecrets(settings);
  const externalKafka = Boolean(env.LIFELINE_KAFKA_BROKERS);
  const externalElastic = Boolean(env.LIFELINE_ES_URL);

  // Fetch and launch one after the other (two Maven runs sharing a local repository can corrupt each
  // other's downloads), then wait for both: Kafka boots while Elasticsearch is fetched and launched.
  const kafka = externalKafka
    ? { ready: checkExternal("kafka", env, progress) }
    : await launch(
        "kafka",
        "broker",
        () => startKafka(settings, secrets.kafka, progress),
        async () => {
          await waitForKafka(settings, START_TIMEOUT_MS);
          return kafkaReport(settings);
        },
        progress,
      );
  // Nobody awaits it until Elasticsearch is launched; keep an early failure from being "unhandled".
  kafka.ready.catch(() => {});
  const elastic = externalElastic
    ? { ready: checkExternal("elasticsearch", env, progress) }
    : await launch(
        "elasticsearch",
        "node",
        () => startElastic(settings, secrets.elasticsearch, progress),
        async () => {
          await waitForElastic(settings, secrets.elasticsearch, START_TIMEOUT_MS);
          return elasticReport(settings, secrets);
        },
        progress,
      );
  const reports = await Promise.all([kafka.ready, elastic.ready]);
  await writeConnections(settings, secrets);
  return reports;
}

/**
 * Launches a local service (or finds it running), says which, and hands back (not awaited: the next one is
 * launched meanwhile) its report once it answers, with how long it took to start when this call launched it.
 */
async function launch(
  name: ServiceReport["name"],
  noun: string,
  start: () => Promise<{ pid: number; reused: boolean }>,
  answered: () => Promise<ServiceReport>,
  progress: Progress,
): Promise<{ ready: Promise<ServiceReport> }> {
  const began = performance.now();
  const started = await start();
  progress(
    started.reused
      ? `${name}: reusing the running ${noun} (pid ${started.pid})`
      : `${name}: launched pid ${started.pid}`,
  );
  const ready = answered().then((report) => ({
    ...report,
    startMs: started.reused ? undefined : Math.round(performance.now() - began),
    reused: started.reused,
  }));
  return { ready };
}

export async function servicesStatus(
  settings: LocalServicesSettings,
  env: NodeJS.ProcessEnv,
): Promise<ServiceReport[]> {
  const secrets = await loadSecrets(settings, { create: false });
  return Promise.all([
    env.LIFELINE_KAFKA_BROKERS
      ? checkExternal("kafka", env, () => {}).catch(failedExternal("kafka", env))
      : kafkaReport(settings),
    env.LIFELINE_ES_URL
      ? checkExternal("elasticsearch", env, () => {}).catch(failedExternal("elasticsearch", env))
      : elasticReport(settings, secrets),
  ]);
}

/** Stops both local servers (SIGTERM, then SIGKILL after the grace period) and checks that no process is left. */
export async function servicesDown(
  settings: LocalServicesSettings,
  progress: Progress,
): Promise<{ stopped: string[]; killed: string[]; leftover: number[] }> {
  const killed = new Set<string>();
  const servers = [
    { name: "elasticsearch", pid: runningElasticPid(settings), marker: elasticPaths(settings).home },
    { name: "kafka", pid: runningKafkaPid(settings), marker: kafkaPaths(settings).config },
  ];
  await Promise.all(
    servers.map(async (server) => {
      if (server.pid) {
        progress(`${server.name}: stopping pid ${server.pid}`);
        if (await stopProcess(server.pid, 60_000)) killed.add(server.name);
      }
      // Stray processes from an earlier run whose pid file was lost.
      for (const pid of processesMentioning(server.marker)) {
        progress(`${server.name}: stopping stray pid ${pid}`);
        if (await stopProcess(pid, 30_000)) killed.add(server.name);
      }
    }),
  );
  const leftover = servers.flatMap((s) => processesMentioning(s.marker)).filter(isAlive);
  await rm(localConnectionsFile({ LIFELINE_SERVICES_DIR: settings.dir }), { force: true });
  // Named in a fixed order, not the order the stops finished in.
  const stopped = servers.filter((s) => s.pid).map((s) => s.name);
  return { stopped, killed: servers.map((s) => s.name).filter((name) => killed.has(name)), leftover };
}

async function kafkaReport(settings: LocalServicesSettings): Promise<ServiceReport> {
  const address = `127.0.0.1:${settings.kafka.port}`;
  const pid = runningKafkaPid(settings);
  const base = {
    name: "kafka" as const,
    mode: "local" as const,
    address,
    pid,
    startMs: undefined,
    reused: false,
  };
  if (!pid) return { ...base, healthy: false, detail: "not running", version: undefined };
  try {
    const cluster = await describeKafka({ ...localKafkaSettings(settings), requestTimeoutMs: 5_000 });
    return {
      ...base,
      healthy: true,
      detail: `cluster ${cluster.clusterId}`,
      version: settings.kafka.version,
    };
  } catch (error) {
    return { ...base, healthy: false, detail: (error as Error).message, version: settings.kafka.version };
  }
}

async function elasticReport(
  settings: LocalServicesSettings,
  secrets: LocalSecrets | undefined,
): Promise<ServiceReport> {
  const address = `http://127.0.0.1:${settings.elasticsearch.port}`;
  const pid = runningElasticPid(settings);
  const base = {
    name: "elasticsearch" as const,
    mode: "local" as const,
    address,
    pid,
    startMs: undefined,
    reused: false,
  };
  if (!pid || !secrets) return { ...base, healthy: false, detail: "not running", version: undefined };
  try {
    const info = await describeElastic(localElasticSettings(settings, secrets));
    return {
      ...base,
      healthy: info.status !== "red",
      detail: `health ${info.status}`,
      version: info.version,
    };
  } catch (error) {
    return { ...base, healthy: false, detail: (error as Error).message, version: undefined };
  }
}

async function checkExternal(
  name: "kafka" | "elasticsearch",
  env: NodeJS.ProcessEnv,
  progress: Progress,
): Promise<ServiceReport> {
  const began = performance.now();
  progress(`${name}: using the server named by the environment`);
  const base = { name, mode: "external" as const, pid: undefined, reused: true };
  if (name === "kafka") {
    const kafka = resolveKafka({ env });
    const cluster = await describeKafka(kafka);
    return {
      ...base,
      address: kafka.brokers.join(","),
      healthy: true,
      detail: `cluster ${cluster.clusterId}`,
      version: undefined,
      startMs: Math.round(performance.now() - began),
    };
  }
  const elastic = resolveElastic({ env });
  const info = await describeElastic(elastic);
  return {
    ...base,
    address: elastic.url,
    healthy: info.status !== "red",
    detail: `health ${info.status}`,
    version: info.version,
    startMs: Math.round(performance.now() - began),
  };
}

function failedExternal(name: "kafka" | "elasticsearch", env: NodeJS.ProcessEnv) {
  return (error: unknown): ServiceReport => ({
    name,
    mode: "external",
    address: (name === "kafka" ? env.LIFELINE_KAFKA_BROKERS : env.LIFELINE_ES_URL) ?? "",
    healthy: false,
    detail: (error as Error).message,
    version: undefined,
    pid: undefined,
    startMs: undefined,
    reused: false,
  });
}

export function localKafkaSettings(settings: LocalServicesSettings): KafkaSettings {
  return {
    brokers: [`127.0.0.1:${settings.kafka.port}`],
    clientId: "lifeline",
    connectionTimeoutMs: 3_000,
    requestTimeoutMs: 30_000,
  };
}

export function localElasticSettings(
  settings: LocalServicesSettings,
  secrets: LocalSecrets,
): ElasticSettings {
  return {
    url: `http://127.0.0.1:${settings.elasticsearch.port}`,
    username: secrets.elasticsearch.username,
    password: secrets.elasticsearch.password,
    requestTimeoutMs: 30_000,
  };
}

async function writeConnections(settings: LocalServicesSettings, secrets: LocalSecrets): Promise<void> {
  const connections: Connections = {
    kafka: localKafkaSettings(settings),
    elasticsearch: localElasticSettings(settings, secrets),
  };
  await writeFile(
    localConnectionsFile({ LIFELINE_SERVICES_DIR: settings.dir }),
    `${JSON.stringify(connections, null, 2)}\n`,
    {
      mode: 0o600,
    },
  );
}

export async function loadSecrets(settings: LocalServicesSettings): Promise<LocalSecrets>;
export async function loadSecrets(
  settings: LocalServicesSettings,
  options: { create: false },
): Promise<LocalSecrets | undefined>;
export async function loadSecrets(
  settings: LocalServicesSettings,
  options: { create: boolean } = { create: true },
): Promise<LocalSecrets | undefined> {
  const file = join(settings.dir, "secrets.json");
  try {
    return JSON.parse(await readFile(file, "utf8")) as LocalSecrets;
  } catch {
    if (!options.create) return undefined;
  }
  const secret = () => randomBytes(18).toString("base64url");
  const secrets: LocalSecrets = {
    kafka: { username: "lifeline", password: secret() },
    elasticsearch: { username: "lifeline", password: secret() },
  };
  await writeFile(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  return secrets;
}
