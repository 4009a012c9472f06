/**
 * Kafka topic names, one place for all components. A prefix (LIFELINE_TOPIC_PREFIX) lets several
 * environments share one cluster, and lets tests use fresh topics.
 */
export interface Topics {
  /** Service log records from the shipper and OTLP log records from the collector. */
  logs: string;
  /** Agent and controller lifecycle events (stop/start steps, heartbeats, rollout decisions). */
  lifecycle: string;
  /** OTLP spans from the collector, keyed by trace id. */
  spans: string;
  /** OTLP metric data points from the collector, keyed by service and metric. */
  metrics: string;
  /** Signed commands from the controller to the agents. */
  control: string;
  /** Records the indexer could not write, with the reason. */
  deadLetter: string;
}

export function topicNames(prefix = process.env.LIFELINE_TOPIC_PREFIX ?? "lifeline"): Topics {
  return {
    logs: `${prefix}.logs`,
    lifecycle: `${prefix}.lifecycle`,
    spans: `${prefix}.spans`,
    metrics: `${prefix}.metrics`,
    control: `${prefix}.control`,
    deadLetter: `${prefix}.dead-letter`,
  };
}
