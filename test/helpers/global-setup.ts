import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { type Connections, resolveConnections } from "../../core/connections.ts";
import { createElastic } from "../../core/elastic/client.ts";
import { createKafka } from "../../core/kafka/client.ts";
import { loadSecrets, servicesDown, servicesUp } from "../../local-services/manager.ts";
import { localServicesSettings } from "../../local-services/settings.ts";
import { removeLeftovers } from "./leftovers.ts";

/** What the integration tests receive from the global setup (see test/helpers/services.ts). */
export interface LocalServicesInfo {
  /** The SASL listener of the local broker, for the auth tests; absent when servers are external. */
  kafkaSasl?: { brokers: string[]; username: string; password: string };
}

declare module "vitest" {
  export interface ProvidedContext {
    connections: Connections;
    localServices: LocalServicesInfo;
  }
}

let startedHere = false;

/**
 * Brings up the real Kafka and Elasticsearch with the same code as `lifeline services up`, or checks the
 * servers that LIFELINE_KAFKA_BROKERS / LIFELINE_ES_URL name. Servers this run started are stopped at the end;
 * servers that were already running are left running (LIFELINE_KEEP_SERVICES=1 keeps them too).
 */
export async function setup(project: TestProject): Promise<void> {
  // The compiled build (npm run build), once, before any test file: tests that run or install dist/ must not
  // rebuild it while another copies from it.
  const building = performance.now();
  const built = spawnSync(process.execPath, [fileURLToPath(new URL("../../bin/build.ts", import.meta.url))], {
    encoding: "utf8",
  });
  if (built.status !== 0) throw new Error(`npm run build failed:\n${built.stdout}${built.stderr}`);
  process.stderr.write(`[build] dist/ built in ${Math.round(performance.now() - building)} ms\n`);
  const settings = localServicesSettings();
  const began = performance.now();
  const reports = await servicesUp(settings, process.env, (message) =>
    process.stderr.write(`[services] ${message}\n`),
  );
  for (const report of reports) {
    if (!report.healthy) throw new Error(`${report.name} is not healthy: ${report.detail}`);
    startedHere ||= report.mode === "local" && !report.reused;
  }
  process.stderr.write(
    `[services] ${reports.map((r) => `${r.name} ${r.version ?? ""} at ${r.address} (${r.mode}${r.reused ? ", reused" : ""})`).join("; ")} in ${Math.round(performance.now() - began)} ms\n`,
  );
  const connections = resolveConnections();
  project.provide("connections", connections);
  if (reports.every((report) => report.mode === "local")) {
    // An hour's margin leaves alone what a run started in parallel is using.
    const cleaning = performance.now();
    const removed = await removeLeftovers(
      createKafka({ ...connections.kafka, clientId: "lifeline-test-setup" }),
      createElastic(connections.elasticsearch),
      Date.now() - 3_600_000,
    );
    process.stderr.write(
      `[services] removed leftovers of earlier runs: ${JSON.stringify(removed)} in ${Math.round(performance.now() - cleaning)} ms\n`,
    );
  }
  const secrets = await loadSecrets(settings);
  project.provide(
    "localServices",
    process.env.LIFELINE_KAFKA_BROKERS
      ? {}
      : { kafkaSasl: { brokers: [`127.0.0.1:${settings.kafka.saslPort}`], ...secrets.kafka } },
  );
}

export async function teardown(): Promise<void> {
  if (!startedHere || process.env.LIFELINE_KEEP_SERVICES) return;
  const result = await servicesDown(localServicesSettings(), (message) =>
    process.stderr.write(`[services] ${message}\n`),
  );
  if (result.leftover.length > 0)
    throw new Error(`processes left after services down: ${result.leftover.join(", ")}`);
}
