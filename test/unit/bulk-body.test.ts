import { describe, expect, it } from "vitest";
import { bulkBody } from "../../indexer/bulk-body.ts";

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
  });
});
