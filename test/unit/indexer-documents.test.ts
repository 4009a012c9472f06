import { describe, expect, it } from "vitest";
import { toDocument } from "../../core/ecs/document.ts";
import { PermanentError } from "../../core/errors.ts";
import {
  canonicalTime,
  rawBatch,
  rawDocumentId,
  rawDocumentText,
  shipperLogDocument,
} from "../../indexer/documents.ts";
import { LogDocumentTemplate } from "../../shipper/log-document.ts";
import { extractFields } from "../../shipper/parse/fields.ts";
import { NO_FLAGS } from "../../shipper/tail/multiline.ts";

const origin = { topic: "lifeline.logs", partition: 2, offset: "41", index: 0 };
const now = new Date("2026-11-27T06:00:00.000Z");

describe("indexer documents", () => {
  it("keeps the record's deterministic event id and stamps event.ingested", () => {
    const { id, document } = toDocument(
      "logs",
      JSON.stringify({ "@timestamp": "2026-11-27T05:00:00Z", message: "x", event: { id: "abc" } }),
      origin,
      now,
    );
    expect(id).toBe("abc");
    expect(document.event).toEqual({ id: "abc", ingested: "2026-11-27T06:00:00.000Z" });
    expect(document["@timestamp"]).toBe("2026-11-27T05:00:00.000Z");
  });

  it("without an event id, the id comes from the Kafka position: a re-delivery is the same document", () => {
    const a = toDocument("logs", '{"message":"x"}', origin, now).id;
    expect(toDocument("logs", '{"message":"x"}', origin, now).id).toBe(a);
    expect(toDocument("logs", '{"message":"x"}', { ...origin, index: 1 }, now).id).not.toBe(a);
  });

  it.each([
    ["missing", {}, undefined],
    ["unparseable", { "@timestamp": "yesterday-ish" }, "yesterday-ish"],
    ["far in the future", { "@timestamp": "2099-01-01T00:00:00Z" }, "2099-01-01T00:00:00Z"],
  ])("a %s @timestamp becomes the ingest time, the original kept", (_, fields, original) => {
    const { document } = toDocument("logs", JSON.stringify({ message: "x", ...fields }), origin, now);
    expect(document["@timestamp"]).toBe(now.toISOString());
    expect((document.lifeline as { original_timestamp?: string } | undefined)?.original_timestamp).toBe(
      original,
    );
  });

  it("a JSON log line's own fields become searchable under lifeline.fields", () => {
    const original = JSON.stringify({ level: 30, msg: "hi", user: { id: 7 } });
    const { document } = toDocument(
      "logs",
      JSON.stringify({
        message: "hi",
        event: { id: "e", original },
        lifeline: { schema_version: 1, format: "json" },
      }),
      origin,
      now,
    );
    expect((document.lifeline as { fields: unknown }).fields).toEqual({
      level: 30,
      msg: "hi",
      user: { id: 7 },
    });
  });

  it("spans get event.duration in nanoseconds", () => {
    const { document } = toDocument(
      "spans",
      JSON.stringify({ span: { id: "00f067aa0ba902b7", start_ns: "1000", end_ns: "3500" } }),
      origin,
      now,
    );
    expect((document.event as { duration: number }).duration).toBe(2500);
    expect(document.span).toEqual({ id: "00f067aa0ba902b7" });
  });

  it("invalid trace and span ids are dropped, the record kept", () => {
    const { document } = toDocument(
      "logs",
      JSON.stringify({ message: "x", trace: { id: "nope" }, span: { id: "0000000000000000" } }),
      origin,
      now,
    );
    expect(document.trace).toBeUndefined();
    expect(document.span).toEqual({});
  });

  it.each([
    ["not JSON", "{oops", "indexer.not_json"],
    ["an array", "[1,2]", "indexer.not_object"],
    ["a string", '"text"', "indexer.not_object"],
  ])("%s is a permanent error (dead letter)", (_, text, code) => {
    expect(() => toDocument("logs", text, origin, now)).toThrowError(PermanentError);
    try {
      toDocument("logs", text, origin, now);
    } catch (error) {
      expect((error as PermanentError).code).toBe(code);
    }
  });
});

/** The fast path on `text` placed between two other records of one Kafka message, as the shipper packs them. */
function shipperLogText(text: string, at: Date) {
  const before = '{"other":"record"}\n';
  const buffer = Buffer.from(`${before}${text}\n{"next":"record"}`);
  const start = Buffer.byteLength(before);
  const found = shipperLogDocument(buffer, start, start + Buffer.byteLength(text), rawBatch("logs-x", at));
  return found && { id: rawDocumentId(found), source: rawDocumentText(found) };
}

describe("shipper documents, passed through as bytes", () => {
  const template = new LogDocumentTemplate({
    dataset: "api",
    hostName: "web-1",
    service: { name: "api" },
    labels: { team: "payments" },
  });
  const written = (
    text: string,
    fields = extractFields(text, "auto"),
    eventId = "oyAAsbygr4y6qsqMndBJ6xqnUx1a",
  ) =>
    template.write({
      eventId,
      path: "/var/log/api.log",
      text,
      lineCount: 1,
      startOffset: 42,
      flags: NO_FLAGS,
      fields: { ...fields, timestamp: fields.timestamp ?? "2026-11-27T05:59:00.000Z" },
    });

  it.each([
    [
      "plain text",
      'GET /x 200 "quoted" \\ back,"event":{"id":"fake"} trace_id=4bf92f3577b34da6a3ce929d0e0e4736',
    ],
    ["logfmt", 'ts=2026-11-27T05:00:00Z level=warn msg="slow, \\"very\\"" span_id=00f067aa0ba902b7'],
    ["a message that ends in a backslash", "C:\\logs\\"],
  ])("%s: the same document the full path makes", (_, line) => {
    const text = written(line);
    const fast = shipperLogText(text, now);
    const full = toDocument("logs", text, origin, now);
    expect(fast?.id).toBe(full.id);
    expect(JSON.parse(fast?.source ?? "null")).toEqual(full.document);
  });

  it.each([
    ["JSON lines (their fields are promoted)", written('{"msg":"x","level":"info"}')],
    [
      "a timestamp the full path rewrites",
      written("x", { format: "plain", timestamp: "2026-02-30T00:00:00.000Z" }),
    ],
    ["a timestamp too far ahead", written("x", { format: "plain", timestamp: "2099-01-01T00:00:00.000Z" })],
    ["an id with an escape", written("x", { format: "plain" }, 'a\\"b')],
    ["an id that is not printable ASCII", written("x", { format: "plain" }, "idé\u0001")],
    [
      "another layout",
      JSON.stringify({ message: "x", "@timestamp": "2026-11-27T05:00:00.000Z", event: { id: "a" } }),
    ],
  ])("%s: left to the full path", (_, text) => {
    expect(shipperLogText(text, now)).toBeUndefined();
  });
});

describe("canonicalTime", () => {
  /** What the full path keeps as it is: a string Date.parse reads and toISOString writes back unchanged. */
  const reference = (text: string): number | undefined => {
    const time = Date.parse(text);
    return Number.isNaN(time) || new Date(time).toISOString() !== text ? undefined : time;
  };
  const pad = (value: number, width: number) => String(value).padStart(width, "0");

  it("agrees with Date.parse + toISOString on valid, rolled-over and malformed timestamps", () => {
    const samples = [
      "2026-11-27T05:00:00.000Z",
      "2024-02-29T23:59:59.999Z",
      "2026-02-29T00:00:00.000Z",
      "2026-02-30T00:00:00.000Z",
      "2000-02-29T12:00:00.000Z",
      "1900-02-29T12:00:00.000Z",
      "2026-11-27T24:00:00.000Z",
      "2026-11-27T23:60:00.000Z",
      "2026-13-01T00:00:00.000Z",
      "2026-00-01T00:00:00.000Z",
      "2026-11-00T00:00:00.000Z",
      "2026-11-27 05:00:00.000Z",
      "2026-11-27T05:00:00.000+",
      "2026-1a-27T05:00:00.000Z",
    ];
    let seed = 7;
    const random = (limit: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % limit;
    };
    for (let i = 0; i < 5_000; i++) {
      samples.push(
        `${pad(100 + random(9_900), 4)}-${pad(random(14), 2)}-${pad(random(33), 2)}T${pad(random(26), 2)}:${pad(random(62), 2)}:${pad(random(62), 2)}.${pad(random(1_000), 3)}Z`,
      );
    }
    for (const sample of samples)
      expect([sample, canonicalTime(Buffer.from(sample), 0)]).toEqual([sample, reference(sample)]);
  });
});
