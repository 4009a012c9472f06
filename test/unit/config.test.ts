import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { collectorConfigSchema } from "../../collector/config.ts";
import { loadConfigFile, parseConfig } from "../../core/config.ts";
import { connectionEnvOverrides, connectionsSchema } from "../../core/connections.ts";
import { ConfigError } from "../../core/errors.ts";

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/config/${name}`, import.meta.url));
const load = (name: string, env: NodeJS.ProcessEnv = {}) =>
  loadConfigFile(fixture(name), connectionsSchema, { env, overrides: connectionEnvOverrides });

function errorOf(action: () => unknown): ConfigError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("config loading", () => {
  it("reads a valid file and fills in defaults", () => {
    const config = load("valid.yaml");
    expect(config.kafka.brokers).toEqual(["kafka-1:9092", "kafka-2:9092"]);
    expect(config.kafka.clientId).toBe("lifeline");
    expect(config.kafka.connectionTimeoutMs).toBe(3_000);
    expect(config.elasticsearch.apiKey).toBe("aWQ6a2V5");
  });

  it("an unknown key names the file, the key and the likely intended key", () => {
    const error = errorOf(() => load("unknown-key.yaml"));
    expect(error.message).toContain(fixture("unknown-key.yaml"));
    expect(error.message).toContain('kafka.brokres: unknown key (did you mean "brokers"?)');
  });

  it("an unknown nested key names its full path", () => {
    const error = errorOf(() => load("unknown-nested-key.yaml"));
    expect(error.message).toContain('kafka.sasl.pasword: unknown key (did you mean "password"?)');
  });

  it("wrong types are reported per key, all at once", () => {
    const error = errorOf(() => load("wrong-type.yaml"));
    expect(error.message).toMatch(/kafka\.brokers: .*array/i);
    expect(error.message).toMatch(/elasticsearch\.url: /);
  });

  it("a timeout no timer can hold is refused, naming the key (a longer setTimeout fires after 1 ms)", () => {
    const error = errorOf(() =>
      parseConfig(
        "limits: { ackTimeoutMs: 2147483648 }\nkafka: { requestTimeoutMs: 3000000000 }\n",
        "c.yaml",
        collectorConfigSchema,
      ),
    );
    expect(error.message).toContain("limits.ackTimeoutMs: at most 2147483647 ms");
    expect(error.message).toContain("kafka.requestTimeoutMs: at most 2147483647 ms");
    expect(
      parseConfig("limits: { ackTimeoutMs: 2147483647 }\n", "c.yaml", collectorConfigSchema).limits
        .ackTimeoutMs,
    ).toBe(2_147_483_647);
  });

  it("broken YAML names the file", () => {
    const error = errorOf(() => load("bad-yaml.yaml"));
    expect(error.code).toBe("config.bad_yaml");
    expect(error.message).toContain(fixture("bad-yaml.yaml"));
  });

  it("cross-field rules: basic auth and an API key together are refused", () => {
    const error = errorOf(() => load("both-auth.yaml"));
    expect(error.message).toContain("set either username/password or apiKey, not both");
  });

  it("a missing file is a ConfigError naming it", () => {
    const error = errorOf(() => load("no-such-file.yaml"));
    expect(error.code).toBe("config.unreadable");
    expect(error.message).toContain("no-such-file.yaml");
  });

  it("environment variables override the file", () => {
    const config = load("valid.yaml", {
      LIFELINE_KAFKA_BROKERS: "a:1, b:2",
      LIFELINE_KAFKA_PASSWORD: "from-env",
      LIFELINE_ES_URL: "http://es:9200",
      LIFELINE_ES_TLS_VERIFY: "false",
    });
    expect(config.kafka.brokers).toEqual(["a:1", "b:2"]);
    expect(config.kafka.sasl?.password).toBe("from-env");
    expect(config.elasticsearch.url).toBe("http://es:9200");
    expect(config.elasticsearch.tls?.rejectUnauthorized).toBe(false);
  });

  it("a malformed environment value names the variable", () => {
    const error = errorOf(() => load("valid.yaml", { LIFELINE_KAFKA_TLS: "maybe" }));
    expect(error.message).toContain("LIFELINE_KAFKA_TLS");
  });
});

describe("one environment for every component (docker compose gives each the same LIFELINE_* variables)", () => {
  it("components without Elasticsearch load their configs with LIFELINE_ES_* set, and take LIFELINE_KAFKA_*", async () => {
    const env = {
      LIFELINE_KAFKA_BROKERS: "kafka:9092",
      LIFELINE_ES_URL: "http://elasticsearch:9200",
      LIFELINE_ES_USERNAME: "elastic",
      LIFELINE_ES_PASSWORD: "x",
    };
    const example = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
    const { loadCollectorConfig } = await import("../../collector/config.ts");
    const { loadShipperConfig } = await import("../../shipper/config.ts");
    const { loadIndexerConfig } = await import("../../indexer/config.ts");
    expect(loadCollectorConfig(example("collector/collector.example.yaml"), env).kafka?.brokers).toEqual([
      "kafka:9092",
    ]);
    expect(loadShipperConfig(example("shipper/shipper.example.yaml"), env).kafka?.brokers).toEqual([
      "kafka:9092",
    ]);
    expect(loadIndexerConfig(example("indexer/indexer.example.yaml"), env).elasticsearch?.url).toBe(
      "http://elasticsearch:9200",
    );
  });
});

describe("a secret from a file: NAME_FILE", () => {
  it("reads the value from the file the _FILE variable names; the variable itself wins; an unreadable file is named", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "lifeline-secret-"));
    writeFileSync(join(dir, "password"), "from-file\n");
    const example = fileURLToPath(new URL("../../collector/collector.example.yaml", import.meta.url));
    const { loadCollectorConfig } = await import("../../collector/config.ts");
    const env = {
      LIFELINE_KAFKA_BROKERS: "k:9092",
      LIFELINE_KAFKA_SASL_MECHANISM: "plain",
      LIFELINE_KAFKA_USERNAME: "u",
      LIFELINE_KAFKA_PASSWORD_FILE: join(dir, "password"),
    };
    expect(loadCollectorConfig(example, env).kafka?.sasl?.password).toBe("from-file");
    expect(
      loadCollectorConfig(example, { ...env, LIFELINE_KAFKA_PASSWORD: "direct" }).kafka?.sasl?.password,
    ).toBe("direct");
    const error = errorOf(() =>
      loadCollectorConfig(example, { ...env, LIFELINE_KAFKA_PASSWORD_FILE: join(dir, "missing") }),
    );
    expect(error.message).toContain(`LIFELINE_KAFKA_PASSWORD_FILE: cannot read ${join(dir, "missing")}`);
  });

  it("a config's kafka section has no clientId: each component names itself, a key it would ignore is refused", async () => {
    const { loadShipperConfig } = await import("../../shipper/config.ts");
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const file = join(mkdtempSync(join(tmpdir(), "lifeline-clientid-")), "shipper.yaml");
    writeFileSync(
      file,
      "checkpointDir: /tmp/x\ninputs: [{ name: a, paths: [/tmp/a.log] }]\nkafka: { brokers: [k:9092], clientId: mine }\n",
    );
    expect(errorOf(() => loadShipperConfig(file, {})).message).toContain("kafka.clientId: unknown key");
  });
});
