import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runningKafkaPid, startKafka, waitForKafka } from "../../local-services/kafka.ts";
import { stopProcess } from "../../local-services/process.ts";
import { localServicesSettings } from "../../local-services/settings.ts";

/**
 * A broker of one test's own (same code as `lifeline services up`) on ports from `basePort`, so stopping it
 * disturbs no other test. Each test file that uses one picks its own base port.
 */
export function privateKafka(basePort: number) {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-private-kafka-"));
  chmodSync(dir, 0o755);
  const settings = localServicesSettings({
    ...process.env,
    LIFELINE_SERVICES_DIR: dir,
    LIFELINE_SERVICES_KAFKA_PORT: String(basePort),
    LIFELINE_SERVICES_KAFKA_CONTROLLER_PORT: String(basePort + 1),
    LIFELINE_SERVICES_KAFKA_SASL_PORT: String(basePort + 2),
    LIFELINE_SERVICES_KAFKA_HEAP_MB: "256",
  });
  const credentials = { username: "lifeline", password: "private-test" };
  return {
    settings,
    brokers: [`127.0.0.1:${settings.kafka.port}`],
    async start(): Promise<void> {
      await startKafka(settings, credentials, () => {});
      await waitForKafka(settings, 120_000);
    },
    async stop(): Promise<void> {
      const pid = runningKafkaPid(settings);
      if (pid) await stopProcess(pid, 30_000);
    },
  };
}
