import { context, trace } from "@opentelemetry/api";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";
import { type Conversion, convertTraces, isoFromNanos } from "../../collector/otlp.ts";
import { otlpTypes } from "../../collector/otlp-schema.ts";
import { decodeTraceRequest } from "../../collector/otlp-wire.ts";
import { randomTraceRequest } from "../helpers/otlp-requests.ts";

type Loose = Record<string, unknown>;

/** What protobufjs makes of the same bytes: the reader the wire decoder replaced, kept as the reference. */
function reference(body: Uint8Array): Loose {
  const type = otlpTypes.traceRequest;
  return type.toObject(type.decode(body), { longs: String, enums: Number }) as Loose;
}

function encode(request: Loose): Buffer {
  const type = otlpTypes.traceRequest;
  return Buffer.from(type.encode(type.fromObject(request)).finish());
}

describe("OTLP traces read from the wire", () => {
  it("gives the same documents as protobufjs for the SDK's own requests", async () => {
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ "service.name": "checkout", "host.name": "web-1", pid: 4242 }),
      spanProcessors: [new SimpleSpanProcessor(memory)],
    });
    const tracer = provider.getTracer("unit", "1.2.3");
    const root = tracer.startSpan("GET /orders/:id", { kind: 1, attributes: { "http.status_code": 500 } });
    const child = tracer.startSpan("SELECT", { kind: 2 }, trace.setSpan(context.active(), root));
    child.addEvent("retry", { attempt: 2, ok: false, ratio: 0.25, tags: ["a", "b"] });
    child.addLink({ context: root.spanContext() });
    child.end();
    root.setStatus({ code: 2, message: "boom" });
    root.end();
    await provider.forceFlush();
    const body = ProtobufTraceSerializer.serializeRequest(memory.getFinishedSpans()) as Uint8Array;
    const wire = plain(convertTraces(decodeTraceRequest(Buffer.from(body))));
    expect(wire.records).toHaveLength(2);
    expect(wire).toEqual(plain(convertTraces(reference(body))));
  });

  it("gives the same documents as protobufjs for 300 generated requests with every kind of value", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const body = encode(randomTraceRequest(seed));
      const wire = plain(convertTraces(decodeTraceRequest(body)));
      expect({ seed, ...wire }).toEqual({ seed, ...plain(convertTraces(reference(body))) });
    }
  });

  it("reads 64-bit times and integers exactly, beyond 2^53", () => {
    const body = encode({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId: Buffer.alloc(16, 1),
                  spanId: Buffer.alloc(8, 2),
                  startTimeUnixNano: "1733500000123456789",
                  endTimeUnixNano: "18446744073709551615",
                  attributes: [
                    { key: "big", value: { intValue: "9007199254740993" } },
                    { key: "min", value: { intValue: "-9223372036854775808" } },
                    { key: "neg", value: { intValue: "-42" } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    });
    const request = decodeTraceRequest(body) as {
      resourceSpans: Array<{ scopeSpans: Array<{ spans: Loose[] }> }>;
    };
    const span = request.resourceSpans[0]?.scopeSpans[0]?.spans[0];
    expect(span?.startTimeUnixNano).toBe("1733500000123456789");
    expect(span?.endTimeUnixNano).toBe("18446744073709551615");
    expect(((span?.attributes ?? []) as Loose[]).map((a) => (a.value as Loose).intValue)).toEqual([
      "9007199254740993",
      "-9223372036854775808",
      -42,
    ]);
  });

  it("skips unknown fields of every wire type and refuses broken input", () => {
    const known = encode(randomTraceRequest(7));
    // Field 99 as varint, fixed64, length-delimited and fixed32, before the request's own fields.
    const unknown = Buffer.from([
      0x98, 0x06, 0x96, 0x01, 0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, 0x9a, 0x06, 2, 0xaa, 0xbb, 0x9d, 0x06, 1, 2,
      3, 4,
    ]);
    expect(plain(convertTraces(decodeTraceRequest(Buffer.concat([unknown, known]))))).toEqual(
      plain(convertTraces(decodeTraceRequest(known))),
    );
    for (let cut = 1; cut < known.length; cut += 7) {
      const truncated = known.subarray(0, cut);
      let referenceThrew = false;
      try {
        reference(truncated);
      } catch {
        referenceThrew = true;
      }
      // Wherever protobufjs finds the input broken, so does the wire reader (it may find more: a field that runs
      // past its message's end).
      if (referenceThrew) expect(() => decodeTraceRequest(truncated), `cut at ${cut}`).toThrow();
    }
    expect(() => decodeTraceRequest(Buffer.from([0x0a, 0xff]))).toThrow(/truncated varint/);
    expect(() => decodeTraceRequest(Buffer.from([0x0a, 0x05, 0x01]))).toThrow(/runs past the end/);
    expect(() => decodeTraceRequest(Buffer.from([0x0b]))).toThrow(/invalid wire type 3/);
  });
});

describe("isoFromNanos", () => {
  it("writes what Date's toISOString writes, to the millisecond, and nothing outside Date's range", () => {
    const check = (nanos: bigint) =>
      expect(isoFromNanos(nanos.toString()), nanos.toString()).toBe(
        new Date(Number(nanos / 1_000_000n)).toISOString(),
      );
    for (const nanos of [
      0n,
      1n,
      999_999n,
      1_000_000n,
      1_733_500_000_123_456_789n,
      8_640_000_000_000_000_000_000n,
    ])
      check(nanos);
    let state = 12345;
    for (let i = 0; i < 2000; i++) {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      // Runs of nearby times (the cache) and jumps across years.
      check(1_733_500_000_000_000_000n + BigInt(state) * (i % 2 === 0 ? 1n : 1_000_000_007n));
    }
    expect(isoFromNanos("8640000000000001000000")).toBeUndefined();
    expect(isoFromNanos("99999999999999999999999999")).toBeUndefined();
    expect(isoFromNanos(undefined)).toBeUndefined();
  });
});

/** A conversion with its records as keys and text, to compare. */
function plain(conversion: Conversion) {
  return { ...conversion, records: conversion.records.toArray() };
}
