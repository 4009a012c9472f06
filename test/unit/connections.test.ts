import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveConnections, resolveKafka } from "../../core/connections.ts";
import { ConfigError } from "../../core/errors.ts";

function localServicesDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-connections-"));
  writeFileSync(
    join(dir, "connections.json"),
    JSON.stringify({
      kafka: { brokers: ["127.0.0.1:19092"] },
      elasticsearch: { url: "http://127.0.0.1:19200", username: "lifeline", password: "local-secret" },
    }),
  );
  return dir;
}

describe("connection settings precedence", () => {
  it("uses the local servers when nothing else is configured", () => {
    const connections = resolveConnections({ env: { LIFELINE_SERVICES_DIR: localServicesDir() } });
    expect(connections.kafka.brokers).toEqual(["127.0.0.1:19092"]);
    expect(connections.elasticsearch.password).toBe("local-secret");
  });

  it("a server named in the environment replaces the local one, credentials included", () => {
    const connections = resolveConnections({
      env: {
        LIFELINE_SERVICES_DIR: localServicesDir(),
        LIFELINE_ES_URL: "https://es.prod:9200",
        LIFELINE_ES_API_KEY: "k",
      },
    });
    expect(connections.elasticsearch).toMatchObject({ url: "https://es.prod:9200", apiKey: "k" });
    expect(connections.elasticsearch.password).toBeUndefined();
    expect(connections.kafka.brokers).toEqual(["127.0.0.1:19092"]);
  });

  it("the config file's section wins over the local servers, and the environment over both", () => {
    const kafka = resolveKafka({
      env: { LIFELINE_SERVICES_DIR: localServicesDir(), LIFELINE_KAFKA_USERNAME: "env-user" },
      fromConfig: {
        kafka: { brokers: ["cfg:9092"], sasl: { mechanism: "plain", username: "u", password: "p" } },
      },
    });
    expect(kafka.brokers).toEqual(["cfg:9092"]);
    expect(kafka.sasl).toEqual({ mechanism: "plain", username: "env-user", password: "p" });
  });

  it("nothing configured at all says how to get a server", () => {
    const empty = mkdtempSync(join(tmpdir(), "lifeline-connections-"));
    expect(() => resolveKafka({ env: { LIFELINE_SERVICES_DIR: empty } })).toThrowError(ConfigError);
    try {
      resolveKafka({ env: { LIFELINE_SERVICES_DIR: empty } });
    } catch (error) {
      expect((error as ConfigError).hint).toContain("lifeline services up");
    }
  });
});
