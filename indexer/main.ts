import { resolveElastic, resolveKafka } from "../core/connections.ts";
import { createElastic, describeElastic, translateElasticError } from "../core/elastic/client.ts";
import { createKafka } from "../core/kafka/client.ts";
import { kafkaGate } from "../core/kafka/gate.ts";
import { runUntilSignal, Supervisor } from "../core/lifecycle.ts";
import { createLogger } from "../core/logger.ts";
import { ObservabilityServer } from "../core/observability/http.ts";
import { startTracing } from "../core/observability/tracing.ts";
import { gatedHealth, ServerGate, settingSource } from "../core/startup.ts";
import { loadIndexerConfig } from "./config.ts";
import { setupIndices } from "./index-setup.ts";
import { Indexer } from "./indexer.ts";
import { createIndexerMetrics } from "./metrics.ts";

export async function runIndexer(values: {
  config?: string | undefined;
  validate: boolean;
  setup: boolean;
}): Promise<number> {
  const config = loadIndexerConfig(values.config);
  if (values.validate) {
    process.stdout.write(`${values.config ?? "(defaults)"}: valid indexer config\n`);
    return 0;
  }
  const logger = createLogger("indexer");
  const elasticSettings = resolveElastic({
    fromConfig: config.elasticsearch ? { elasticsearch: config.elasticsearch } : {},
  });
  const elastic = createElastic(elasticSettings);
  const indices = {
    namespace: config.namespace,
    retention: config.indices.retention,
    replicas: config.indices.replicas,
    mode: config.indices.mode,
  };
  if (values.setup) {
    const layout = await setupIndices(elastic, indices, logger).catch((error: unknown) => {
      throw translateElasticError(error, elasticSettings);
    });
    process.stdout.write(
      `index templates ready: ${Object.values(layout.targets).join(", ")}${layout.dataStreams ? " (data streams)" : " (plain indices)"}\n`,
    );
    await elastic.close();
    return 0;
  }
  const configured = (section: "kafka" | "elasticsearch") =>
    settingSource(section, { configFile: values.config, inConfig: config[section] !== undefined });
  // Elasticsearch first (the templates must exist before the first document), then Kafka.
  const elasticGate = new ServerGate({
    server: "Elasticsearch",
    address: elasticSettings.url,
    setting: configured("elasticsearch"),
    logger,
    probe: async () => {
      await describeElastic(elasticSettings);
      return await setupIndices(elastic, indices, logger).catch((error: unknown) => {
        throw translateElasticError(error, elasticSettings);
      });
    },
  });
  const kafkaSettings = {
    ...resolveKafka({ fromConfig: config.kafka ? { kafka: config.kafka } : {} }),
    clientId: "lifeline-indexer",
  };
  const kafka = createKafka(kafkaSettings, logger);
  const metrics = createIndexerMetrics();
  const indexer = new Indexer({
    config,
    kafka,
    elastic,
    elasticSettings,
    logger,
    metrics,
    layout: () => elasticGate.result,
  });
  const gate = kafkaGate({
    kafka,
    settings: kafkaSettings,
    topics: indexer.topicNames,
    setting: configured("kafka"),
    logger,
  });
  const observability = config.http
    ? new ObservabilityServer({
        registry: metrics.registry,
        health: gatedHealth([elasticGate, gate], () => indexer.health()),
        ...config.http,
        logger,
      })
    : undefined;
  const supervisor = new Supervisor(
    [...(observability ? [observability] : []), elasticGate, gate, indexer],
    logger,
  );
  const stopTracing = await startTracing("indexer", { logger });
  await runUntilSignal(supervisor, logger, {
    stopDeadlineMs: 30_000,
    onStarted: () => logger.info({ targets: elasticGate.result.targets }, "indexer started"),
  }).finally(stopTracing);
  await elastic.close();
  return 0;
}
