import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { type ProcessUnderTest, runLifeline, startLifeline } from "../helpers/cli.ts";
import { connections, uniqueName } from "../helpers/services.ts";

/**
 * docker-compose.yml's Lifeline services run as the file says, without a Docker engine: each service's command and
 * environment, its mounted config folder, the real Kafka and Elasticsearch for kafka:9092 and elasticsearch:9200,
 * and then its own healthcheck command, run as Docker would run it inside the container. Paths inside containers
 * are mapped to a temporary folder (/etc/lifeline, /var/lib/lifeline) and to this checkout's build
 * (/usr/local/lib/node_modules/lifeline: the image installs the packed build there). What this does not prove:
 * the image builds, the network between containers, Kafka's external listener.
 */
const root = fileURLToPath(new URL("../../", import.meta.url));

interface ComposeService {
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  healthcheck?: { test: string[] };
  restart?: string;
}

const compose = parse(readFileSync(join(root, "docker-compose.yml"), "utf8"), { merge: true }) as {
  services: Record<string, ComposeService>;
};

const work = mkdtempSync(join(tmpdir(), "lifeline-compose-"));
// Topics and indices of this run's own, not the shared servers' "lifeline" and "default" (the one change made to
// the mounted configs besides paths).
const prefix = uniqueName("test-compose");
const namespace = prefix.replaceAll("-", "_");
const state = join(work, "state");
mkdirSync(state, { recursive: true });

/** The container's paths on this machine. */
function mapPath(text: string, etc: string): string {
  return text
    .replaceAll("/usr/local/lib/node_modules/lifeline/dist", join(root, "dist"))
    .replaceAll("/var/lib/lifeline", state)
    .replaceAll("/etc/lifeline", etc);
}

/** A service's mounted config folder, copied with its paths mapped. */
function mountConfig(name: string, service: ComposeService): string {
  const etc = join(work, `etc-${name}`);
  mkdirSync(etc, { recursive: true });
  for (const volume of service.volumes ?? []) {
    const [source, target] = volume.split(":");
    if (target !== "/etc/lifeline" || !source?.startsWith("./")) continue;
    const from = join(root, source);
    cpSync(from, etc, { recursive: true });
    for (const file of readdirSync(etc)) {
      if (!file.endsWith(".yaml")) continue;
      const text = mapPath(readFileSync(join(etc, file), "utf8"), etc)
        .replace(/^topicPrefix: lifeline$/m, `topicPrefix: ${prefix}`)
        .replace(/^namespace: default$/m, `namespace: ${namespace}`);
      writeFileSync(join(etc, file), text);
    }
  }
  return etc;
}

function environment(service: ComposeService): NodeJS.ProcessEnv {
  const { kafka, elasticsearch } = connections();
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(service.environment ?? {})) {
    env[key] = String(value)
      .replace("kafka:9092", kafka.brokers.join(","))
      .replace("http://elasticsearch:9200", elasticsearch.url);
  }
  // The compose file's Elasticsearch password is ${ELASTIC_PASSWORD}; here the local server's credentials.
  if (env.LIFELINE_ES_USERNAME !== undefined) {
    env.LIFELINE_ES_USERNAME = elasticsearch.username ?? "";
    env.LIFELINE_ES_PASSWORD = elasticsearch.password ?? "";
  }
  env.LIFELINE_LOG_LEVEL = "info";
  return env;
}

/** The healthcheck's `CMD node -e ...` as Docker runs it in the container (node is the image's). */
function healthcheck(service: ComposeService): Promise<number> {
  const [kind, program, ...args] = service.healthcheck?.test ?? [];
  expect(kind).toBe("CMD");
  expect(program).toBe("node");
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 10_000 }, (error) =>
      resolve(error ? (typeof error.code === "number" ? error.code : 1) : 0),
    );
  });
}

const running: ProcessUnderTest[] = [];
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
});

function start(name: string, readyMessage: string): ProcessUnderTest {
  const service = compose.services[name] as ComposeService;
  const etc = mountConfig(name, service);
  const command = (service.command ?? []).map((arg) => mapPath(arg, etc));
  const component = startLifeline(command, readyMessage, environment(service));
  running.push(component);
  return component;
}

describe("docker-compose.yml's Lifeline services, run as the file says", () => {
  it("every Lifeline service serves /metrics and /health on all interfaces of its container", () => {
    const lifeline = Object.entries(compose.services).filter(
      ([, s]) => s.restart !== "no" && s.command && !s.command[0]?.includes(" ") && s.healthcheck,
    );
    const hosts: Record<string, string> = {};
    for (const [name, service] of lifeline) {
      for (const volume of service.volumes ?? []) {
        const [source, target] = volume.split(":");
        if (target !== "/etc/lifeline" || !source) continue;
        const file = service.command?.[service.command.indexOf("--config") + 1]?.replace(
          "/etc/lifeline",
          source,
        );
        if (!file) continue;
        const config = parse(readFileSync(join(root, file), "utf8")) as { http?: { host?: string } };
        hosts[name] = config.http?.host ?? "127.0.0.1 (default)";
      }
    }
    expect(hosts).toEqual({
      collector: "0.0.0.0",
      indexer: "0.0.0.0",
      "demo-agent": "0.0.0.0",
      "demo-shipper": "0.0.0.0",
    });
  });

  it("collector and indexer start from their command, config and environment, and pass their healthcheck", async () => {
    const collector = start("collector", "collector started");
    const indexer = start("indexer", "indexer started");
    await Promise.all([collector.started, indexer.started]);
    expect(await healthcheck(compose.services.collector as ComposeService)).toBe(0);
    expect(await healthcheck(compose.services.indexer as ComposeService)).toBe(0);
  });

  it("the demo host: demo-controller's keygen, then demo-agent and demo-shipper pass their healthchecks", async () => {
    const controller = compose.services["demo-controller"] as ComposeService;
    const etc = mountConfig("demo-controller", controller);
    const keygen = await runLifeline((controller.command ?? []).map((arg) => mapPath(arg, etc)));
    expect(keygen.code, keygen.stderr).toBe(0);
    const agent = start("demo-agent", "agent started");
    const shipper = start("demo-shipper", "component started");
    await Promise.all([agent.started, shipper.started]);
    await shipper.waitForOutput('"component":"shipper","ms"', 1, 60_000);
    expect(await healthcheck(compose.services["demo-agent"] as ComposeService)).toBe(0);
    expect(await healthcheck(compose.services["demo-shipper"] as ComposeService)).toBe(0);
  });
});
