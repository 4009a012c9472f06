import { readFileSync } from "node:fs";
import { collectDefaultMetrics, Gauge, Registry } from "prom-client";

/**
 * Every daemon's Prometheus registry starts the same way: prom-client's process and Node metrics under their
 * standard names (process_cpu_seconds_total, process_resident_memory_bytes, nodejs_eventloop_lag_seconds ...),
 * so the usual dashboards work, and lifeline_build_info{component,version,node_version} 1.
 */
export function componentRegistry(component: "agent" | "shipper" | "collector" | "indexer"): Registry {
  const registry = new Registry();
  // The event-loop lag histogram samples on a timer: prom-client's 10 ms default wakes an idle agent 100 times a
  // second (its cost: bench/tuning.md); 500 ms still shows a stalled loop.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 500 });
  new Gauge({
    name: "lifeline_build_info",
    help: "Which Lifeline runs here: always 1, the facts are the labels",
    labelNames: ["component", "version", "node_version"] as const,
    registers: [registry],
  }).set({ component, version: VERSION, node_version: process.versions.node }, 1);
  return registry;
}

const VERSION = (() => {
  // ../../package.json from core/observability (source) or dist/core/observability (the build copies it to dist/).
  try {
    return (
      JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
    ).version;
  } catch {
    return "unknown";
  }
})();
