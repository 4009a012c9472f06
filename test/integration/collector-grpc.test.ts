import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { connect as http2Connect } from "node:http2";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { context, type Span, trace } from "@opentelemetry/api";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-grpc";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { CompressionAlgorithm } from "@opentelemetry/otlp-exporter-base";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { otlpTypes } from "../../collector/otlp-schema.ts";
import { grpcAddress, healthUrl, sendTraces, startCollector } from "../helpers/collector.ts";
import { type ProcessUnderTest, startLifeline, waitForCount } from "../helpers/indexer.ts";
import { privateKafka } from "../helpers/private-kafka.ts";
import { testElastic, uniqueName } from "../helpers/services.ts";

const external = Boolean(process.env.LIFELINE_KAFKA_BROKERS);
const TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const TOKEN = "a-bearer-token-of-the-test-0123456789";

function workspace(name: string) {
  const dir = mkdtempSync(join(tmpdir(), `lifeline-grpc-${name}-`));
  const prefix = uniqueName(`test-${name}`);
  const namespace = prefix.replaceAll("-", "_");
  return {
    dir,
    prefix,
    namespace,
    spans: `lifeline-traces-${namespace}`,
    logs: `lifeline-logs-${namespace}`,
  };
}

/** A self-signed certificate for 127.0.0.1 and localhost (openssl, as an operator would make one). */
function certificate(dir: string): { certFile: string; keyFile: string; ca: Buffer } {
  const certFile = join(dir, "collector.crt");
  const keyFile = join(dir, "collector.key");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    { stdio: "ignore" },
  );
  return { certFile, keyFile, ca: readFileSync(certFile) };
}

/** One unary Export call with raw protobuf bytes, as any OTLP/gRPC client sends it. */
function exportRaw(
  address: string,
  body: Buffer,
  options: { token?: string; ca?: Buffer; compress?: boolean } = {},
): Promise<{ error: ServiceError | null; response?: Buffer }> {
  const client = new Client(
    address,
    options.ca ? credentials.createSsl(options.ca) : credentials.createInsecure(),
    options.compress ? { "grpc.default_compression_algorithm": 2 } : {},
  );
  const metadata = new Metadata();
  if (options.token) metadata.set("authorization", `Bearer ${options.token}`);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      TRACES,
      (bytes: Buffer) => bytes,
      (bytes: Buffer) => bytes,
      body,
      metadata,
      (error, response) => {
        client.close();
        resolve({ error, ...(response ? { response } : {}) });
      },
    );
  });
}

describe("collector: OTLP/gRPC from the official exporter into Kafka and Elasticsearch", () => {
  const elastic = testElastic();
  const running: ProcessUnderTest[] = [];
  afterEach(async () => {
    for (const child of running.splice(0)) await child.stop("SIGKILL");
  });
  afterAll(async () => {
    await elastic.close();
  });
  const launchIndexer = async (ws: ReturnType<typeof workspace>, kafka?: Record<string, unknown>) => {
    const file = join(ws.dir, "indexer.yaml");
    writeFileSync(
      file,
      stringify({
        topicPrefix: ws.prefix,
        groupId: uniqueName("grpc-indexer"),
        namespace: ws.namespace,
        indices: { replicas: 0, mode: "indices" },
        ...(kafka ? { kafka } : {}),
      }),
    );
    const indexer = startLifeline(["indexer", "--config", file], "indexer started");
    running.push(indexer);
    await indexer.started;
  };

  it("traces and logs over TLS with a bearer token land with their ids and attributes; no token, no data", async () => {
    const ws = workspace("grpc");
    const tls = certificate(ws.dir);
    const collector = await startCollector(ws.dir, {
      topicPrefix: ws.prefix,
      tls: { certFile: tls.certFile, keyFile: tls.keyFile },
      auth: { bearerToken: TOKEN },
    });
    running.push(collector);
    const address = grpcAddress(collector);
    const metadata = new Metadata();
    metadata.set("authorization", `Bearer ${TOKEN}`);
    const exporterOptions = {
      url: `https://${address}`,
      credentials: credentials.createSsl(tls.ca),
      metadata,
      compression: CompressionAlgorithm.GZIP,
    };
    const sent = await sendTraces(new OTLPTraceExporter(exporterOptions), "checkout", 50);
    expect(sent).toHaveLength(150);

    const logSpan = trace.wrapSpanContext((sent[0] as ReadableSpan).spanContext());
    const provider = new LoggerProvider({
      resource: resourceFromAttributes({ "service.name": "checkout" }),
      processors: [
        new BatchLogRecordProcessor({
          exporter: new OTLPLogExporter(exporterOptions),
          maxExportBatchSize: 20,
        }),
      ],
    });
    const logger = provider.getLogger("collector-grpc-test");
    for (let i = 0; i < 30; i++) {
      logger.emit({
        body: `grpc record ${i}`,
        severityNumber: 13,
        severityText: "WARN",
        attributes: { "order.id": i },
        context: trace.setSpan(context.active(), logSpan as Span),
      });
    }
    await provider.forceFlush();
    await provider.shutdown();

    // Refused without the token, with a wrong one, and in plaintext: nothing of these reaches Kafka.
    const body = Buffer.from(ProtobufTraceSerializer.serializeRequest(sent.slice(0, 3)) as Uint8Array);
    expect((await exportRaw(address, body, { ca: tls.ca })).error?.code).toBe(status.UNAUTHENTICATED);
    expect((await exportRaw(address, body, { ca: tls.ca, token: `${TOKEN}x` })).error?.code).toBe(
      status.UNAUTHENTICATED,
    );
    expect((await exportRaw(address, body, { token: TOKEN })).error?.code).toBe(status.UNAVAILABLE);
    // The OTLP/HTTP receiver takes the same TLS and token.
    const httpStatus = (token?: string) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(`${collector.url.replace("http:", "https:")}/v1/traces`);
        const request = httpsRequest(
          url,
          {
            method: "POST",
            ca: tls.ca,
            headers: {
              "content-type": "application/x-protobuf",
              ...(token ? { authorization: `Bearer ${token}` } : {}),
            },
          },
          (response) => {
            response.resume();
            resolve(response.statusCode ?? 0);
          },
        );
        request.on("error", reject);
        request.end(Buffer.from(ProtobufTraceSerializer.serializeRequest([]) as Uint8Array));
      });
    expect(await httpStatus()).toBe(401);
    expect(await httpStatus(TOKEN)).toBe(200);

    await launchIndexer(ws);
    await waitForCount(elastic, ws.spans, 150);
    await waitForCount(elastic, ws.logs, 30);
    const spans = await elastic.search<{
      span: { id: string; name: string };
      parent?: { id: string };
      trace: { id: string };
      event: { outcome: string };
      service: { name: string };
      lifeline?: { attributes?: Record<string, unknown> };
    }>({ index: ws.spans, size: 1000, track_total_hits: true });
    expect((spans.hits.total as { value: number }).value).toBe(150);
    const byId = new Map(spans.hits.hits.map((hit) => [hit._source?.span.id, hit._source]));
    for (const span of sent) {
      const stored = byId.get(span.spanContext().spanId);
      expect(stored?.trace.id).toBe(span.spanContext().traceId);
      expect(stored?.span.name).toBe(span.name);
      expect(stored?.parent?.id).toBe(span.parentSpanContext?.spanId);
      expect(stored?.event.outcome).toBe(span.status.code === 2 ? "failure" : "unknown");
      expect(stored?.service.name).toBe("checkout");
    }
    const root = spans.hits.hits.find((hit) => hit._source?.span.name === "GET /orders/7")?._source;
    expect(JSON.stringify(root)).toContain("/orders/:id");
    const logs = await elastic.search<{ message: string; trace: { id: string }; log: { level: string } }>({
      index: ws.logs,
      size: 100,
      query: { term: { "trace.id": sent[0]?.spanContext().traceId as string } },
    });
    expect(logs.hits.hits.map((hit) => hit._source?.message).sort()).toEqual(
      Array.from({ length: 30 }, (_, i) => `grpc record ${i}`).sort(),
    );
    expect(new Set(logs.hits.hits.map((hit) => hit._source?.log.level))).toEqual(new Set(["warn"]));
    expect(collector.process.exitCode).toBeNull();
  });

  it("bad messages get INVALID_ARGUMENT, oversize RESOURCE_EXHAUSTED, and the collector keeps serving", async () => {
    const ws = workspace("grpcbad");
    const collector = await startCollector(ws.dir, {
      topicPrefix: ws.prefix,
      limits: { maxRequestBytes: 1 << 20 },
    });
    running.push(collector);
    const address = grpcAddress(collector);
    const garbage = await exportRaw(address, Buffer.from([0x0a, 0xff, 0xff, 0xff]));
    expect(garbage.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(garbage.error?.details).toMatch(/not an OTLP protobuf/);
    const large = await exportRaw(address, Buffer.alloc(2 << 20, 0x20));
    expect(large.error?.code).toBe(status.RESOURCE_EXHAUSTED);
    // One span with a broken trace id among good ones: partial success, as over HTTP.
    const good = (i: number) => ({
      traceId: Buffer.from("5b8efff798038103d269b633813fc60c", "hex"),
      spanId: Buffer.from(`eee19b7ec3c1b17${i}`, "hex"),
      name: `good ${i}`,
      kind: 2,
      startTimeUnixNano: 1795756800000000000n,
      endTimeUnixNano: 1795756800250000000n,
    });
    const request = otlpTypes.traceRequest.encode(
      otlpTypes.traceRequest.fromObject({
        resourceSpans: [
          {
            resource: { attributes: [{ key: "service.name", value: { stringValue: "api" } }] },
            scopeSpans: [{ spans: [good(1), { ...good(2), traceId: Buffer.from("abc", "utf8") }, good(3)] }],
          },
        ],
      }),
    );
    const partial = await exportRaw(address, Buffer.from(request.finish()), { compress: true });
    expect(partial.error).toBeNull();
    expect(
      otlpTypes.traceResponse.toObject(otlpTypes.traceResponse.decode(partial.response as Buffer)),
    ).toEqual({
      partialSuccess: {
        rejectedSpans: expect.anything(),
        errorMessage: 'span "good 2" has an invalid trace or span id',
      },
    });
    await launchIndexer(ws);
    await waitForCount(elastic, ws.spans, 2);
    const stored = await elastic.search<{ span: { name: string } }>({ index: ws.spans });
    expect(stored.hits.hits.map((hit) => hit._source?.span.name).sort()).toEqual(["good 1", "good 3"]);
    expect(collector.process.exitCode).toBeNull();
  });

  it("advertises a receive window that holds a whole request of the largest size, per call and per connection", async () => {
    // Node's HTTP/2 default is 64 KiB: a client then waits for a WINDOW_UPDATE every 64 KiB of an export.
    const ws = workspace("grpcwindow");
    const collector = await startCollector(ws.dir, {
      topicPrefix: ws.prefix,
      limits: { maxRequestBytes: 3 << 20 },
    });
    running.push(collector);
    const session = http2Connect(`http://${grpcAddress(collector)}`);
    try {
      const [settings] = (await once(session, "remoteSettings")) as [{ initialWindowSize?: number }];
      expect(settings.initialWindowSize).toBe(3 << 20);
      // The connection's WINDOW_UPDATE follows the server's SETTINGS; a ping answered comes after both.
      await new Promise<void>((resolve, reject) =>
        session.ping((error) => (error ? reject(error) : resolve())),
      );
      expect(session.state.remoteWindowSize).toBe(3 << 20);
    } finally {
      session.close();
    }
  });

  describe.skipIf(external)("with Kafka stopped during ingest", () => {
    const broker = privateKafka(29892);

    it("calls get UNAVAILABLE with RetryInfo; after Kafka returns every span is in Elasticsearch exactly once", async ({
      onTestFinished,
    }) => {
      onTestFinished(() => broker.stop());
      await broker.start();
      const ws = workspace("grpcoutage");
      const collector = await startCollector(ws.dir, {
        topicPrefix: ws.prefix,
        kafka: { brokers: broker.brokers },
        limits: { ackTimeoutMs: 3_000 },
      });
      running.push(collector);
      const address = grpcAddress(collector);
      const spans = await sendTraces(new InMemorySpanExporter(), "checkout", 300);
      const batches: ReadableSpan[][] = [];
      for (let i = 0; i < spans.length; i += 60) batches.push(spans.slice(i, i + 60));
      const refusals: number[] = [];
      // A client as the OTLP specification asks for: retry UNAVAILABLE / RESOURCE_EXHAUSTED after RetryInfo.
      const send = async (batch: ReadableSpan[]) => {
        const body = Buffer.from(ProtobufTraceSerializer.serializeRequest(batch) as Uint8Array);
        for (;;) {
          const { error } = await exportRaw(address, body);
          if (!error) return;
          expect([status.UNAVAILABLE, status.RESOURCE_EXHAUSTED]).toContain(error.code);
          refusals.push(error.code);
          const details = error.metadata.get("grpc-status-details-bin")[0] as Buffer;
          const rpc = otlpTypes.status.decode(details) as unknown as {
            code: number;
            details: Array<{ typeUrl: string; value: Uint8Array }>;
          };
          expect(rpc.code).toBe(error.code);
          const retry = rpc.details.find((d) => d.typeUrl === "type.googleapis.com/google.rpc.RetryInfo");
          const delay = otlpTypes.retryInfo.toObject(otlpTypes.retryInfo.decode(retry?.value as Uint8Array), {
            longs: Number,
          }) as { retryDelay: { seconds: number } };
          expect(delay.retryDelay.seconds).toBeGreaterThan(0);
          await new Promise((resolve) => setTimeout(resolve, delay.retryDelay.seconds * 1000));
        }
      };
      const half = Math.floor(batches.length / 2);
      for (const batch of batches.slice(0, half)) await send(batch);
      expect(refusals).toHaveLength(0);

      await broker.stop();
      const during = Promise.all(batches.slice(half).map(send));
      const health = healthUrl(collector);
      const outageDeadline = Date.now() + 60_000;
      while (!(refusals.length > 0 && (await fetch(health)).status === 503)) {
        if (Date.now() > outageDeadline) throw new Error(`no refusal while Kafka was down: ${refusals}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      await broker.start();
      await during;
      expect(refusals.length).toBeGreaterThan(0);

      await launchIndexer(ws, { brokers: broker.brokers });
      await waitForCount(elastic, ws.spans, spans.length);
      await elastic.indices.refresh({ index: ws.spans });
      const stored = await elastic.search<{ span: { id: string } }>({
        index: ws.spans,
        size: 10_000,
        _source: ["span.id"],
        track_total_hits: true,
      });
      expect((stored.hits.total as { value: number }).value).toBe(spans.length);
      expect(stored.hits.hits.map((hit) => hit._source?.span.id as string).sort()).toEqual(
        spans.map((span) => span.spanContext().spanId).sort(),
      );
      expect(collector.process.exitCode).toBeNull();
    }, 300_000);
  });
});
