import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { generateSigningKeys } from "../core/commands.ts";

const serviceScript = fileURLToPath(new URL("./services/demo-service.mjs", import.meta.url));

/** The three simulated hosts, one service each, in dependency order: ledger ← api ← worker. */
export const DEMO_HOSTS = [
  { host: "demo-db-1", service: "ledger", stop: "slow", gracePeriodMs: 6_000, dependsOn: [] },
  { host: "demo-app-1", service: "api", stop: "graceful", gracePeriodMs: 6_000, dependsOn: ["ledger"] },
  { host: "demo-worker-1", service: "worker", stop: "stubborn", gracePeriodMs: 2_000, dependsOn: ["api"] },
] as const;

export const CONTROLLER_KEY_ID = "demo-controller";

export interface DemoHost {
  host: string;
  service: string;
  port: number;
  agentConfig: string;
  shipperConfig: string;
  stateDir: string;
  serviceLog: string;
}

export interface DemoWorkspace {
  dir: string;
  topicPrefix: string;
  namespace: string;
  keyFile: string;
  collectorConfig: string;
  collectorPort: number;
  indexerConfig: string;
  hosts: DemoHost[];
  plan: (action: "start" | "restart") => string;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function write(file: string, header: string, content: unknown): string {
  writeFileSync(file, `# ${header}\n${stringify(content)}`);
  return file;
}

/**
 * Writes every config the demo runs with (the same files a real host would have): a controller key pair,
 * collector and indexer configs, per host an agent and a shipper config, and the rollout plans.
 */
export async function writeDemoWorkspace(dir: string, runId: string): Promise<DemoWorkspace> {
  const topicPrefix = `lifeline-demo-${runId}`;
  const namespace = "demo";
  const keys = generateSigningKeys();
  mkdirSync(join(dir, "logs"), { recursive: true });
  const keyFile = join(dir, "controller.key");
  writeFileSync(keyFile, keys.privateKeyPem, { mode: 0o600 });

  const collectorPort = await freePort();
  const collectorConfig = write(join(dir, "collector.yaml"), "lifeline collector --config collector.yaml", {
    topicPrefix,
    listen: { host: "127.0.0.1", port: collectorPort },
    grpc: { port: 0 },
    http: { port: 0 },
  });
  const indexerConfig = write(join(dir, "indexer.yaml"), "lifeline indexer --config indexer.yaml", {
    topicPrefix,
    groupId: `${topicPrefix}-indexer`,
    namespace,
    // One local Elasticsearch node: replicas could never be assigned.
    indices: { replicas: 0 },
  });

  const hosts: DemoHost[] = [];
  for (const spec of DEMO_HOSTS) {
    const hostDir = join(dir, spec.host);
    const stateDir = join(hostDir, "agent-state");
    const serviceLog = join(hostDir, "logs", `${spec.service}.log`);
    mkdirSync(join(hostDir, "logs"), { recursive: true });
    const port = await freePort();
    const agentConfig = write(join(hostDir, "agent.yaml"), "lifeline agent --config agent.yaml", {
      host: { name: spec.host, groups: ["demo"] },
      stateDir,
      topicPrefix,
      trustedKeys: [{ id: CONTROLLER_KEY_ID, publicKey: keys.publicKeyPem }],
      heartbeatIntervalMs: 5_000,
      services: [
        {
          name: spec.service,
          command: [process.execPath, serviceScript],
          env: { PORT: String(port), DEMO_SERVICE: spec.service, DEMO_STOP: spec.stop },
          logFile: serviceLog,
          port,
          gracePeriodMs: spec.gracePeriodMs,
          health: { http: { url: `http://127.0.0.1:${port}/health` }, periodMs: 100 },
        },
      ],
    });
    const shipperConfig = write(join(hostDir, "shipper.yaml"), "lifeline shipper --config shipper.yaml", {
      host: { name: spec.host },
      checkpointDir: join(hostDir, "shipper-state"),
      topicPrefix,
      reconcileIntervalMs: 500,
      limits: { lingerMs: 5 },
      inputs: [
        { name: "agent-journal", kind: "lifecycle", paths: [join(stateDir, "journal.ndjson")] },
        { name: spec.service, paths: [serviceLog], service: { name: spec.service } },
      ],
    });
    hosts.push({
      host: spec.host,
      service: spec.service,
      port,
      agentConfig,
      shipperConfig,
      stateDir,
      serviceLog,
    });
  }

  const plan = (action: "start" | "restart") =>
    write(
      join(dir, `${action}.yaml`),
      `lifeline rollout --plan ${action}.yaml --key controller.key --key-id ${CONTROLLER_KEY_ID}`,
      {
        name: `demo-${action}`,
        action,
        // No fleet file: the fleet is the agents whose heartbeat is on the lifecycle topic.
        targets: { groups: ["demo"] },
        services: DEMO_HOSTS.map((h) => ({ name: h.service, dependsOn: [...h.dependsOn] })),
        waves: { soakMs: 500 },
        deadlines: { deliveryMs: 15_000, executionMs: 30_000 },
      },
    );
  return {
    dir,
    topicPrefix,
    namespace,
    keyFile,
    collectorConfig,
    collectorPort,
    indexerConfig,
    hosts,
    plan,
  };
}
