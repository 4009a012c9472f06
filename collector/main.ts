import { parseArgs } from "node:util";
import { resolveKafka } from "../core/connections.ts";
import { BatchProducer } from "../core/kafka/batch-producer.ts";
import { createKafka } from "../core/kafka/client.ts";
import { DEFAULT_PACK_BYTES } from "../core/kafka/packing.ts";
import { ensureTopics } from "../core/kafka/topics.ts";
import { type Component, runUntilSignal, Supervisor } from "../core/lifecycle.ts";
import { createLogger } from "../core/logger.ts";
import { ObservabilityServer } from "../core/observability/http.ts";
import { loadCollectorConfig } from "./config.ts";
import { createCollectorMetrics } from "./metrics.ts";
import { OtlpReceiver } from "./receiver.ts";

export const collectorHelp = `Usage: lifeline collector [--config FILE]

Receives OTLP/HTTP (POST /v1/traces, /v1/logs; protobuf or JSON; gzip) and writes spans to <prefix>.spans
(keyed by trace id) and log records to <prefix>.logs. A request is answered 200 only once Kafka acknowledged
it; while Kafka cannot take data the answer is 503 or 429 with Retry-After.

Options:
  --config FILE   collector YAML config (collector/collector.example.yaml); without it the defaults:
                  listen 127.0.0.1:4318, /metrics and /health on 127.0.0.1:9464, topic prefix "lifeline",
                  8 MiB requests, 10 s acknowledgement timeout
  --validate      check the config and exit

Environment: LIFELINE_KAFKA_* (see \`lifeline services --help\`), LIFELINE_TOPIC_PREFIX,
LIFELINE_COLLECTOR_HOST (0.0.0.0 in a container), LIFELINE_COLLECTOR_PORT, LIFELINE_LOG_LEVEL.
`;

export async function runCollector(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      validate: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(collectorHelp);
    return 0;
  }
  const config = loadCollectorConfig(values.config);
  if (values.validate) {
    process.stdout.write(`${values.config ?? "defaults"}: valid collector config\n`);
    return 0;
  }
  const logger = createLogger("collector");
  const kafka = createKafka(
    {
      ...resolveKafka({ fromConfig: config.kafka ? { kafka: config.kafka } : {} }),
      clientId: "lifeline-collector",
    },
    logger,
  );
  const metrics = createCollectorMetrics();
  const producer = new BatchProducer({
    kafka,
    logger: logger.child({ component: "kafka-producer" }),
    batchBytes: 1 << 20,
    lingerMs: 5,
    inflightBytes: config.limits.inflightBytes,
    compression: config.compression,
    packBytes: config.recordFormat === "single" ? 0 : DEFAULT_PACK_BYTES,
    deadLetterTopic: `${config.topicPrefix}.dead-letter`,
    metrics: { sent: () => {}, failed: () => metrics.kafkaErrors.inc(), deadLettered: () => {} },
  });
  const receiver = new OtlpReceiver({ config, producer, logger, metrics });
  await ensureTopics(
    kafka,
    ["spans", "logs", "dead-letter"].map((kind) => `${config.topicPrefix}.${kind}`),
  );
  const observability = new ObservabilityServer({
    registry: metrics.registry,
    health: () => receiver.health(),
    ...config.http,
    logger,
  });
  const components: Component[] = [observability, producer, receiver];
  await runUntilSignal(new Supervisor(components, logger), logger, {
    stopDeadlineMs: config.limits.ackTimeoutMs + 5_000,
    onStarted: () =>
      logger.info({ port: receiver.port, topicPrefix: config.topicPrefix }, "collector started"),
  });
  return 0;
}
