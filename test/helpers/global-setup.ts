import type { TestProject } from "vitest/node";
import { type Connections, resolveConnections } from "../../core/connections.ts";
import { loadSecrets, servicesDown, servicesUp } from "../../local-services/manager.ts";
import { localServicesSettings } from "../../local-services/settings.ts";

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
  project.provide("connections", resolveConnections());
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
