import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import { ensureTopics } from "../../core/kafka/topics.ts";
import { topicNames } from "../../core/topics.ts";
import { freePort } from "../helpers/agent.ts";
import { runLifeline } from "../helpers/cli.ts";
import { connections, testKafka, uniqueName } from "../helpers/services.ts";

interface Report {
  checks: Array<{ status: string; subject: string; detail: string }>;
  failed: number;
  warnings: number;
}

async function doctor(file: string, env: NodeJS.ProcessEnv = process.env) {
  const result = await runLifeline(["doctor", file, "--json"], env);
  return { code: result.code, report: JSON.parse(result.stdout) as Report, stderr: result.stderr };
}

const lines = (report: Report) => report.checks.map((c) => `${c.status} ${c.subject} ${c.detail}`);

describe("lifeline doctor", () => {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-doctor-"));
  const { elasticsearch } = connections();

  function indexerConfig(prefix: string, extra: Record<string, unknown> = {}): string {
    const file = join(dir, `${uniqueName("indexer")}.yaml`);
    writeFileSync(
      file,
      stringify({
        topicPrefix: prefix,
        namespace: prefix.replaceAll("-", "_"),
        indices: { mode: "indices", replicas: 0 },
        ...extra,
      }),
    );
    return file;
  }

  it("a healthy setup: every check ok (topics there, rights allowed, templates in place), exit 0", async () => {
    const prefix = uniqueName("test-doctor");
    const file = indexerConfig(prefix);
    await ensureTopics(
      testKafka(),
      ["logs", "lifecycle", "spans", "metrics", "dead-letter"].map((kind) => `${prefix}.${kind}`),
    );
    const setup = await runLifeline(["indexer", "setup", "--config", file]);
    expect(setup.code, setup.stderr).toBe(0);
    const { code, report } = await doctor(file);
    expect(code, lines(report).join("\n")).toBe(0);
    expect(report.failed).toBe(0);
    expect(report.warnings).toBe(0);
    const text = lines(report).join("\n");
    expect(text).toContain(
      `ok kafka topic ${topicNames(prefix).logs}: 6 partitions with leaders; READ allowed`,
    );
    expect(text).toContain(
      `ok kafka topic ${topicNames(prefix).deadLetter}: 6 partitions with leaders; WRITE allowed`,
    );
    expect(text).toMatch(/ok elasticsearch .* answers: version 9\./);
    expect(text).toMatch(/ok elasticsearch user \S+ may monitor, manage_index_templates/);
    expect(text).toContain(
      `ok elasticsearch index template lifeline-logs-lifeline-logs-${prefix.replaceAll("-", "_")} exists`,
    );
    // Only the group's rights cannot be told from outside; the doctor says so instead of guessing.
    expect(report.checks.filter((c) => c.status === "?").map((c) => c.subject)).toEqual(["kafka group"]);
  });

  it("missing topics: a warning that the component creates them (the broker allows CREATE), nothing created", async () => {
    const prefix = uniqueName("test-doctor");
    const file = join(dir, "shipper.yaml");
    writeFileSync(
      file,
      stringify({
        host: { name: "doctor-host" },
        topicPrefix: prefix,
        checkpointDir: join(dir, "offsets"),
        inputs: [{ name: "app", kind: "logs", paths: [join(dir, "app.log")] }],
      }),
    );
    const { code, report } = await doctor(file);
    expect(code).toBe(0);
    expect(lines(report)).toContain(
      `WARN kafka topic ${topicNames(prefix).logs}: does not exist; the shipper creates it at start (this principal may CREATE)`,
    );
    const admin = testKafka().admin();
    await admin.connect();
    const topics = await admin.listTopics();
    await admin.disconnect();
    expect(topics.filter((topic) => topic.startsWith(prefix))).toEqual([]);
  });

  it("wrong addresses: each server's FAIL names the address and the variable it came from, exit 1", async () => {
    const file = indexerConfig(uniqueName("test-doctor"));
    const kafkaPort = await freePort();
    const elasticPort = await freePort();
    const { code, report } = await doctor(file, {
      ...process.env,
      LIFELINE_KAFKA_BROKERS: `127.0.0.1:${kafkaPort}`,
      LIFELINE_ES_URL: `http://127.0.0.1:${elasticPort}`,
    });
    expect(code).toBe(1);
    const text = lines(report).join("\n");
    expect(text).toMatch(
      new RegExp(
        `FAIL kafka cannot reach Kafka at 127\\.0\\.0\\.1:${kafkaPort}: .*\\(set by LIFELINE_KAFKA_BROKERS\\)`,
      ),
    );
    expect(text).toMatch(
      new RegExp(
        `FAIL elasticsearch cannot reach Elasticsearch at http://127\\.0\\.0\\.1:${elasticPort}: .*\\(set by LIFELINE_ES_URL\\)`,
      ),
    );
    expect(report.failed).toBe(2);
  });

  const sasl = inject("localServices").kafkaSasl;
  it.skipIf(!sasl || !elasticsearch.username)(
    "wrong credentials: Kafka (SASL, in the config file) and Elasticsearch each say they refused them, exit 1",
    async () => {
      if (!sasl) return;
      const file = indexerConfig(uniqueName("test-doctor"), {
        kafka: {
          brokers: sasl.brokers,
          sasl: { mechanism: "scram-sha-256", username: sasl.username, password: "wrong" },
        },
        elasticsearch: { url: elasticsearch.url, username: elasticsearch.username, password: "wrong" },
      });
      const { code, report } = await doctor(file);
      expect(code).toBe(1);
      const text = lines(report).join("\n");
      expect(text).toContain(`FAIL kafka Kafka at ${sasl.brokers.join(",")} rejected the credentials`);
      expect(text).toContain(`(set by kafka.brokers in ${file})`);
      expect(text).toContain(
        `FAIL elasticsearch Elasticsearch at ${elasticsearch.url} rejected the credentials (401)`,
      );
      expect(text).toContain("LIFELINE_ES_PASSWORD");
    },
  );

  it("a file that is not a component's config is a usage error (exit 2); a broken one a FAIL (exit 1)", async () => {
    const plan = join(dir, "rollout.yaml");
    writeFileSync(plan, "name: x\naction: restart\ntargets: { groups: [a] }\nservices: [{ name: a }]\n");
    const notOne = await runLifeline(["doctor", plan]);
    expect(notOne.code).toBe(2);
    expect(notOne.stderr).toContain("doctor checks agent, shipper, indexer and collector configs");
    const broken = join(dir, "agent.yaml");
    writeFileSync(broken, "host: { name: h }\nservices: [{ name: a, gracePeriodMS: 3 }]\n");
    const result = await runLifeline(["doctor", broken]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^FAIL +config +/m);
  });
});
