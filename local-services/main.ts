import { parseArgs } from "node:util";
import { type ServiceReport, servicesDown, servicesStatus, servicesUp } from "./manager.ts";
import { localServicesSettings } from "./settings.ts";

export const servicesHelp = `Usage: lifeline services <up|status|down> [--json]

Runs a local single-node Kafka (KRaft) and Elasticsearch for development and tests, without Docker.
Downloads come from Maven Central through mvn and are cached in ~/.cache/lifeline.

  up      fetch (first time), start, wait until both serve; reuses servers already running
  status  show each server, its version and health
  down    stop both; nothing is left running

Options:
  --json  print the report as JSON

Environment (defaults in brackets):
  LIFELINE_KAFKA_BROKERS / LIFELINE_ES_URL   use these servers instead of starting local ones
  LIFELINE_SERVICES_DIR       data, logs, pid files [/var/lib/lifeline/services as root, else ~/.local/state/lifeline/services]
  LIFELINE_CACHE_DIR          downloads [~/.cache/lifeline]
  LIFELINE_KAFKA_VERSION      [4.4.0]       LIFELINE_ES_VERSION        [9.5.4]
  LIFELINE_SERVICES_KAFKA_PORT [19092]      LIFELINE_SERVICES_KAFKA_SASL_PORT [19094]
  LIFELINE_SERVICES_KAFKA_CONTROLLER_PORT [19093]
  LIFELINE_SERVICES_ES_PORT   [19200]       LIFELINE_SERVICES_ES_TRANSPORT_PORT [19300]
  LIFELINE_SERVICES_KAFKA_HEAP_MB [512]     LIFELINE_SERVICES_ES_HEAP_MB [768]
  LIFELINE_JAVA_HOME          Java 17+ for Kafka [java on PATH]
  LIFELINE_ES_JAVA_HOME       Java 21+ for Elasticsearch [newest JDK under /usr/lib/jvm]
  LIFELINE_ES_USER            system user Elasticsearch runs as when started by root [lifeline-es]
  LIFELINE_MAVEN_REPO_URL     a Maven mirror to fetch from [Maven Central]
`;

export async function runServices(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const action = positionals[0];
  if (values.help || !action) {
    process.stdout.write(servicesHelp);
    return values.help ? 0 : 2;
  }
  const settings = localServicesSettings();
  const began = performance.now();
  const progress = (message: string) => {
    process.stderr.write(`[${((performance.now() - began) / 1000).toFixed(1).padStart(5)}s] ${message}\n`);
  };
  switch (action) {
    case "up": {
      const reports = await servicesUp(settings, process.env, progress);
      print(reports, values.json);
      progress(`ready in ${((performance.now() - began) / 1000).toFixed(1)} s (folder ${settings.dir})`);
      return reports.every((r) => r.healthy) ? 0 : 1;
    }
    case "status": {
      const reports = await servicesStatus(settings, process.env);
      print(reports, values.json);
      return reports.every((r) => r.healthy) ? 0 : 1;
    }
    case "down": {
      const result = await servicesDown(settings, progress);
      if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else {
        const what =
          result.stopped.length > 0 ? `stopped ${result.stopped.join(" and ")}` : "nothing was running";
        const forced = result.killed.length > 0 ? ` (had to kill ${result.killed.join(", ")})` : "";
        process.stdout.write(`${what}${forced}\n`);
      }
      if (result.leftover.length > 0) {
        process.stderr.write(`still running after down: pids ${result.leftover.join(", ")}\n`);
        return 1;
      }
      return 0;
    }
    default:
      process.stderr.write(`lifeline services: unknown action "${action}"\n\n${servicesHelp}`);
      return 2;
  }
}

function print(reports: ServiceReport[], json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
    return;
  }
  const rows = reports.map((r) => [
    r.name,
    r.healthy ? "healthy" : "DOWN",
    r.version ?? "-",
    r.mode,
    r.address,
    r.pid ? String(r.pid) : "-",
    r.startMs === undefined ? (r.reused ? "reused" : "-") : `${(r.startMs / 1000).toFixed(1)} s`,
    r.detail,
  ]);
  const header = ["service", "state", "version", "mode", "address", "pid", "start", "detail"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  for (const row of [header, ...rows]) {
    process.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd()}\n`,
    );
  }
}
