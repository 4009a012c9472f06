import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { OTLPMetricExporter as OTLPMetricExporterGrpc } from "@opentelemetry/exporter-metrics-otlp-grpc";
import { OTLPMetricExporter as OTLPMetricExporterProto } from "@opentelemetry/exporter-metrics-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  MeterProvider,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from "@opentelemetry/sdk-metrics";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { otlpTypes } from "../../collector/otlp-schema.ts";
import { grpcAddress, startCollector } from "../helpers/collector.ts";
import { type ProcessUnderTest, startLifeline, waitForCount } from "../helpers/indexer.ts";
import { testElastic, uniqueName } from "../helpers/services.ts";

function workspace(name: string) {
  const dir = mkdtempSync(join(tmpdir(), `lifeline-metrics-${name}-`));
  const prefix = uniqueName(`test-${name}`);
  const namespace = prefix.replaceAll("-", "_");
  return { dir, prefix, namespace, metrics: `lifeline-metrics-${namespace}` };
}

/** A service's request metrics, made by the real SDK and exported once by the given official exporter. */
async function exportMetrics(exporter: PushMetricExporter, service: string): Promise<void> {
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ "service.name": service, "host.name": "web-1" }),
    readers: [reader],
  });
  const meter = provider.getMeter("collector-metrics-test");
  const requests = meter.createCounter("http.server.request.count", { unit: "{request}" });
  const duration = meter.createHistogram("http.server.request.duration", {
    unit: "s",
    advice: { explicitBucketBoundaries: [0.01, 0.1, 1] },
  });
  meter
    .createObservableGauge("process.memory.usage", { unit: "By" })
    .addCallback((result) => result.observe(123_456_789, { "memory.type": "rss" }));
  for (const [route, code, seconds] of [
    ["/orders", 200, 0.005],
    ["/orders", 200, 0.05],
    ["/orders", 500, 0.5],
    ["/orders", 500, 2],
    ["/health", 200, 0.001],
  ] as const) {
    const attributes = { "http.route": route, "http.response.status_code": code };
    requests.add(1, attributes);
    duration.record(seconds, attributes);
  }
  // One export: shutdown collects and exports once (a forceFlush before it would export a second time).
  await provider.shutdown();
}

interface MetricDocument {
  "@timestamp": string;
  service: { name: string };
  host?: { name: string };
  trace?: { id: string | string[] };
  metric: {
    name: string;
    unit?: string;
    type: string;
    temporality?: string;
    monotonic?: boolean;
    value?: number;
    count?: number;
    sum?: number;
    min?: number;
    max?: number;
    buckets?: { bounds: number[]; counts: number[] };
  };
  lifeline: {
    attributes: Record<string, unknown>;
    exemplars?: Array<{ trace_id?: string; span_id?: string; value?: number }>;
  };
}

describe("collector: the metrics signal, from the official exporters into metrics documents", () => {
  const elastic = testElastic();
  const running: ProcessUnderTest[] = [];
  afterEach(async () => {
    for (const child of running.splice(0)) await child.stop("SIGKILL");
  });
  afterAll(async () => {
    await elastic.close();
  });

  it("counters, histograms and gauges over gRPC and HTTP land with their values, buckets, attributes and exemplars", async () => {
    const ws = workspace("metrics");
    const collector = await startCollector(ws.dir, { topicPrefix: ws.prefix });
    running.push(collector);
    const address = grpcAddress(collector);
    await exportMetrics(
      new OTLPMetricExporterGrpc({
        url: `http://${address}`,
        credentials: credentials.createInsecure(),
        temporalityPreference: AggregationTemporality.CUMULATIVE,
      }),
      "checkout",
    );
    await exportMetrics(
      new OTLPMetricExporterProto({
        url: `${collector.url}/v1/metrics`,
        temporalityPreference: AggregationTemporality.DELTA,
      }),
      "payments",
    );
    // The JavaScript SDK records no exemplars: a point with one, as a Go or Java SDK sends it, by hand.
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const spanId = "00f067aa0ba902b7";
    const now = BigInt(Date.now()) * 1_000_000n;
    const request = otlpTypes.metricsRequest.encode(
      otlpTypes.metricsRequest.fromObject({
        resourceMetrics: [
          {
            resource: { attributes: [{ key: "service.name", value: { stringValue: "billing" } }] },
            scopeMetrics: [
              {
                metrics: [
                  {
                    name: "http.server.request.duration",
                    unit: "s",
                    histogram: {
                      aggregationTemporality: 2,
                      dataPoints: [
                        {
                          timeUnixNano: now.toString(),
                          count: 3,
                          sum: 4.2,
                          bucketCounts: [1, 1, 1],
                          explicitBounds: [0.1, 1],
                          exemplars: [
                            {
                              timeUnixNano: now.toString(),
                              asDouble: 3.9,
                              traceId: Buffer.from(traceId, "hex"),
                              spanId: Buffer.from(spanId, "hex"),
                            },
                          ],
                        },
                        // No time: rejected, reported as partial success.
                        { count: 1, sum: 1, bucketCounts: [0, 1, 0], explicitBounds: [0.1, 1] },
                      ],
                    },
                  },
                ],
              },
            ],
          },
        ],
      }),
    );
    const answer = await new Promise<{ error: ServiceError | null; response?: Buffer }>((resolve) => {
      const client = new Client(address, credentials.createInsecure());
      client.makeUnaryRequest(
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        (bytes: Buffer) => bytes,
        (bytes: Buffer) => bytes,
        Buffer.from(request.finish()),
        new Metadata(),
        (error, response) => {
          client.close();
          resolve({ error, ...(response ? { response } : {}) });
        },
      );
    });
    expect(answer.error).toBeNull();
    expect(
      otlpTypes.metricsResponse.toObject(otlpTypes.metricsResponse.decode(answer.response as Buffer), {
        longs: Number,
      }),
    ).toEqual({
      partialSuccess: {
        rejectedDataPoints: 1,
        errorMessage: 'a data point of metric "http.server.request.duration" has no time',
      },
    });

    const file = join(ws.dir, "indexer.yaml");
    writeFileSync(
      file,
      stringify({
        topicPrefix: ws.prefix,
        groupId: uniqueName("metrics-indexer"),
        namespace: ws.namespace,
        indices: { replicas: 0, mode: "indices" },
      }),
    );
    const indexer = startLifeline(["indexer", "--config", file], "indexer started");
    running.push(indexer);
    await indexer.started;
    // Per service: 3 counter series (route × status), 3 histogram series, 1 gauge; and billing's one point.
    await waitForCount(elastic, ws.metrics, 15);
    const found = await elastic.search<MetricDocument>({ index: ws.metrics, size: 100 });
    const documents = found.hits.hits.map((hit) => hit._source as MetricDocument);
    expect(documents).toHaveLength(15);
    const point = (service: string, name: string, route?: string, code?: number) =>
      documents.find(
        (d) =>
          d.service.name === service &&
          d.metric.name === name &&
          (route === undefined || d.lifeline.attributes["http.route"] === route) &&
          (code === undefined || d.lifeline.attributes["http.response.status_code"] === code),
      );

    for (const [service, temporality] of [
      ["checkout", "cumulative"],
      ["payments", "delta"],
    ] as const) {
      expect(point(service, "http.server.request.count", "/orders", 500)?.metric).toMatchObject({
        type: "sum",
        monotonic: true,
        temporality,
        unit: "{request}",
        value: 2,
      });
      expect(point(service, "http.server.request.duration", "/orders", 500)?.metric).toMatchObject({
        type: "histogram",
        temporality,
        unit: "s",
        count: 2,
        sum: 2.5,
        min: 0.5,
        max: 2,
        buckets: { bounds: [0.01, 0.1, 1], counts: [0, 0, 1, 1] },
      });
      expect(point(service, "process.memory.usage")).toMatchObject({
        metric: { type: "gauge", unit: "By", value: 123_456_789 },
        lifeline: { attributes: { "memory.type": "rss" } },
        host: { name: "web-1" },
      });
    }
    const billing = point("billing", "http.server.request.duration");
    expect(billing?.trace?.id).toBe(traceId);
    expect(billing?.lifeline.exemplars).toEqual([
      expect.objectContaining({ trace_id: traceId, span_id: spanId, value: 3.9 }),
    ]);
    // The trace's search finds the metric point it is an exemplar of.
    const byTrace = await elastic.search({ index: ws.metrics, query: { term: { "trace.id": traceId } } });
    expect((byTrace.hits.total as { value: number }).value).toBe(1);
    // Kibana can chart them: a date histogram of the errors' request counts over the numeric fields.
    const errors = await elastic.search({
      index: ws.metrics,
      size: 0,
      query: {
        bool: {
          filter: [
            { term: { "metric.name": "http.server.request.count" } },
            { term: { "metric.temporality": "delta" } },
          ],
        },
      },
      aggs: { requests: { sum: { field: "metric.value" } } },
    });
    expect((errors.aggregations as { requests: { value: number } }).requests.value).toBe(5);
    expect(collector.process.exitCode).toBeNull();
  });
});
