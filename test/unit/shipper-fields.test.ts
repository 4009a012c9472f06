import { describe, expect, it } from "vitest";
import { parseTraceparent } from "../../core/trace-context.ts";
import { extractFields, normaliseTimestamp, parseLogfmt } from "../../shipper/parse/fields.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

describe("edge parsing of log lines", () => {
  it.each([
    [
      "pino",
      `{"level":50,"time":1795757000000,"pid":1,"hostname":"h","msg":"db down","trace_id":"${TRACE}","span_id":"${SPAN}"}`,
      {
        format: "json",
        level: "error",
        message: "db down",
        timestamp: "2026-11-27T05:23:20.000Z",
        traceId: TRACE,
        spanId: SPAN,
      },
    ],
    [
      "ECS",
      `{"@timestamp":"2026-11-27T05:00:00.123Z","log.level":"warn","message":"slow","trace":{"id":"${TRACE}"},"span":{"id":"${SPAN}"}}`,
      {
        format: "json",
        level: "warn",
        message: "slow",
        timestamp: "2026-11-27T05:00:00.123Z",
        traceId: TRACE,
        spanId: SPAN,
      },
    ],
    [
      "bunyan",
      `{"name":"api","level":30,"msg":"hi","time":"2026-11-27T05:00:00.000Z","v":0}`,
      { format: "json", level: "info", message: "hi", timestamp: "2026-11-27T05:00:00.000Z" },
    ],
    [
      "zap",
      `{"level":"info","ts":1795757000.5,"caller":"main.go:1","msg":"started","traceID":"${TRACE}"}`,
      {
        format: "json",
        level: "info",
        message: "started",
        timestamp: "2026-11-27T05:23:20.500Z",
        traceId: TRACE,
      },
    ],
    [
      "logrus",
      `{"level":"error","msg":"failed","time":"2026-11-27T06:00:00+01:00"}`,
      { format: "json", level: "error", message: "failed", timestamp: "2026-11-27T05:00:00.000Z" },
    ],
    [
      "Serilog compact",
      `{"@t":"2026-11-27T05:00:00.0000000Z","@mt":"User {Id} logged in","@l":"Warning","Id":7,"@tr":"${TRACE}","@sp":"${SPAN}"}`,
      {
        format: "json",
        level: "warning",
        message: "User {Id} logged in",
        timestamp: "2026-11-27T05:00:00.000Z",
        traceId: TRACE,
        spanId: SPAN,
      },
    ],
    [
      "W3C traceparent field",
      `{"msg":"x","traceparent":"00-${TRACE}-${SPAN}-01"}`,
      { format: "json", message: "x", traceId: TRACE, spanId: SPAN },
    ],
    [
      "OpenTelemetry field names",
      `{"msg":"x","otelTraceID":"${TRACE.toUpperCase()}","otelSpanID":"${SPAN}"}`,
      { format: "json", message: "x", traceId: TRACE, spanId: SPAN },
    ],
    [
      "Datadog decimal ids",
      `{"message":"x","dd":{"trace_id":"1234567890123456789","span_id":"987654321"}}`,
      {
        format: "json",
        message: "x",
        traceId: "0000000000000000112210f47de98115",
        spanId: "000000003ade68b1",
      },
    ],
    [
      "logfmt",
      `time=2026-11-27T05:00:00Z level=info msg="request done" trace_id=${TRACE} status=200`,
      {
        format: "logfmt",
        level: "info",
        message: "request done",
        timestamp: "2026-11-27T05:00:00.000Z",
        traceId: TRACE,
      },
    ],
    [
      "plain text with a traceparent",
      `GET /api 200 traceparent=00-${TRACE}-${SPAN}-01`,
      { format: "plain", traceId: TRACE, spanId: SPAN },
    ],
    ["plain text with trace_id", `ERROR boom trace_id=${TRACE}`, { format: "plain", traceId: TRACE }],
    [
      "an all-zero trace id is no trace",
      `{"msg":"x","trace_id":"${"0".repeat(32)}"}`,
      { format: "json", message: "x" },
    ],
    ["a short trace id is no trace", `plain trace_id=abc123`, { format: "plain" }],
    ["broken JSON is plain text", `{"msg": "unterminated`, { format: "plain" }],
  ])("%s", (_, line, expected) => {
    expect(extractFields(line, "auto")).toEqual(expected);
  });

  it("ids in free text: the same as one unanchored expression per id, on generated lines", () => {
    // The expressions the key-position scan replaced, kept here as the reference.
    const traceIn = /\b(?:trace[._-]?id|traceId|otelTraceID)["']?\s*[=:]\s*["']?([0-9a-fA-F]{32})\b/;
    const traceparentIn = /\b00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}\b/;
    const spanIn = /\b(?:span[._-]?id|spanId|otelSpanID)["']?\s*[=:]\s*["']?([0-9a-fA-F]{16})\b/;
    const pieces = [
      "trace_id=",
      "trace.id: ",
      "traceid=",
      'traceId="',
      "otelTraceID=",
      "xtrace_id=",
      "mytraceId=",
      "Trace_id=",
      "otelTrace=",
      "span_id=",
      "spanId: '",
      "otelSpanID=",
      "xspan_id=",
      "span=",
      "race",
      "pan",
      "s",
      "t",
      " ",
      "=",
      ":",
      '"',
      "'",
      "\t",
      "\u00a0",
      "\u2003",
      "-",
      "00-",
      `00-${TRACE}-${SPAN}-01`,
      TRACE,
      SPAN,
      TRACE.toUpperCase(),
      "0".repeat(32),
      `${TRACE}0`,
      "zz",
    ];
    let state = 7;
    const next = () => {
      // xorshift32: reproducible lines without a dependency.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return state >>> 0;
    };
    const nonZero = (id: string | undefined) => (id && !/^0+$/.test(id) ? id.toLowerCase() : undefined);
    const reference = (line: string) => {
      const parent = parseTraceparent(traceparentIn.exec(line)?.[0]);
      if (parent) return { traceId: parent.traceId, spanId: parent.spanId };
      const traceId = nonZero(traceIn.exec(line)?.[1]);
      return { traceId, spanId: traceId ? nonZero(spanIn.exec(line)?.[1]) : undefined };
    };
    let withTrace = 0;
    let withTraceparent = 0;
    for (let n = 0; n < 20_000; n++) {
      let line = "";
      const count = 1 + (next() % 8);
      for (let i = 0; i < count; i++) line += pieces[next() % pieces.length];
      const { traceId, spanId } = extractFields(line, "plain");
      const expected = reference(line);
      expect({ traceId, spanId }, line).toEqual(expected);
      if (expected.traceId) withTrace++;
      if (traceparentIn.test(line)) withTraceparent++;
    }
    expect(withTraceparent).toBeGreaterThan(100);
    expect(withTrace).toBeGreaterThan(100);
  });

  it("the parser setting forces a format", () => {
    expect(extractFields(`a=1 b=2`, "plain").format).toBe("plain");
    expect(extractFields(`{"msg":"x"}`, "logfmt").format).toBe("plain");
  });

  it("logfmt needs two pairs and nothing else", () => {
    expect(parseLogfmt(`a=1 b="two words" c=`)).toEqual({ a: "1", b: "two words", c: "" });
    expect(parseLogfmt(`a=1`)).toBeUndefined();
    expect(parseLogfmt(`hello a=1 b=2`)).toBeUndefined();
  });

  it.each([
    [1795757000, "2026-11-27T05:23:20.000Z"],
    [1795757000123, "2026-11-27T05:23:20.123Z"],
    [1795757000123456000, "2026-11-27T05:23:20.123Z"],
    ["1795757000", "2026-11-27T05:23:20.000Z"],
    ["not a date at all", undefined],
    ["short", undefined],
  ])("timestamp %s", (input, expected) => {
    expect(normaliseTimestamp(input)).toBe(expected);
  });
});
