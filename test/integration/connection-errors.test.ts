import { createServer } from "node:net";
import { describe, expect, inject, it } from "vitest";
import { describeElastic } from "../../core/elastic/client.ts";
import { ConfigError, RetryableError } from "../../core/errors.ts";
import { describeKafka } from "../../core/kafka/client.ts";
import { connections } from "../helpers/services.ts";

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("connection errors say what is wrong", () => {
  it("elasticsearch: wrong credentials are a ConfigError naming the server and the settings to check", async () => {
    const elastic = connections().elasticsearch;
    const error = await describeElastic({
      ...elastic,
      username: "lifeline",
      password: "wrong",
      apiKey: undefined,
    }).catch((e: unknown) => e);
    if (!elastic.username && !elastic.apiKey) return; // an unsecured external cluster accepts anyone
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe("elasticsearch.auth_failed");
    expect((error as ConfigError).message).toContain(elastic.url);
    expect((error as ConfigError).hint).toContain("LIFELINE_ES_PASSWORD");
  });

  it("elasticsearch: an unreachable server is a RetryableError that says how to start one", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const error = await describeElastic({ url, requestTimeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).code).toBe("elasticsearch.unreachable");
    expect((error as RetryableError).message).toContain(url);
    expect((error as RetryableError).hint).toContain("lifeline services up");
  });

  it("kafka: an unreachable broker is a RetryableError", async () => {
    const broker = `127.0.0.1:${await closedPort()}`;
    const error = await describeKafka({
      brokers: [broker],
      clientId: "test",
      connectionTimeoutMs: 1_000,
      requestTimeoutMs: 2_000,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).code).toBe("kafka.unreachable");
    expect((error as RetryableError).message).toContain(broker);
  });

  const sasl = inject("localServices").kafkaSasl;
  describe.skipIf(!sasl)("kafka SASL listener of the local broker", () => {
    const base = { clientId: "test", connectionTimeoutMs: 3_000, requestTimeoutMs: 10_000 };
    for (const mechanism of ["plain", "scram-sha-256", "scram-sha-512"] as const) {
      it(`${mechanism}: the right password gets metadata, a wrong one is a ConfigError`, async () => {
        if (!sasl) return;
        const good = await describeKafka({ ...base, brokers: sasl.brokers, sasl: { mechanism, ...sasl } });
        expect(good.brokers.length).toBeGreaterThan(0);
        const error = await describeKafka({
          ...base,
          brokers: sasl.brokers,
          sasl: { mechanism, username: sasl.username, password: "wrong" },
        }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as ConfigError).code).toBe("kafka.auth_failed");
        expect((error as ConfigError).hint).toContain("LIFELINE_KAFKA_PASSWORD");
      });
    }
  });
});
