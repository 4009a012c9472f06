import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { agentWorkspace, fixture, freePort, writeAgentConfig } from "../helpers/agent.ts";
import { type ProcessUnderTest, startLifeline } from "../helpers/cli.ts";
import { healthUrl } from "../helpers/collector.ts";
import { CuttableProxy } from "../helpers/indexer.ts";
import { connections, uniqueName } from "../helpers/services.ts";

/**
 * Each long-running component started while its server is down (a relay on a port where nothing listens yet, in
 * front of the real Kafka or Elasticsearch): it stays up with /health 503 naming what it waits for, logs one line
 * per attempt with the server, the address and the setting to fix (no kafkajs stack traces), and starts once the
 * relay listens.
 */
const running: ProcessUnderTest[] = [];
const proxies: CuttableProxy[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
  await Promise.all(proxies.splice(0).map((p) => p.cut()));
});

function hostPort(address: string): { host: string; port: number } {
  const url = new URL(address.includes("://") ? address : `tcp://${address}`);
  return { host: url.hostname, port: Number(url.port) };
}

/** A relay to `target` on a port that refuses connections until `open()`. */
async function downServer(target: string) {
  const proxy = new CuttableProxy(hostPort(target));
  proxies.push(proxy);
  const port = await freePort();
  return { port, open: () => proxy.start(port) };
}

async function health(
  component: ProcessUnderTest,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(healthUrl(component));
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function retryLines(output: string, server: string): string[] {
  return output.split("\n").filter((line) => line.includes(`cannot reach ${server} at`));
}

/** The waiting part of the run: the component alive, 503 with what it awaits, one pino line per attempt. */
async function expectWaiting(
  component: ProcessUnderTest,
  server: "Kafka" | "Elasticsearch",
  address: string,
  setting: string,
): Promise<void> {
  await component.started;
  await component.waitForOutput(`cannot reach ${server} at ${address}`, 2, 30_000);
  expect(component.process.exitCode).toBeNull();
  const waiting = await health(component);
  expect(waiting.status).toBe(503);
  expect(waiting.body).toMatchObject({ waitingFor: server, address, setting });
  const lines = retryLines(component.output(), server);
  for (const line of lines) {
    const entry = JSON.parse(line) as { level: number; msg: string; retryInMs: number };
    expect(entry.level).toBe(40);
    expect(entry.msg).toContain(`(set by ${setting}); retrying in`);
  }
  // kafkajs's own retry lines (a dozen per attempt, with stack traces) stay out of it.
  expect(component.output()).not.toContain("KafkaJSConnectionError");
  expect(component.output()).not.toContain('"stack"');
}

async function expectStartsOnceUp(component: ProcessUnderTest, server: string, address: string) {
  await component.waitForOutput(`${server} at ${address} answers: starting`, 1, 60_000);
}

describe("a server down at start", () => {
  const kafka = connections().kafka;
  const elastic = connections().elasticsearch;
  const withKafka = (port: number): NodeJS.ProcessEnv => ({
    ...process.env,
    LIFELINE_KAFKA_BROKERS: `127.0.0.1:${port}`,
  });

  it("shipper: waits for Kafka with 503 and one line per attempt, then starts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeline-down-shipper-"));
    const down = await downServer(kafka.brokers[0] as string);
    const config = join(dir, "shipper.yaml");
    writeFileSync(
      config,
      stringify({
        host: { name: uniqueName("host") },
        topicPrefix: uniqueName("test-down"),
        checkpointDir: join(dir, "offsets"),
        http: { port: 0 },
        inputs: [{ name: "app", kind: "logs", paths: [join(dir, "app.log")] }],
      }),
    );
    const shipper = startLifeline(
      ["shipper", "--config", config],
      "metrics and health endpoint listening",
      withKafka(down.port),
    );
    running.push(shipper);
    const address = `127.0.0.1:${down.port}`;
    await expectWaiting(shipper, "Kafka", address, "LIFELINE_KAFKA_BROKERS");
    await down.open();
    await expectStartsOnceUp(shipper, "Kafka", address);
    await shipper.waitForOutput('"component":"shipper","ms"', 1, 60_000);
    expect((await health(shipper)).status).toBe(200);
  });

  it("agent: waits for Kafka, set in its config file, then runs", async () => {
    const ws = agentWorkspace("down");
    const down = await downServer(kafka.brokers[0] as string);
    const address = `127.0.0.1:${down.port}`;
    const config = writeAgentConfig(
      ws,
      [
        {
          name: "api",
          command: [process.execPath, fixture("well-behaved.mjs")],
          env: { PORT: String(await freePort()) },
        },
      ],
      { http: { port: 0 }, kafka: { brokers: [address] } },
    );
    const { LIFELINE_KAFKA_BROKERS: _broker, ...env } = process.env;
    const agent = startLifeline(["agent", "--config", config], "metrics and health endpoint listening", env);
    running.push(agent);
    await expectWaiting(agent, "Kafka", address, `kafka.brokers in ${config}`);
    await down.open();
    await expectStartsOnceUp(agent, "Kafka", address);
    await agent.waitForOutput('"msg":"agent started"', 1, 60_000);
    expect((await health(agent)).status).toBe(200);
  });

  it("collector: waits for Kafka before it listens, then takes OTLP", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeline-down-collector-"));
    const down = await downServer(kafka.brokers[0] as string);
    const config = join(dir, "collector.yaml");
    writeFileSync(
      config,
      stringify({
        listen: { port: 0 },
        http: { port: 0 },
        grpc: { port: 0 },
        topicPrefix: uniqueName("test-down"),
      }),
    );
    const collector = startLifeline(
      ["collector", "--config", config],
      "metrics and health endpoint listening",
      withKafka(down.port),
    );
    running.push(collector);
    const address = `127.0.0.1:${down.port}`;
    await expectWaiting(collector, "Kafka", address, "LIFELINE_KAFKA_BROKERS");
    await down.open();
    await expectStartsOnceUp(collector, "Kafka", address);
    await collector.waitForOutput('"msg":"collector started"', 1, 60_000);
    const port = /"port":(\d+),"topicPrefix"[^\n]*"msg":"collector started"/.exec(collector.output())?.[1];
    const accepted = await fetch(`http://127.0.0.1:${port}/v1/traces`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ resourceSpans: [] }),
    });
    expect(accepted.status).toBe(200);
    expect((await health(collector)).status).toBe(200);
  });

  it("indexer: waits for Elasticsearch, then for Kafka, then starts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeline-down-indexer-"));
    const downElastic = await downServer(elastic.url);
    const downKafka = await downServer(kafka.brokers[0] as string);
    const esUrl = `http://127.0.0.1:${downElastic.port}`;
    const config = join(dir, "indexer.yaml");
    writeFileSync(
      config,
      stringify({
        topicPrefix: uniqueName("test-down"),
        namespace: uniqueName("down").replaceAll("-", "_"),
        groupId: uniqueName("test-down"),
        http: { port: 0 },
        indices: { mode: "indices", replicas: 0 },
      }),
    );
    const indexer = startLifeline(["indexer", "--config", config], "metrics and health endpoint listening", {
      ...withKafka(downKafka.port),
      LIFELINE_ES_URL: esUrl,
      LIFELINE_ES_USERNAME: elastic.username ?? "",
      LIFELINE_ES_PASSWORD: elastic.password ?? "",
    });
    running.push(indexer);
    await expectWaiting(indexer, "Elasticsearch", esUrl, "LIFELINE_ES_URL");
    expect(retryLines(indexer.output(), "Kafka")).toEqual([]);
    await downElastic.open();
    await expectStartsOnceUp(indexer, "Elasticsearch", esUrl);
    const kafkaAddress = `127.0.0.1:${downKafka.port}`;
    await indexer.waitForOutput(`cannot reach Kafka at ${kafkaAddress}`, 1, 30_000);
    const waiting = await health(indexer);
    expect(waiting.status).toBe(503);
    expect(waiting.body).toMatchObject({ waitingFor: "Kafka", address: kafkaAddress });
    await downKafka.open();
    await expectStartsOnceUp(indexer, "Kafka", kafkaAddress);
    await indexer.waitForOutput('"msg":"indexer started"', 1, 60_000);
    expect((await health(indexer)).status).toBe(200);
  });
});
