import { describe, expect, it } from "vitest";
import { lineEventId, logRecordSchema, SCHEMA_VERSION } from "../../core/events.ts";
import { type FileContext, LogDocumentTemplate, type LogLine } from "../../shipper/log-document.ts";
import { extractFields } from "../../shipper/parse/fields.ts";
import { NO_FLAGS } from "../../shipper/tail/multiline.ts";

/** The document as an object, the way the shipper built it before it wrote JSON text by hand. */
function asObject(context: FileContext, line: LogLine, created: string | undefined) {
  const { fields } = line;
  const flags = [...line.flags];
  return {
    "@timestamp": fields.timestamp,
    message: fields.format === "plain" || line.lineCount > 1 ? line.text : (fields.message ?? line.text),
    event: {
      id: line.eventId,
      // The read time, when @timestamp is the line's own (undefined: left out, as JSON.stringify leaves it).
      created: line.fields.timestamp ? created : undefined,
      dataset: context.dataset,
      ...(fields.format !== "plain" ? { original: line.text } : {}),
    },
    log: {
      file: { path: line.path },
      offset: line.startOffset,
      ...(fields.level ? { level: fields.level } : {}),
      ...(flags.length > 0 ? { flags } : {}),
    },
    host: { name: context.hostName },
    ...(context.service ? { service: context.service } : {}),
    ...(fields.traceId ? { trace: { id: fields.traceId } } : {}),
    ...(fields.spanId ? { span: { id: fields.spanId } } : {}),
    ...(Object.keys(context.labels).length > 0 ? { labels: context.labels } : {}),
    lifeline: { schema_version: SCHEMA_VERSION, format: fields.format },
  };
}

const LINES = [
  '{"time":1795786114214,"level":50,"msg":"payment \\"failed\\"\\n\\tretry","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}',
  'ts=2026-11-27T05:00:00Z level=WARN msg="slow query" trace_id=4BF92F3577B34DA6A3CE929D0E0E4736',
  "2026-11-27 05:00:00 ERROR naïve café ☕ \u0001 control \\ backslash trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
  "plain line without anything",
];

/** One file with every per-file part (service, labels, characters to escape), one with none. */
const contexts: FileContext[] = [
  {
    dataset: "api",
    hostName: 'web-"1"',
    service: { name: "api", environment: "prod" },
    labels: { team: "payments", "odd\nkey": "v" },
  },
  { dataset: "bare", hostName: "h", service: undefined, labels: {} },
];

describe("LogDocumentTemplate", () => {
  for (const context of contexts) {
    it(`writes the same document JSON.stringify would (${context.dataset})`, () => {
      const template = new LogDocumentTemplate(context);
      for (const [i, text] of LINES.entries()) {
        for (const flags of [NO_FLAGS, new Set(["truncated", "invalid_utf8"])]) {
          const line: LogLine = {
            eventId: lineEventId("oyAAsbygr4y6qsqMndBJ6xqnUx1", i * 1000),
            path: i % 2 === 0 ? "/var/log/app.log" : 'C:\\logs\\"app".log',
            text,
            lineCount: 1 + (i % 2),
            startOffset: i * 1000,
            flags,
            fields: extractFields(text, "auto"),
          };
          const written = template.write(line);
          const parsed = JSON.parse(written) as Record<string, unknown>;
          const event = parsed.event as { created?: string };
          if (line.fields.timestamp) expect(Date.parse(event.created ?? "")).not.toBeNaN();
          else expect(event.created).toBeUndefined();
          const expected = asObject(context, line, event.created);
          if (expected["@timestamp"] === undefined) expected["@timestamp"] = parsed["@timestamp"] as string;
          expect(written).toBe(JSON.stringify(expected));
          expect(logRecordSchema.safeParse(parsed).success).toBe(true);
        }
      }
    });
  }

  it("stamps lines without their own time with the time they were read", () => {
    const before = Date.now();
    const document = JSON.parse(
      new LogDocumentTemplate(contexts[1] as FileContext).write({
        eventId: "x",
        path: "/p",
        text: "no time here",
        lineCount: 1,
        startOffset: 0,
        flags: NO_FLAGS,
        fields: extractFields("no time here", "auto"),
      }),
    ) as { "@timestamp": string };
    expect(Date.parse(document["@timestamp"])).toBeGreaterThanOrEqual(before - 1);
    expect(Date.parse(document["@timestamp"])).toBeLessThanOrEqual(Date.now());
  });
});

describe("LogDocumentTemplate.preparePlain / writeInto", () => {
  const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
  const SPAN = "00f067aa0ba902b7";
  // Every byte JSON.stringify escapes (quote, backslash, each control character but newline), multibyte
  // characters, and plain ASCII, in lines with and without ids.
  const controls = Array.from({ length: 0x20 }, (_, code) => String.fromCharCode(code)).filter(
    (c) => c !== "\n",
  );
  const pieces = ['"', "\\", ...controls, "naïve ☕ 𝄞", "\u2028", "\u007f", " GET /api 200 ", "x"];
  const lines: string[] = ["", "plain line without anything", `trace_id=${TRACE} span_id=${SPAN}`];
  let state = 11;
  for (let n = 0; n < 400; n++) {
    let line = "";
    for (let i = 0; i < 1 + (n % 9); i++) {
      state = (state * 48271) % 2147483647;
      line += pieces[state % pieces.length];
    }
    if (n % 3 === 0) line += ` trace_id=${TRACE}`;
    if (n % 6 === 0) line += ` span_id=${SPAN}`;
    lines.push(line);
  }
  const offsets = [0, 1, 35, 36, 1295, 1296, 123_456_789, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER];

  it("writes the bytes of write(), from the line's bytes, and nothing outside its size", () => {
    let compared = 0;
    for (const context of contexts) {
      const template = new LogDocumentTemplate(context);
      for (const [i, text] of lines.entries()) {
        const fields = extractFields(text, "plain");
        // The line's own time (parsed from its start): @timestamp, and the read time goes to event.created.
        if (i % 4 === 1) fields.timestamp = "2026-12-04T10:11:12.123Z";
        const source = Buffer.from(`prefix\n${text}\nrest`);
        const startOffset = offsets[i % offsets.length] as number;
        const fileId = i % 5 === 0 ? "oyAAsbygr4y6qsqMndBJ6xqnUx1" : "ZmlsZS1pZC10d28";
        const path = i % 2 === 0 ? "/var/log/app.log" : 'C:\\logs\\"app".log';
        const bytes = template.preparePlain(
          source,
          7,
          Buffer.byteLength(text),
          fileId,
          path,
          startOffset,
          fields.traceId,
          fields.spanId,
          fields.timestamp,
        );
        const target = Buffer.alloc(bytes + 20, 0xee);
        template.writeInto(target, 10);
        const expected = template.write({
          eventId: lineEventId(fileId, startOffset),
          path,
          text,
          lineCount: 1,
          startOffset,
          flags: NO_FLAGS,
          fields,
        });
        expect(bytes).toBe(Buffer.byteLength(expected));
        expect(target.subarray(0, 10).every((byte) => byte === 0xee)).toBe(true);
        expect(target.subarray(10 + bytes).every((byte) => byte === 0xee)).toBe(true);
        const written = target.subarray(10, 10 + bytes).toString("utf8");
        // The time of reading may differ by a millisecond between the two: compared apart.
        const time = /^\{"@timestamp":"([^"]{24})"/;
        const created = /,"created":"([^"]{24})"/;
        expect(Date.parse(time.exec(written)?.[1] ?? "")).not.toBeNaN();
        if (fields.timestamp) {
          expect(time.exec(written)?.[1]).toBe(fields.timestamp);
          expect(Date.parse(created.exec(written)?.[1] ?? "")).not.toBeNaN();
        } else expect(written).not.toMatch(created);
        expect(written.replace(time, "").replace(created, "")).toBe(
          expected.replace(time, "").replace(created, ""),
        );
        compared++;
      }
    }
    expect(compared).toBe(2 * lines.length);
  });
});

describe("lineEventId", () => {
  it("is the file id and the offset: unique per line, the same on every replay", () => {
    expect(lineEventId("oyAAsbygr4y6qsqMndBJ6xqnUx1", 0)).toBe("oyAAsbygr4y6qsqMndBJ6xqnUx10");
    // Pinned: ids already in Elasticsearch must come out the same after an upgrade, or a replay duplicates.
    expect(lineEventId("oyAAsbygr4y6qsqMndBJ6xqnUx1", 123_456_789)).toBe("oyAAsbygr4y6qsqMndBJ6xqnUx121i3v9");
    expect(lineEventId("oyAAsbygr4y6qsqMndBJ6xqnUx1", 2 ** 40)).not.toBe(
      lineEventId("oyAAsbygr4y6qsqMndBJ6xqnUx1", 2 ** 40 + 1),
    );
  });
});
