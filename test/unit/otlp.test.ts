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
  ConvertedRecords,
  convertLogs,
  convertTraces,
  decodeRequest,
  encodeStatus,
  encodeSuccess,
} from "../../collector/otlp.ts";
import { otlpTypes } from "../../collector/otlp-schema.ts";
import { deterministicId } from "../../core/events.ts";

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
    expect(fromProto.records.toArray()).toEqual(fromJson.records.toArray());
    expect(fromProto.rejected).toBe(0);
    expect(fromJson.rejected).toBe(0);
    const [child, root] = fromProto.records.toArray().map((record) => JSON.parse(record.value));
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
    expect(fromProto.records.key(0)).toBe(rootSpan?.spanContext().traceId);
    // The same span sent twice is the same document.
    expect(root.event.id).toBe(JSON.parse(fromJson.records.value(1)).event.id);
  });

  it("a span document is the very text JSON.stringify makes of its object form", () => {
    // The converter writes the JSON as text (collector/otlp.ts): keys in this order, values escaped as
    // JSON.stringify escapes them, absent fields left out. Each case below is one branch of the layout.
    const trace = "0af7651916cd43dd8448eb211c80319c";
    const [root, consumer, producer] = ["b7ad6b7169203331", "00f067aa0ba902b7", "00f067aa0ba902b8"];
    const attributes = [
      { key: "b", value: { intValue: "9007199254740993" } },
      { key: "a", value: { doubleValue: 1.5 } },
      { key: "a", value: { boolValue: true } },
      { key: "1", value: { arrayValue: { values: [{ stringValue: "x" }, { bytesValue: "AAE=" }] } } },
    ];
    const spans = [
      {
        traceId: trace,
        spanId: root,
        name: 'say "hi"\n\u2028ü',
        kind: 9,
        startTimeUnixNano: "1796679838829000000",
        endTimeUnixNano: "1796679838829946257",
        status: { code: 2, message: 'bad "x"\n' },
        attributes,
        events: [
          { name: "retry", timeUnixNano: "5000000", attributes: [{ key: "n", value: { intValue: 2 } }] },
        ],
        links: [{ traceId: trace, spanId: consumer }],
      },
      { traceId: trace, spanId: consumer, parentSpanId: "zz", name: "no times", kind: "SPAN_KIND_CONSUMER" },
      {
        traceId: trace,
        spanId: producer,
        parentSpanId: root,
        name: "send",
        kind: 4,
        startTimeUnixNano: "100",
        status: { code: "STATUS_CODE_OK" },
      },
    ];
    const resource = [
      { key: "service.name", value: { stringValue: 'ch"eckout' } },
      { key: "service.version", value: { stringValue: "1.2" } },
      { key: "deployment.environment", value: { stringValue: "prod" } },
      { key: "service.instance.id", value: { stringValue: "i-1" } },
      { key: "host.name", value: { stringValue: "web-1" } },
    ];
    const request = {
      resourceSpans: [
        { resource: { attributes: resource }, scopeSpans: [{ scope: { name: "lib", version: "2" }, spans }] },
        { scopeSpans: [{ spans: [spans[2]] }] },
      ],
    };
    const records = convertTraces(
      decodeRequest("traces", "json", Buffer.from(JSON.stringify(request))),
    ).records.toArray();
    const event = (spanId: string, outcome: string) => ({
      id: deterministicId("otlp-span", trace, spanId),
      kind: "event",
      category: "span",
      dataset: "lifeline.spans",
      outcome,
    });
    const owner = {
      service: { name: 'ch"eckout', version: "1.2", environment: "prod", node: { name: "i-1" } },
      host: { name: "web-1" },
    };
    const resourceFields = {
      "service.name": 'ch"eckout',
      "service.version": "1.2",
      "deployment.environment": "prod",
      "service.instance.id": "i-1",
      "host.name": "web-1",
    };
    const producerDocument = (service: object, lifeline: object) => ({
      "@timestamp": "1970-01-01T00:00:00.000Z",
      event: event(producer, "success"),
      trace: { id: trace },
      span: { id: producer, name: "send", kind: "producer", start_ns: "100", end_ns: "100" },
      parent: { id: root },
      processor: { event: "span" },
      ...service,
      lifeline,
    });
    const expected = [
      {
        "@timestamp": new Date(1796679838829).toISOString(),
        event: event(root, "failure"),
        trace: { id: trace },
        span: {
          id: root,
          name: 'say "hi"\n\u2028ü',
          kind: "unspecified",
          start_ns: "1796679838829000000",
          end_ns: "1796679838829946257",
        },
        processor: { event: "transaction" },
        transaction: { id: root, name: 'say "hi"\n\u2028ü' },
        ...owner,
        error: { message: 'bad "x"\n' },
        lifeline: {
          resource: resourceFields,
          attributes: { 1: ["x", "AAE="], b: "9007199254740993", a: true },
          scope: { name: "lib", version: "2" },
          span_events: [{ name: "retry", "@timestamp": "1970-01-01T00:00:00.005Z", attributes: { n: 2 } }],
          links: [{ trace_id: trace, span_id: consumer }],
        },
      },
      {
        event: event(consumer, "unknown"),
        trace: { id: trace },
        span: { id: consumer, name: "no times", kind: "consumer" },
        processor: { event: "transaction" },
        transaction: { id: consumer, name: "no times" },
        ...owner,
        lifeline: { resource: resourceFields, attributes: {}, scope: { name: "lib", version: "2" } },
      },
      producerDocument(owner, {
        resource: resourceFields,
        attributes: {},
        scope: { name: "lib", version: "2" },
      }),
      producerDocument({ service: { name: "unknown_service" } }, { resource: {}, attributes: {} }),
    ];
    expect(records.map((record) => record.value)).toEqual(
      expected.map((document) => JSON.stringify(document)),
    );
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
    const [first, second] = converted.records.toArray().map((record) => JSON.parse(record.value));
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
    expect(converted.records.key(0)).toBe("worker");
  });

  it("responses: partial success and Status in both encodings", () => {
    const conversion = { rejected: 2, rejectedReason: "bad ids" };
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

  it("records written into one buffer keep their keys and exact text, past growth and in any script", () => {
    const texts = [
      '{"message":"plain"}',
      '{"message":"café ✓ 日本"}',
      `{"message":"${"😀".repeat(300)}"}`,
      "",
      `{"message":"${"x".repeat(400_000)}"}`,
      '{"message":"\\u0000 after"}',
    ];
    const small = Buffer.alloc(16);
    const records = new ConvertedRecords(small);
    texts.forEach((text, index) => {
      records.add(`key-${index}`, text);
    });
    expect(records.length).toBe(texts.length);
    expect(records.toArray()).toEqual(texts.map((value, index) => ({ key: `key-${index}`, value })));
    expect(records.bytes).toBe(texts.reduce((n, text) => n + Buffer.byteLength(text), 0));
    const target = Buffer.alloc(Buffer.byteLength(texts[1] as string) + 3, 0x2e);
    records.copy(1, target, 3);
    expect(target.toString("utf8")).toBe(`...${texts[1]}`);
    // The buffer grew past what is kept for the next request; a small one is handed on.
    expect(records.release()).toBeUndefined();
    const reused = new ConvertedRecords(small);
    reused.add("k", "{}");
    expect(reused.release()).toBe(small);
  });
});
