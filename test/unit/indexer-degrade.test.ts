import { describe, expect, it } from "vitest";
import { toDocument } from "../../core/ecs/document.ts";
import { FLATTENED_DEPTH_LIMIT } from "../../core/ecs/mappings.ts";
import { causeChain, itemVerdict, reasonLabel } from "../../indexer/indexer.ts";

const origin = { topic: "lifeline.logs", partition: 0, offset: "7", index: 0 };
const now = new Date("2026-12-06T06:00:00.000Z");

/** A JSON log line as the shipper sends it: the line in event.original, format json. */
function jsonLine(fields: Record<string, unknown>) {
  return JSON.stringify({
    "@timestamp": "2026-12-06T05:00:00Z",
    message: "the line's message",
    event: { id: "e1", original: JSON.stringify(fields) },
    lifeline: { format: "json" },
  });
}

function nested(levels: number): Record<string, unknown> {
  let value: unknown = "leaf";
  for (let i = levels - 1; i >= 0; i--) value = { [`k${i}`]: value };
  return value as Record<string, unknown>;
}

describe("indexer: documents degrade instead of being refused", () => {
  it("a 40 KB string field: kept whole in the document, flagged long_value_not_indexed", () => {
    const big = "x".repeat(40_000);
    const { document, flags } = toDocument("logs", jsonLine({ user: "ann", payload: big }), origin, now);
    expect(flags).toEqual(["long_value_not_indexed"]);
    const lifeline = document.lifeline as { fields: Record<string, unknown>; flags: string[] };
    expect(lifeline.fields.payload).toBe(big);
    expect(lifeline.fields.user).toBe("ann");
    expect(lifeline.flags).toEqual(["long_value_not_indexed"]);
    expect(document.message).toBe("the line's message");
  });

  it("a 30-deep object: the first 20 levels stay objects, the rest is its JSON text, flagged depth_limited", () => {
    // lifeline.fields is level 1: 29 levels below it.
    const { document, flags } = toDocument("logs", jsonLine(nested(29)), origin, now);
    expect(flags).toEqual(["depth_limited"]);
    let value = (document.lifeline as { fields: unknown }).fields;
    let depth = 0;
    while (typeof value === "object" && value !== null) {
      depth++;
      value = Object.values(value)[0];
    }
    expect(depth).toBe(FLATTENED_DEPTH_LIMIT);
    // The folded part holds every deeper level, down to the leaf.
    let folded: unknown = "leaf";
    for (let i = 28; i >= 20; i--) folded = { [`k${i}`]: folded };
    expect(JSON.parse(value as string)).toEqual(folded);
  });

  it("exactly at the limit, and ordinary lines: nothing changed, no flags", () => {
    const atLimit = toDocument("logs", jsonLine(nested(FLATTENED_DEPTH_LIMIT - 1)), origin, now);
    expect(atLimit.flags).toBeUndefined();
    expect((atLimit.document.lifeline as { flags?: unknown }).flags).toBeUndefined();
    const plain = toDocument("logs", jsonLine({ a: 1, b: ["x", { c: "y" }] }), origin, now);
    expect(plain.flags).toBeUndefined();
    expect((plain.document.lifeline as { fields: unknown }).fields).toEqual({ a: 1, b: ["x", { c: "y" }] });
  });

  it("span attributes and labels are fitted too; flags already on the document are kept", () => {
    const { document, flags } = toDocument(
      "spans",
      JSON.stringify({
        labels: { note: "y".repeat(9_000) },
        lifeline: { attributes: nested(25), flags: ["earlier"] },
      }),
      origin,
      now,
    );
    expect(flags?.sort()).toEqual(["depth_limited", "long_value_not_indexed"]);
    expect((document.lifeline as { flags: string[] }).flags.sort()).toEqual([
      "depth_limited",
      "earlier",
      "long_value_not_indexed",
    ]);
  });
});

describe("indexer: dead letters keep Elasticsearch's causes", () => {
  const itemError = {
    type: "document_parsing_exception",
    reason: "[1:70] failed to parse field [log.offset] of type [long]",
    caused_by: {
      type: "illegal_argument_exception",
      reason: 'For input string: "not-a-number"',
      caused_by: { type: "number_format_exception", reason: "bad digit", stack_trace: "dropped" },
    },
  };

  it("the whole caused_by chain, type and reason at each level, nothing else", () => {
    expect(causeChain(itemError)).toEqual({
      type: "illegal_argument_exception",
      reason: 'For input string: "not-a-number"',
      caused_by: { type: "number_format_exception", reason: "bad digit" },
    });
    expect(causeChain({ type: "x", reason: "no cause" })).toBeUndefined();
  });

  it("the metric's reason: the error's type and its innermost cause's type", () => {
    expect(reasonLabel(itemError.type, causeChain(itemError))).toBe(
      "document_parsing_exception <- number_format_exception",
    );
    expect(reasonLabel("indexer.not_json")).toBe("indexer.not_json");
  });

  it("a cause chain that never ends is cut", () => {
    const loop: Record<string, unknown> = { type: "a", reason: "r" };
    loop.caused_by = loop;
    let depth = 0;
    for (let cause = causeChain(loop); cause; cause = cause.caused_by) depth++;
    expect(depth).toBe(8);
  });
});

describe("itemVerdict: what a bulk item's status says of its document", () => {
  it("counts only 200 and 201 as indexed, 409 as already there", () => {
    expect(itemVerdict(201)).toBe("indexed");
    expect(itemVerdict(200)).toBe("indexed");
    expect(itemVerdict(409)).toBe("duplicate");
  });

  it("retries what Elasticsearch may take later, dead-letters what it refused", () => {
    for (const status of [429, 500, 502, 503, 504]) expect(itemVerdict(status)).toBe("retry");
    expect(itemVerdict(400)).toBe("dead");
    expect(itemVerdict(404)).toBe("dead");
  });

  it("never reads a missing or meaningless status as written or refused", () => {
    expect(itemVerdict(undefined)).toBe("unanswered");
    expect(itemVerdict(0)).toBe("unanswered");
    expect(itemVerdict(Number.NaN)).toBe("unanswered");
  });
});
