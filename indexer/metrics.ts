import { Counter, Gauge, Histogram } from "prom-client";
import { componentRegistry } from "../core/observability/metrics.ts";

export function createIndexerMetrics() {
  const registry = componentRegistry("indexer");
  return {
    registry,
    indexed: new Counter({
      name: "lifeline_indexer_documents_indexed_total",
      help: "Documents created",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
    duplicates: new Counter({
      name: "lifeline_indexer_documents_duplicate_total",
      help: "Documents already indexed (409 on create): re-deliveries",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
    retries: new Counter({
      name: "lifeline_indexer_retries_total",
      help: "Items or requests retried, by status",
      labelNames: ["status"] as const,
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: "lifeline_indexer_dead_lettered_total",
      help: "Records sent to the dead-letter topic, by error type and innermost cause type",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    degraded: new Counter({
      name: "lifeline_indexer_documents_degraded_total",
      help: "Documents stored with a field left unindexed or folded into text so that Elasticsearch takes them (lifeline.flags)",
      labelNames: ["flag"] as const,
      registers: [registry],
    }),
    bulkSeconds: new Histogram({
      name: "lifeline_indexer_bulk_seconds",
      help: "Bulk request latency",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    lag: new Gauge({
      name: "lifeline_indexer_consumer_lag_records",
      help: "Records behind the partition's end",
      labelNames: ["topic", "partition"] as const,
      registers: [registry],
    }),
  };
}
export type IndexerMetrics = ReturnType<typeof createIndexerMetrics>;
