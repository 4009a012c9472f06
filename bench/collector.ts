/**
 * Collector: spans/s taken over OTLP/HTTP protobuf and over OTLP/gRPC into Kafka (every request answered only after
 * Kafka's ack; one collector per transport),
 * with the collector's CPU and peak RSS; in the same run, two baselines: a bare HTTP sink that reads each body
 * and answers 200 (the ceiling of the client and HTTP path) and kafkajs producing the already converted span
 * documents straight to Kafka (the ceiling of the Kafka path).
 * The collector runs as its container runs it (core/entry.ts collectorLauncher: compiled, small young generation).
 *   npm run bench:collector        (BENCH_SPANS=200000, BENCH_CONCURRENCY=4; BENCH_NODE_ARGS: the collectors' Node
 *                                   flags, instead of the launcher's; BENCH_SOURCE=1: the TypeScript entry)
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { context, trace } from "@opentelemetry/api";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { convertTraces, decodeRequest } from "../collector/otlp.ts";
import { resolveKafka } from "../core/connections.ts";
import { collectorLauncher } from "../core/entry.ts";
import { createKafka } from "../core/kafka/client.ts";
import { ensureTopics } from "../core/kafka/topics.ts";
import { topicNames } from "../core/topics.ts";
import { servicesUp } from "../local-services/manager.ts";
import { localServicesSettings } from "../local-services/settings.ts";
import { startCollector } from "../test/helpers/collector.ts";
import { uniqueName } from "../test/helpers/services.ts";
import {
  type BenchRow,
  benchLauncher,
  cpuSeconds,
  peakRssMiB,
  printTable,
  topicRecordCount,
  writeResults,
} from "./lib.ts";

const SPANS = Number(process.env.BENCH_SPANS ?? 200_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const PER_REQUEST = 512;
/** The collectors' limits.inflightBytes and limits.producers (BENCH_INFLIGHT_BYTES, BENCH_PRODUCERS; else the defaults). */
const LIMITS = {
  limits: {
    ...(process.env.BENCH_INFLIGHT_BYTES ? { inflightBytes: Number(process.env.BENCH_INFLIGHT_BYTES) } : {}),
    ...(process.env.BENCH_PRODUCERS ? { producers: Number(process.env.BENCH_PRODUCERS) } : {}),
  },
};

/** Request bodies as the SDK's OTLP/HTTP protobuf exporter sends them: 512 spans each, 3 per trace. */
function requestBodies(): Buffer[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "checkout", "host.name": "web-1" }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer("bench");
  const bodies: Buffer[] = [];
  for (let made = 0; made < SPANS; made += 3) {
    const root = tracer.startSpan("GET /orders/:id", {
      kind: 1,
      attributes: {
        "http.request.method": "GET",
        "http.route": "/orders/:id",
        "http.response.status_code": 200,
      },
    });
    const inRoot = trace.setSpan(context.active(), root);
    tracer.startSpan("SELECT orders", { kind: 2, attributes: { "db.system": "postgresql" } }, inRoot).end();
    tracer.startSpan("cache.get", { kind: 3 }, inRoot).end();
    root.end();
    if (memory.getFinishedSpans().length >= PER_REQUEST) {
      bodies.push(
        Buffer.from(ProtobufTraceSerializer.serializeRequest(memory.getFinishedSpans()) as Uint8Array),
      );
      memory.reset();
    }
  }
  if (memory.getFinishedSpans().length > 0)
    bodies.push(
      Buffer.from(ProtobufTraceSerializer.serializeRequest(memory.getFinishedSpans()) as Uint8Array),
    );
  return bodies;
}

/** Posts every body, CONCURRENCY at a time; every one must be answered 200. */
async function post(url: string, bodies: Buffer[]): Promise<number> {
  const began = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < bodies.length; i = next++) {
        const response = await fetch(url, {
          method: "POST",
          body: bodies[i],
          headers: { "content-type": "application/x-protobuf" },
        });
        await response.arrayBuffer();
        if (response.status !== 200) throw new Error(`request ${i}: HTTP ${response.status}`);
      }
    }),
  );
  return (performance.now() - began) / 1000;
}

/** Exports every body over gRPC (TraceService/Export), CONCURRENCY calls at a time; every one must be OK. */
async function exportGrpc(address: string, bodies: Buffer[]): Promise<number> {
  const client = new Client(address, credentials.createInsecure(), {
    "grpc.max_send_message_length": 64 << 20,
  });
  const call = (body: Buffer) =>
    new Promise<void>((resolve, reject) =>
      client.makeUnaryRequest(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        (bytes: Buffer) => bytes,
        (bytes: Buffer) => bytes,
        body,
        new Metadata(),
        (error) => (error ? reject(error) : resolve()),
      ),
    );
  const began = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < bodies.length; i = next++) await call(bodies[i] as Buffer);
    }),
  );
  client.close();
  return (performance.now() - began) / 1000;
}

/** A bare HTTP server in its own process that reads each body and answers 200. */
async function startSink(): Promise<{ url: string; pid: number; stop: () => void }> {
  const child = spawn(
    process.execPath,
    [
      "-e",
      `require("node:http").createServer((q, s) => { q.on("data", () => {}); q.on("end", () => s.end()); })
        .listen(0, "127.0.0.1", function () { console.log(this.address().port); });`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const port = await new Promise<string>((resolve) =>
    child.stdout?.once("data", (d: Buffer) => resolve(d.toString().trim())),
  );
  return { url: `http://127.0.0.1:${port}/v1/traces`, pid: child.pid as number, stop: () => child.kill() };
}

/** The collector as deployed, or as BENCH_NODE_ARGS / BENCH_SOURCE say. */
function launcher(): { nodeArgs: string[]; entry: string; system: string } {
  const { nodeArgs, entry, how } = benchLauncher(collectorLauncher);
  return { nodeArgs, entry, system: `lifeline collector (${how})` };
}

async function main() {
  if (!process.env.LIFELINE_KAFKA_BROKERS) await servicesUp(localServicesSettings(), process.env, () => {});
  const kafka = createKafka({ ...resolveKafka(), clientId: "bench-collector" });
  process.stderr.write(`building ${SPANS} spans as OTLP protobuf requests...\n`);
  const bodies = requestBodies();
  const documents = bodies.map((body) =>
    convertTraces(decodeRequest("traces", "protobuf", body)).records.toArray(),
  );
  const spans = documents.reduce((n, records) => n + records.length, 0);
  const megabytes = bodies.reduce((n, body) => n + body.length, 0) / 1e6;
  const rows: BenchRow[] = [];
  const row = (system: string, seconds: number, pid?: number, cpu0 = 0): BenchRow => ({
    scenario: `${spans} spans, ${bodies.length} requests`,
    system,
    "spans/s": Math.round(spans / seconds),
    "MB/s": megabytes / seconds,
    seconds,
    ...(pid ? { "cpu s": cpuSeconds(pid) - cpu0, "peak RSS MiB": peakRssMiB(pid) } : {}),
  });

  process.stderr.write("baseline: bare HTTP sink...\n");
  const sink = await startSink();
  rows.push(row("bare HTTP sink (ceiling of the HTTP path)", await post(sink.url, bodies), sink.pid));
  sink.stop();

  process.stderr.write("baseline: kafkajs producing the converted documents...\n");
  const rawTopic = uniqueName("bench-collector-raw");
  await ensureTopics(kafka, [rawTopic]);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const rawBegan = performance.now();
  for (const records of documents) {
    const byTrace = new Map<string, string[]>();
    for (const record of records) byTrace.set(record.key, [...(byTrace.get(record.key) ?? []), record.value]);
    await producer.send({
      topic: rawTopic,
      acks: -1,
      compression: "zstd",
      messages: [...byTrace].map(([key, values]) => ({ key, value: values.join("\n") })),
    });
  }
  rows.push(row("kafkajs, pre-converted (ceiling of the Kafka path)", (performance.now() - rawBegan) / 1000));
  await producer.disconnect();

  const collectorRun = launcher();
  process.stderr.write("lifeline collector...\n");
  const prefix = uniqueName("bench-collector");
  const dir = mkdtempSync(join(tmpdir(), "bench-collector-"));
  const collector = await startCollector(
    dir,
    {
      topicPrefix: prefix,
      ...(process.env.BENCH_COMPRESSION ? { compression: process.env.BENCH_COMPRESSION } : {}),
      ...LIMITS,
    },
    collectorRun,
  );
  const pid = collector.process.pid as number;
  const cpu0 = cpuSeconds(pid);
  rows.push(
    row(
      `${collectorRun.system} over HTTP, acked by Kafka`,
      await post(`${collector.url}/v1/traces`, bodies),
      pid,
      cpu0,
    ),
  );
  const stored = await topicRecordCount(kafka, topicNames(prefix).spans);
  await collector.stop();

  process.stderr.write("lifeline collector over gRPC...\n");
  const grpcPrefix = uniqueName("bench-collector-grpc");
  const grpcCollector = await startCollector(
    mkdtempSync(join(tmpdir(), "bench-collector-grpc-")),
    {
      topicPrefix: grpcPrefix,
      ...(process.env.BENCH_COMPRESSION ? { compression: process.env.BENCH_COMPRESSION } : {}),
      ...LIMITS,
    },
    collectorRun,
  );
  const grpcPort = /"grpcPort":(\d+)[^\n]*"msg":"collector started"/.exec(grpcCollector.output())?.[1];
  const grpcPid = grpcCollector.process.pid as number;
  const grpcCpu0 = cpuSeconds(grpcPid);
  rows.push(
    row(
      `${collectorRun.system} over gRPC, acked by Kafka`,
      await exportGrpc(`127.0.0.1:${grpcPort}`, bodies),
      grpcPid,
      grpcCpu0,
    ),
  );
  const storedGrpc = await topicRecordCount(kafka, topicNames(grpcPrefix).spans);
  await grpcCollector.stop();
  printTable(rows);
  console.error(
    `results: ${writeResults("collector", rows, { spans, requests: bodies.length, concurrency: CONCURRENCY, kafkaMessages: stored, kafkaMessagesGrpc: storedGrpc })}`,
  );
}

await main();
