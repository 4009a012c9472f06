import { Counter, Gauge, Histogram } from "prom-client";
import { componentRegistry } from "../core/observability/metrics.ts";

export function createCollectorMetrics() {
  const registry = componentRegistry("collector");
  return {
    registry,
    requests: new Counter({
      name: "lifeline_collector_requests_total",
      help: "OTLP/HTTP requests by signal and response status",
      labelNames: ["signal", "status"] as const,
      registers: [registry],
    }),
    itemsAccepted: new Counter({
      name: "lifeline_collector_items_accepted_total",
      help: "Spans and log records acknowledged by Kafka",
      labelNames: ["signal"] as const,
      registers: [registry],
    }),
    itemsRejected: new Counter({
      name: "lifeline_collector_items_rejected_total",
      help: "Spans and log records rejected as invalid (partial success)",
      labelNames: ["signal"] as const,
      registers: [registry],
    }),
    requestSeconds: new Histogram({
      name: "lifeline_collector_request_seconds",
      help: "Time from request to response, Kafka acknowledgement included",
      labelNames: ["signal"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    inflightBytes: new Gauge({
      name: "lifeline_collector_inflight_bytes",
      help: "Bytes accepted and not yet acknowledged by Kafka",
      registers: [registry],
    }),
    kafkaErrors: new Counter({
      name: "lifeline_collector_kafka_errors_total",
      help: "Failed Kafka sends (retried)",
      registers: [registry],
    }),
  };
}
export type CollectorMetrics = ReturnType<typeof createCollectorMetrics>;
