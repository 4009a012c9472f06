import type { Logger } from "../logger.ts";
import { ServerGate } from "../startup.ts";
import { describeKafka, type KafkaSettings, translateKafkaError } from "./client.ts";
import type { KafkaPort } from "./port.ts";
import { ensureTopics } from "./topics.ts";

/**
 * Waits for Kafka, then makes sure the component's topics exist. The probe asks for the cluster's metadata with a
 * quiet client (kafkajs's own retries would log a dozen lines with stack traces per attempt), then creates the
 * topics with the component's client.
 */
export function kafkaGate(options: {
  kafka: KafkaPort;
  settings: KafkaSettings;
  topics: string[];
  setting: string;
  logger: Logger;
}): ServerGate {
  return new ServerGate({
    server: "Kafka",
    address: options.settings.brokers.join(","),
    setting: options.setting,
    logger: options.logger,
    probe: async () => {
      await describeKafka(options.settings);
      await ensureTopics(options.kafka, options.topics).catch((error: unknown) => {
        throw translateKafkaError(error, options.settings);
      });
    },
  });
}
