import { setFlagsFromString } from "node:v8";
import { resolveKafka } from "../core/connections.ts";
import { limitHeapGrowth } from "../core/heap.ts";
import { createKafka } from "../core/kafka/client.ts";
import { kafkaGate } from "../core/kafka/gate.ts";
import { runUntilSignal, Supervisor } from "../core/lifecycle.ts";
import { createLogger } from "../core/logger.ts";
import { ObservabilityServer } from "../core/observability/http.ts";
import { startTracing } from "../core/observability/tracing.ts";
import { gatedHealth, settingSource } from "../core/startup.ts";
import { loadShipperConfig } from "./config.ts";
import { createShipperMetrics } from "./metrics.ts";
import { createShipper } from "./shipper.ts";

export async function runShipper(values: { config: string; validate: boolean }): Promise<number> {
  const config = loadShipperConfig(values.config);
  if (values.validate) {
    process.stdout.write(`${values.config}: valid shipper config (${config.inputs.length} inputs)\n`);
    return 0;
  }
  limitHeapGrowth();
  // V8 moves an allocation site to old space once most of its objects outlive a young collection. In some runs a
  // burst of records caught by one made every later record old, and the lines they point to with them: several
  // times the memory promoted, and full collections three times as often (bench/tuning.md).
  setFlagsFromString("--no-allocation-site-pretenuring");
  const logger = createLogger("shipper");
  const kafkaSettings = resolveKafka({ fromConfig: config.kafka ? { kafka: config.kafka } : {} });
  const kafka = createKafka({ ...kafkaSettings, clientId: `lifeline-shipper-${config.host.name}` }, logger);
  const metrics = createShipperMetrics();
  const { shipper, components: shipping } = createShipper({ config, kafka, logger, metrics });
  const gate = kafkaGate({
    kafka,
    settings: kafkaSettings,
    topics: shipper.topics,
    setting: settingSource("kafka", { configFile: values.config, inConfig: config.kafka !== undefined }),
    logger,
  });
  const components = [gate, ...shipping];
  const observability = config.http
    ? new ObservabilityServer({
        registry: metrics.registry,
        health: gatedHealth([gate], () => shipper.health()),
        ...config.http,
        logger,
      })
    : undefined;
  const supervisor = new Supervisor(observability ? [observability, ...components] : components, logger);
  const stopTracing = await startTracing("shipper", { hostName: config.host.name, logger });
  await runUntilSignal(supervisor, logger, { stopDeadlineMs: 30_000 }).finally(stopTracing);
  return 0;
}
