import { describe, expect, it } from "vitest";
import { bulkBody } from "../../indexer/bulk-body.ts";
import { rawBatch, rawDocumentId, rawDocumentText, shipperLogDocument } from "../../indexer/documents.ts";
import { LogDocumentTemplate } from "../../shipper/log-document.ts";
import { extractFields } from "../../shipper/parse/fields.ts";
import { NO_FLAGS } from "../../shipper/tail/multiline.ts";

describe("bulkBody", () => {
  it.each([
    ["ASCII", "plain text"],
    ["two-byte letters", "naïve café ".repeat(50)],
    ["three-byte characters (3 bytes per UTF-16 unit)", "日本語のログ".repeat(2_000)],
    ["emoji (4 bytes per 2 units)", "☕🚀".repeat(3_000)],
  ])("is the NDJSON the client would send: %s", (_, text) => {
    const items = Array.from({ length: 20 }, (_, i) => ({
      action: `{"create":{"_index":"logs","_id":"id-${i}"}}`,
      source: JSON.stringify({ message: i % 2 === 0 ? text : "short", i }),
    }));
    const expected = Buffer.from(items.map(({ action, source }) => `${action}\n${source}\n`).join(""));
    expect(bulkBody(items).equals(expected)).toBe(true);
    // Into a buffer the caller gives (the indexer's pool), a used one: the same bytes, in that buffer.
    const given = Buffer.alloc(expected.length + 8_192, 0x41);
    const pooled = bulkBody(items, (bytes) => (bytes <= given.length ? given : Buffer.allocUnsafe(bytes)));
    expect(pooled.equals(expected)).toBe(true);
    if (pooled.buffer === given.buffer) expect(pooled.byteOffset).toBe(0);
  });
});

describe("bulkBody with documents passed through as bytes", () => {
  it("writes them with event.ingested put in, as the text form would be", () => {
    const now = new Date("2026-11-27T06:00:00.000Z");
    const template = new LogDocumentTemplate({
      dataset: "api",
      hostName: "h",
      service: undefined,
      labels: {},
    });
    const lines = ["GET / 200", "naïve café ☕ trace_id=4bf92f3577b34da6a3ce929d0e0e4736", 'say "hi"'];
    const documents = lines.map((line, i) =>
      template.write({
        eventId: `id${i}`,
        path: "/var/log/app.log",
        text: line,
        lineCount: 1,
        startOffset: i * 100,
        flags: NO_FLAGS,
        fields: { ...extractFields(line, "auto"), timestamp: "2026-11-27T05:00:00.000Z" },
      }),
    );
    const message = Buffer.from(documents.join("\n"));
    const batch = rawBatch("logs-lifeline.logs-x", now);
    const items = [];
    let start = 0;
    for (const document of documents) {
      const end = start + Buffer.byteLength(document);
      const raw = shipperLogDocument(message, start, end, batch);
      if (!raw) throw new Error(`not recognised: ${document}`);
      items.push({ action: undefined, source: raw });
      start = end + 1;
    }
    const asText = items.map(({ source }) => ({
      action: JSON.stringify({ create: { _index: "logs-lifeline.logs-x", _id: rawDocumentId(source) } }),
      source: rawDocumentText(source),
    }));
    expect(bulkBody(items).toString()).toBe(bulkBody(asText).toString());
    const sources = bulkBody(items)
      .toString()
      .trimEnd()
      .split("\n")
      .filter((_, i) => i % 2 === 1);
    expect(
      sources.map((source) => (JSON.parse(source) as { event: { ingested: string } }).event.ingested),
    ).toEqual(lines.map(() => "2026-11-27T06:00:00.000Z"));
  });
});
