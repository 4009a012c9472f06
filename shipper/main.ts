import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { resolveKafka } from "../core/connections.ts";
import { runInstall } from "../core/install.ts";
import { createKafka } from "../core/kafka/client.ts";
import { ensureTopics } from "../core/kafka/topics.ts";
import { runUntilSignal, Supervisor } from "../core/lifecycle.ts";
import { createLogger } from "../core/logger.ts";
import { ObservabilityServer } from "../core/observability/http.ts";
import { startTracing } from "../core/observability/tracing.ts";
import { loadShipperConfig } from "./config.ts";
import { createShipperMetrics } from "./metrics.ts";
import { Shipper } from "./shipper.ts";

export const shipperHelp = `Usage: lifeline shipper --config FILE
       lifeline shipper install --config FILE [--out DIR] [--platform linux|windows] [--install] (--help for more)

Tails the files the config's inputs name into Kafka (topics <prefix>.logs and <prefix>.lifecycle).
Offsets are saved only after Kafka acknowledged the lines; SIGTERM/SIGINT flushes and saves them.

Options:
  --config FILE   shipper YAML config, every key explained in shipper/shipper.example.yaml
  --validate      check the config and exit

Environment: LIFELINE_KAFKA_* (see \`lifeline services --help\`), LIFELINE_HOST_NAME, LIFELINE_LOG_LEVEL.
`;

export async function runShipper(argv: string[]): Promise<number> {
  if (argv[0] === "install") return runInstall("shipper", argv.slice(1), (file) => loadShipperConfig(file));
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      validate: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || !values.config) {
    process.stdout.write(shipperHelp);
    return values.help ? 0 : 2;
  }
  const config = loadShipperConfig(values.config);
  if (values.validate) {
    process.stdout.write(`${values.config}: valid shipper config (${config.inputs.length} inputs)\n`);
    return 0;
  }
  // Old space grows to 1.5 times what survives a full collection, not V8's up to four times: with a thousand files
  // written ten times a second the heap grew to 90 MiB with 30 MiB alive. Peak RSS there: about 210 MiB with
  // V8's default, 131-142 with this; the price is up to a tenth of the speed with 100 files (bench:shipper).
  // A --heap-growing-percent given to node wins.
  if (!process.execArgv.some((arg) => arg.startsWith("--heap-growing-percent"))) {
    setFlagsFromString("--heap-growing-percent=50");
  }
  // V8 moves an allocation site to old space once most of its objects outlive a young collection. In some runs a
  // burst of records caught by one made every later record old, and the lines they point to with them (3,000,000
  // lines from 1,000 files: 435 MiB promoted instead of about 60, a full collection every 0.3 s instead of 1 s).
  setFlagsFromString("--no-allocation-site-pretenuring");
  const logger = createLogger("shipper");
  const kafkaSettings = resolveKafka({ fromConfig: config.kafka ? { kafka: config.kafka } : {} });
  const kafka = createKafka({ ...kafkaSettings, clientId: `lifeline-shipper-${config.host.name}` }, logger);
  const metrics = createShipperMetrics();
  const shipper = new Shipper({ config, kafka, logger, metrics });
  await ensureTopics(kafka, shipper.topics);
  const components = [shipper];
  const observability = config.http
    ? new ObservabilityServer({
        registry: metrics.registry,
        health: () => shipper.health(),
        ...config.http,
        logger,
      })
    : undefined;
  const supervisor = new Supervisor(observability ? [observability, ...components] : components, logger);
  const stopTracing = await startTracing("shipper", { hostName: config.host.name, logger });
  await runUntilSignal(supervisor, logger, { stopDeadlineMs: 30_000 }).finally(stopTracing);
  return 0;
}
