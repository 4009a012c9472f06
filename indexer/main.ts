import { parseArgs } from "node:util";
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

export const indexerHelp = `Usage: lifeline indexer [--config FILE] [setup]

Consumes <prefix>.logs, <prefix>.lifecycle and <prefix>.spans with one consumer group and writes ECS documents
to Elasticsearch (data streams logs-lifeline.logs-<ns>, logs-lifeline.lifecycle-<ns>, traces-lifeline-<ns>).
Records Elasticsearch refuses go to <prefix>.dead-letter with the reason. Run more instances to scale.

  setup           create or update the index templates and exit (also done at every start)

Options:
  --config FILE   indexer YAML config, all keys optional (indexer/indexer.example.yaml)
  --validate      check the config and exit

Environment: LIFELINE_KAFKA_*, LIFELINE_ES_* (see \`lifeline services --help\`), LIFELINE_LOG_LEVEL.
`;

export async function runIndexer(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string" },
      validate: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(indexerHelp);
    return 0;
  }
  const config = loadIndexerConfig(values.config);
  if (values.validate) {
    process.stdout.write(`${values.config ?? "(defaults)"}: valid indexer config\n`);
    return 0;
  }
  const logger = createLogger("indexer");
  const { elastic, elasticSettings, layout } = await prepareIndices(config, logger);
  if (positionals[0] === "setup") {
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
