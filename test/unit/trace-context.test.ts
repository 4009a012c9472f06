import { describe, expect, it } from "vitest";
import {
  childContext,
  formatTraceparent,
  isValidSpanId,
  isValidTraceId,
  newSpanId,
  newTraceId,
  normaliseTraceId,
  parseTraceparent,
} from "../../core/trace-context.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

describe("W3C trace context", () => {
  it("parses and formats a traceparent", () => {
    const header = `00-${TRACE}-${SPAN}-01`;
    expect(parseTraceparent(header)).toEqual({ traceId: TRACE, spanId: SPAN, flags: 1 });
    expect(formatTraceparent({ traceId: TRACE, spanId: SPAN, flags: 1 })).toBe(header);
  });

  it.each([
    ["all-zero trace id", `00-${"0".repeat(32)}-${SPAN}-01`],
    ["all-zero span id", `00-${TRACE}-${"0".repeat(16)}-01`],
    ["version ff", `ff-${TRACE}-${SPAN}-01`],
    ["version 00 with extra fields", `00-${TRACE}-${SPAN}-01-extra`],
    ["short trace id", `00-${TRACE.slice(1)}-${SPAN}-01`],
    ["garbage", "not a traceparent"],
    ["empty", ""],
  ])("rejects %s", (_, header) => {
    expect(parseTraceparent(header)).toBeUndefined();
  });

  it("accepts a future version with extra fields", () => {
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-00-more`)).toEqual({
      traceId: TRACE,
      spanId: SPAN,
      flags: 0,
    });
  });

  it("keeps the trace and makes a new span for a child", () => {
    const parent = { traceId: TRACE, spanId: SPAN, flags: 1 };
    const child = childContext(parent);
    expect(child.traceId).toBe(TRACE);
    expect(child.spanId).not.toBe(SPAN);
    expect(isValidTraceId(childContext().traceId)).toBe(true);
  });

  it("draws valid, distinct ids across many refills of its random pool", () => {
    // 4 KiB per draw: 3,000 of each spans several refills, mixing 16- and 8-byte ids.
    const traces = new Set<string>();
    const spans = new Set<string>();
    for (let i = 0; i < 3_000; i++) {
      const traceId = newTraceId();
      const spanId = newSpanId();
      expect(isValidTraceId(traceId) && /^[0-9a-f]{32}$/.test(traceId)).toBe(true);
      expect(isValidSpanId(spanId) && /^[0-9a-f]{16}$/.test(spanId)).toBe(true);
      traces.add(traceId);
      spans.add(spanId);
    }
    expect(traces.size).toBe(3_000);
    expect(spans.size).toBe(3_000);
  });

  it.each([
    [TRACE.toUpperCase(), TRACE],
    ["a3ce929d0e0e4736", "0000000000000000a3ce929d0e0e4736"],
    ["1234567890123456789", "0000000000000000112210f47de98115"],
    [1234567, "0000000000000000000000000012d687"],
    ["0".repeat(32), undefined],
    ["18446744073709551616", undefined],
    ["xyz", undefined],
    [null, undefined],
  ])("normalises the trace id %s", (input, expected) => {
    expect(normaliseTraceId(input)).toBe(expected);
  });
});
