import { resolveKafka } from "../core/connections.ts";
import { limitHeapGrowth } from "../core/heap.ts";
import { BatchProducer } from "../core/kafka/batch-producer.ts";
import { createKafka } from "../core/kafka/client.ts";
import { kafkaGate } from "../core/kafka/gate.ts";
import { DEFAULT_PACK_BYTES } from "../core/kafka/packing.ts";
import { type Component, runUntilSignal, Supervisor } from "../core/lifecycle.ts";
import { createLogger } from "../core/logger.ts";
import { type HealthReport, ObservabilityServer } from "../core/observability/http.ts";
import { gatedHealth, settingSource } from "../core/startup.ts";
import { topicNames } from "../core/topics.ts";
import { loadCollectorConfig } from "./config.ts";
import { OtlpGrpcReceiver } from "./grpc-receiver.ts";
import { createCollectorMetrics } from "./metrics.ts";
import { OtlpPipeline, TOPIC_OF } from "./pipeline.ts";
import { OtlpReceiver } from "./receiver.ts";

export async function runCollector(values: { config?: string; validate: boolean }): Promise<number> {
  const config = loadCollectorConfig(values.config);
  if (values.validate) {
    process.stdout.write(`${values.config ?? "defaults"}: valid collector config\n`);
    return 0;
  }
  // A small young generation must be given at start, as a node flag (NODE_OPTIONS=--max-semi-space-size=8, as
  // docker-compose.yml does: core/entry.ts collectorLauncher).
  limitHeapGrowth();
  const logger = createLogger("collector");
  const kafkaSettings = {
    ...resolveKafka({ fromConfig: config.kafka ? { kafka: config.kafka } : {} }),
    clientId: "lifeline-collector",
  };
  const kafka = createKafka(kafkaSettings, logger);
  const metrics = createCollectorMetrics();
  const topics = topicNames(config.topicPrefix);
  const producer = new BatchProducer({
    kafka,
    logger: logger.child({ component: "kafka-producer" }),
    batchBytes: 1 << 20,
    lingerMs: 5,
    lanes: config.limits.producers,
    inflightBytes: config.limits.inflightBytes,
    compression: config.compression,
    packBytes: config.recordFormat === "single" ? 0 : DEFAULT_PACK_BYTES,
    // Spans of many traces share a message per partition, not one message per trace (each trace in its partition).
    topics: Object.values(TOPIC_OF).map((kind) => topics[kind]),
    deadLetterTopic: topics.deadLetter,
    metrics: { sent: () => {}, failed: () => metrics.kafkaErrors.inc(), deadLettered: () => {} },
  });
  const pipeline = new OtlpPipeline({ config, producer, metrics });
  const receiver = new OtlpReceiver({ config, pipeline, logger, metrics });
  const receivers = config.grpc.enabled
    ? [receiver, new OtlpGrpcReceiver({ config, pipeline, logger, metrics })]
    : [receiver];
  // The receiver listens only once Kafka answers: until then an exporter's connection is refused and it retries.
  const gate = kafkaGate({
    kafka,
    settings: kafkaSettings,
    topics: [...Object.values(TOPIC_OF).map((kind) => topics[kind]), topics.deadLetter],
    setting: settingSource("kafka", { configFile: values.config, inConfig: config.kafka !== undefined }),
    logger,
  });
  const observability = new ObservabilityServer({
    registry: metrics.registry,
    health: gatedHealth([gate], () => collectorHealth(pipeline, receivers)),
    ...config.http,
    logger,
  });
  const components: Component[] = [observability, gate, producer, ...receivers];
  await runUntilSignal(new Supervisor(components, logger), logger, {
    stopDeadlineMs: config.limits.ackTimeoutMs + 5_000,
    onStarted: () =>
      logger.info(
        {
          port: receiver.port,
          topicPrefix: config.topicPrefix,
          grpcPort: receivers.find((r) => r instanceof OtlpGrpcReceiver)?.port,
        },
        "collector started",
      ),
  });
  return 0;
}

/** Healthy while every receiver listens and Kafka takes records. */
function collectorHealth(
  pipeline: OtlpPipeline,
  receivers: Array<{ name: string; listening: boolean }>,
): HealthReport {
  const kafka = pipeline.kafkaState;
  const listening = receivers.every((receiver) => receiver.listening);
  return {
    healthy: listening && kafka.healthy,
    details: {
      listening: Object.fromEntries(receivers.map((receiver) => [receiver.name, receiver.listening])),
      kafka: kafka.healthy ? "ok" : (kafka.lastError ?? "failing"),
      inflightBytes: kafka.inflightBytes,
    },
  };
}
