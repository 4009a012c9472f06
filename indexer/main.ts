import { resolveElastic, resolveKafka } from "../core/connections.ts";
import { createElastic } from "../core/elastic/client.ts";
import { createKafka } from "../core/kafka/client.ts";
import { ensureTopics } from "../core/kafka/topics.ts";
import { runUntilSignal, Supervisor } from "../core/lifecycle.ts";
import { createLogger } from "../core/logger.ts";
import { ObservabilityServer } from "../core/observability/http.ts";
import { startTracing } from "../core/observability/tracing.ts";
import { type IndexerConfig, loadIndexerConfig } from "./config.ts";
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
  const { elastic, elasticSettings, layout } = await prepareIndices(config, logger);
  if (values.setup) {
    process.stdout.write(
      `index templates ready: ${Object.values(layout.targets).join(", ")}${layout.dataStreams ? " (data streams)" : " (plain indices)"}\n`,
    );
    await elastic.close();
    return 0;
  }
  const kafkaSettings = resolveKafka({ fromConfig: config.kafka ? { kafka: config.kafka } : {} });
  const kafka = createKafka({ ...kafkaSettings, clientId: "lifeline-indexer" }, logger);
  const metrics = createIndexerMetrics();
  const indexer = new Indexer({ config, kafka, elastic, elasticSettings, logger, metrics, layout });
  await ensureTopics(kafka, indexer.topicNames);
  const observability = config.http
    ? new ObservabilityServer({
        registry: metrics.registry,
        health: () => indexer.health(),
        ...config.http,
        logger,
      })
    : undefined;
  const supervisor = new Supervisor([...(observability ? [observability] : []), indexer], logger);
  const stopTracing = await startTracing("indexer", { logger });
  await runUntilSignal(supervisor, logger, {
    stopDeadlineMs: 30_000,
    onStarted: () => logger.info({ targets: layout.targets }, "indexer started"),
  }).finally(stopTracing);
  await elastic.close();
  return 0;
}

async function prepareIndices(config: IndexerConfig, logger: ReturnType<typeof createLogger>) {
  const elasticSettings = resolveElastic({
    fromConfig: config.elasticsearch ? { elasticsearch: config.elasticsearch } : {},
  });
  const elastic = createElastic(elasticSettings);
  const layout = await setupIndices(
    elastic,
    {
      namespace: config.namespace,
      retention: config.indices.retention,
      replicas: config.indices.replicas,
      mode: config.indices.mode,
    },
    logger,
  );
  return { elastic, elasticSettings, layout };
}
