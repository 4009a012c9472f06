import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { context, trace } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";
import { stringify } from "yaml";
import { lifelineBin, type ProcessUnderTest, startLifeline } from "./cli.ts";

export interface CollectorUnderTest extends ProcessUnderTest {
  url: string;
}

/** Starts a real `lifeline collector` on a free port and resolves with its base URL once it serves. */
export async function startCollector(
  dir: string,
  config: Record<string, unknown>,
  /** How to run it: node flags and entry (bench:collector runs it as deployed); the TypeScript entry by default. */
  launcher: { nodeArgs: string[]; entry: string } = { nodeArgs: [], entry: lifelineBin },
): Promise<CollectorUnderTest> {
  const file = join(dir, "collector.yaml");
  writeFileSync(file, stringify({ listen: { port: 0 }, http: { port: 0 }, grpc: { port: 0 }, ...config }));
  const collector = startLifeline(
    ["collector", "--config", file],
    "collector started",
    process.env,
    launcher,
  );
  await collector.started;
  const port = /"port":(\d+),"topicPrefix"[^\n]*"msg":"collector started"/.exec(collector.output())?.[1];
  if (!port) throw new Error(`collector did not say its port:\n${collector.output()}`);
  return { ...collector, url: `http://127.0.0.1:${port}` };
}

/** The collector's /health port, from its log. */
export function healthUrl(collector: ProcessUnderTest): string {
  const port = /"port":(\d+),"msg":"metrics and health endpoint listening"/.exec(collector.output())?.[1];
  return `http://127.0.0.1:${port}/health`;
}

/** The collector's OTLP/gRPC address, from its log. */
export function grpcAddress(collector: ProcessUnderTest): string {
  const port = /"grpcPort":(\d+)[^\n]*"msg":"collector started"/.exec(collector.output())?.[1];
  if (!port) throw new Error(`collector did not say its gRPC port:\n${collector.output()}`);
  return `127.0.0.1:${port}`;
}

/**
 * Traces of a root and two children each (every tenth root an error), made by the real SDK and sent by the given
 * exporter (an official OTLP exporter, or an in-memory one to serialize them by hand).
 */
export async function sendTraces(
  exporter: SpanExporter,
  service: string,
  traces: number,
): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": service, "host.name": "web-1" }),
    spanProcessors: [
      new BatchSpanProcessor(exporter, { maxExportBatchSize: 100, maxQueueSize: 10_000 }),
      new SimpleSpanProcessor(memory),
    ],
  });
  const tracer = provider.getTracer("collector-test");
  for (let i = 0; i < traces; i++) {
    const root = tracer.startSpan(`GET /orders/${i}`, {
      kind: 1,
      attributes: { "http.route": "/orders/:id" },
    });
    const inRoot = trace.setSpan(context.active(), root);
    for (const name of ["db.query", "cache.get"]) tracer.startSpan(name, {}, inRoot).end();
    if (i % 10 === 0) root.setStatus({ code: 2, message: "upstream timeout" });
    root.end();
  }
  await provider.forceFlush();
  const finished = memory.getFinishedSpans();
  await provider.shutdown();
  return finished;
}
