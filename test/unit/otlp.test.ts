import { context, trace } from "@opentelemetry/api";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";
import {
  convertLogs,
  convertTraces,
  decodeRequest,
  encodeStatus,
  encodeSuccess,
} from "../../collector/otlp.ts";
import { otlpTypes } from "../../collector/otlp-schema.ts";

async function sdkSpans() {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "api", "deployment.environment.name": "prod" }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer("unit");
  const root = tracer.startSpan("GET /", { kind: 1, attributes: { "http.status_code": 500 } });
  const child = tracer.startSpan("db", { kind: 2 }, trace.setSpan(context.active(), root));
  child.addEvent("retry", { attempt: 2 });
  child.end();
  root.setStatus({ code: 2, message: "boom" });
  root.end();
  await provider.forceFlush();
  return memory.getFinishedSpans();
}

describe("OTLP decoding and conversion", () => {
  it("protobuf and JSON encodings of the same spans give the same documents", async () => {
    const spans = await sdkSpans();
    const fromProto = convertTraces(
      decodeRequest(
        "traces",
        "protobuf",
        Buffer.from(ProtobufTraceSerializer.serializeRequest(spans) as Uint8Array),
      ),
    );
    const fromJson = convertTraces(
      decodeRequest("traces", "json", Buffer.from(JsonTraceSerializer.serializeRequest(spans) as Uint8Array)),
    );
    expect(fromProto).toEqual(fromJson);
    expect(fromProto.rejected).toBe(0);
    const [child, root] = fromProto.records.map((record) => JSON.parse(record.value));
    const rootSpan = spans[1];
    expect(root).toMatchObject({
      trace: { id: rootSpan?.spanContext().traceId },
      span: { id: rootSpan?.spanContext().spanId, name: "GET /", kind: "server" },
      event: { outcome: "failure", category: "span" },
      processor: { event: "transaction" },
      transaction: { id: rootSpan?.spanContext().spanId },
      service: { name: "api", environment: "prod" },
      error: { message: "boom" },
      lifeline: { attributes: { "http.status_code": 500 } },
    });
    expect(child).toMatchObject({
      parent: { id: rootSpan?.spanContext().spanId },
      span: { kind: "client" },
      processor: { event: "span" },
      event: { outcome: "unknown" },
      lifeline: { span_events: [{ name: "retry", attributes: { attempt: 2 } }] },
    });
    expect(child.transaction).toBeUndefined();
    expect(fromProto.records[0]?.key).toBe(rootSpan?.spanContext().traceId);
    // The same span sent twice is the same document.
    expect(root.event.id).toBe(JSON.parse(fromJson.records[1]?.value ?? "{}").event.id);
  });

  it("log records: severity, body, ids; an invalid id is rejected alone", () => {
    const request = {
      resourceLogs: [
        {
          resource: { attributes: [{ key: "service.name", value: { stringValue: "worker" } }] },
          scopeLogs: [
            {
              logRecords: [
                {
                  timeUnixNano: "1795756800000000000",
                  severityNumber: 13,
                  body: { kvlistValue: { values: [{ key: "msg", value: { stringValue: "slow" } }] } },
                  traceId: "5b8efff798038103d269b633813fc60c",
                  spanId: "eee19b7ec3c1b174",
                },
                { severityText: "INFO", body: { stringValue: "plain" } },
                { body: { stringValue: "bad" }, traceId: "xyz" },
              ],
            },
          ],
        },
      ],
    };
    const converted = convertLogs(decodeRequest("logs", "json", Buffer.from(JSON.stringify(request))));
    expect(converted.rejected).toBe(1);
    const [first, second] = converted.records.map((record) => JSON.parse(record.value));
    expect(first).toMatchObject({
      "@timestamp": "2026-11-27T05:20:00.000Z",
      message: '{"msg":"slow"}',
      log: { level: "warn" },
      service: { name: "worker" },
      trace: { id: "5b8efff798038103d269b633813fc60c" },
      span: { id: "eee19b7ec3c1b174" },
    });
    expect(second).toMatchObject({ message: "plain", log: { level: "info" } });
    expect(second["@timestamp"]).toBeUndefined();
    expect(converted.records[0]?.key).toBe("worker");
  });

  it("responses: partial success and Status in both encodings", () => {
    const conversion = { records: [], rejected: 2, rejectedReason: "bad ids" };
    const proto = encodeSuccess("traces", "protobuf", conversion) as Buffer;
    expect(
      otlpTypes.traceResponse.toObject(otlpTypes.traceResponse.decode(proto), { longs: Number }),
    ).toEqual({
      partialSuccess: { rejectedSpans: 2, errorMessage: "bad ids" },
    });
    expect(JSON.parse(encodeSuccess("logs", "json", conversion) as string)).toEqual({
      partialSuccess: { rejectedLogRecords: 2, errorMessage: "bad ids" },
    });
    expect(encodeSuccess("traces", "protobuf", { rejected: 0 })).toHaveLength(0);
    const status = otlpTypes.status.decode(encodeStatus("protobuf", 3, "nope") as Buffer);
    expect(otlpTypes.status.toObject(status)).toEqual({ code: 3, message: "nope" });
  });

  it("garbage is a PermanentError naming the encoding", () => {
    expect(() => decodeRequest("traces", "protobuf", Buffer.from([0x0a, 0xff]))).toThrow(
      /not an OTLP protobuf/,
    );
    expect(() => decodeRequest("logs", "json", Buffer.from("[1]"))).toThrow(/not a JSON object/);
  });
});
