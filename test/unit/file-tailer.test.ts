import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fingerprintOf } from "../../shipper/tail/file-identity.ts";
import { type Encoding, FileTailer } from "../../shipper/tail/file-tailer.ts";
import type { JoinedRecord } from "../../shipper/tail/multiline.ts";

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Reads a whole file through a FileTailer with read buffers of `bufferBytes`; the records it hands on. */
async function tail(
  content: Buffer,
  bufferBytes: number,
  maxLineBytes = 1 << 20,
  encoding: Encoding = "utf-8",
) {
  dir = await mkdtemp(join(tmpdir(), "lifeline-tailer-"));
  const path = join(dir, "app.log");
  await writeFile(path, content);
  const handle = await open(path, "r");
  const info = await handle.stat();
  const records: Array<Omit<JoinedRecord, "flags"> & { flags: string[] }> = [];
  const tailer = new FileTailer({
    handle,
    path,
    input: "test",
    identity: { dev: info.dev, ino: info.ino, ...fingerprintOf(handle, info.size) },
    offset: 0,
    maxLineBytes,
    multiline: undefined,
    encoding,
    events: {
      record: (_, record) => records.push({ ...record, flags: [...record.flags] }),
      acquireRead: async () => ({ buffer: Buffer.alloc(bufferBytes), release: () => {} }),
      truncated: () => {},
      binarySkipped: () => {},
      bytesRead: () => {},
    },
  });
  await tailer.pump();
  tailer.finish();
  await tailer.close();
  return records;
}

/** What each record must be, computed from the bytes: text, flags, and exact byte offsets. */
function expected(content: Buffer, maxLineBytes = 1 << 20) {
  const out: Array<{ text: string; startOffset: number; endOffset: number; flags: string[] }> = [];
  let start = 0;
  while (start < content.length) {
    let newline = content.indexOf(10, start);
    if (newline === -1) newline = content.length;
    let line = content.subarray(start, newline);
    if (line.at(-1) === 13) line = line.subarray(0, -1);
    const flags: string[] = [];
    if (line.length > maxLineBytes) {
      line = line.subarray(0, maxLineBytes);
      flags.push("truncated");
    }
    const valid = new TextDecoder("utf-8", { fatal: false }).decode(line);
    if (!Buffer.from(valid).equals(line)) flags.push("invalid_utf8");
    if (line.length > 0)
      out.push({ text: valid, startOffset: start, endOffset: Math.min(newline + 1, content.length), flags });
    start = newline + 1;
  }
  return out;
}

const CONTENT = Buffer.concat([
  Buffer.from("plain ascii line\r\n\nnaïve café ☕ 𝄞 line\n"),
  Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x0a]),
  Buffer.from(`${"x".repeat(300)}\nshort\n\r\n`),
  Buffer.from("ünïcödé again\nlast line without newline"),
]);

const VALID_CONTENT = Buffer.from(`${"ünïcödé ☕ 𝄞\r\n".repeat(50)}\n\nascii\n${"x".repeat(5000)}\n`);

describe("FileTailer", () => {
  for (const [name, content] of [
    ["with a bad byte", CONTENT],
    ["valid UTF-8", VALID_CONTENT],
  ] as const)
    for (const bufferBytes of [7, 64, 1024, 256 * 1024]) {
      it(`hands on every line with exact offsets and flags (${name}, read buffer ${bufferBytes} bytes)`, async () => {
        const records = await tail(content, bufferBytes);
        expect(
          records.map(({ lines, startOffset, endOffset, flags }) => ({
            text: lines.join("\n"),
            startOffset,
            endOffset,
            flags,
          })),
        ).toEqual(expected(content));
      });
    }

  it("a file truncated and written again past the offset read, between two reads, is read anew from its start", async () => {
    // copytruncate under heavy writes: the size never looks smaller than the offset, only the first bytes tell.
    dir = await mkdtemp(join(tmpdir(), "lifeline-tailer-"));
    const path = join(dir, "app.log");
    const before = Array.from({ length: 100 }, (_, i) => `old line ${String(i).padStart(4, "0")}\n`).join("");
    const after = Array.from({ length: 300 }, (_, i) => `new line ${String(i).padStart(4, "0")}\n`).join("");
    await writeFile(path, before);
    const handle = await open(path, "r");
    const info = await handle.stat();
    const texts: string[] = [];
    const truncations: number[] = [];
    const tailer = new FileTailer({
      handle,
      path,
      input: "test",
      identity: { dev: info.dev, ino: info.ino, ...fingerprintOf(handle, info.size) },
      offset: 0,
      maxLineBytes: 1 << 20,
      multiline: undefined,
      events: {
        record: (_, record) => texts.push(record.lines.join("\n")),
        acquireRead: async () => ({ buffer: Buffer.alloc(64 * 1024), release: () => {} }),
        truncated: (_, previous) => truncations.push(previous),
        binarySkipped: () => {},
        bytesRead: () => {},
      },
    });
    try {
      await tailer.pump();
      expect(texts).toHaveLength(100);
      // Grown once more, read: its first bytes are known by now, and compared on each read after.
      await writeFile(path, `${before}old line 0100\n`);
      await tailer.pump();
      expect(texts).toHaveLength(101);
      await writeFile(path, after);
      expect(after.length).toBeGreaterThan(tailer.position);
      await tailer.pump();
      expect(truncations).toEqual([before.length + 14]);
      expect(texts.slice(101)).toEqual(after.trimEnd().split("\n"));
    } finally {
      await tailer.close();
    }
  });

  it("truncates and flags a line over the limit, whether it fits one read or spans several", async () => {
    for (const bufferBytes of [64, 4096]) {
      const records = await tail(CONTENT, bufferBytes, 100);
      const long = records.find((record) => record.lines[0]?.startsWith("xxx"));
      expect(long?.lines[0]).toBe("x".repeat(100));
      expect(long?.flags).toEqual(["truncated"]);
      expect(records.map((r) => r.endOffset)).toEqual(expected(CONTENT, 100).map((r) => r.endOffset));
    }
  });

  it("a read ahead that fails while the chunk before it is consumed fails the pump, and is never unhandled", async () => {
    dir = await mkdtemp(join(tmpdir(), "lifeline-tailer-"));
    const path = join(dir, "app.log");
    const line = `${"x".repeat(99)}\n`;
    await writeFile(path, line.repeat(3_000)); // 300,000 bytes: two reads of 256 KiB, the first in slices
    const handle = await open(path, "r");
    const info = await handle.stat();
    const identity = { dev: info.dev, ino: info.ino, ...fingerprintOf(handle, info.size) };
    // The second chunk's read fails a moment later, while the first is still being consumed.
    let reads = 0;
    const acquireRead = () =>
      ++reads === 1
        ? Promise.resolve({ buffer: Buffer.alloc(256 * 1024), release: () => {} })
        : new Promise<never>((_, reject) =>
            setTimeout(() => reject(new Error("EIO: the disk went away")), 0),
          );
    let records = 0;
    const tailer = new FileTailer({
      handle,
      path,
      input: "test",
      identity,
      offset: 0,
      maxLineBytes: 1 << 20,
      multiline: undefined,
      events: {
        record: () => {
          records++;
        },
        acquireRead,
        truncated: () => {},
        binarySkipped: () => {},
        bytesRead: () => {},
      },
    });
    await expect(tailer.pump()).rejects.toThrow("EIO");
    expect(records).toBe(Math.floor((256 * 1024) / line.length)); // the first chunk's whole lines, each once
    await handle.close();
  });

  describe("UTF-16LE (Windows programs' logs)", () => {
    // A BOM, CRLF line ends, a character whose code unit holds a 0x0A byte (U+010A, bytes 0A 01), one outside
    // the BMP (a surrogate pair), a blank line, and a last line without a newline.
    const lines = ["service started Ċ ok", "naïve café ☕ 𝄞", "", "stopping", "last without newline"];
    const text = `${lines.slice(0, 4).join("\r\n")}\r\n${lines[4]}`;
    const content = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]);
    for (const bufferBytes of [3, 7, 64, 4096]) {
      it(`every line decoded, with exact byte offsets (read buffer ${bufferBytes} bytes)`, async () => {
        const records = await tail(content, bufferBytes, 1 << 20, "utf-16le");
        expect(records.map((r) => r.lines.join("\n"))).toEqual(lines.filter(Boolean));
        let offset = 2;
        const offsets = lines.map((line, i) => {
          const bytes = Buffer.byteLength(line, "utf16le") + (i < 4 ? 4 : 0);
          const range = { line, startOffset: offset, endOffset: offset + bytes };
          offset += bytes;
          return range;
        });
        expect(records.map(({ startOffset, endOffset }) => ({ startOffset, endOffset }))).toEqual(
          offsets.filter((o) => o.line).map(({ startOffset, endOffset }) => ({ startOffset, endOffset })),
        );
        expect(records.every((r) => r.flags.length === 0)).toBe(true);
      });
    }

    it("with a byte order mark it is UTF-16 on a utf-8 input too; without one, a utf-8 input skips it as binary", async () => {
      const asUtf8 = await tail(content, 4096);
      expect(asUtf8.map((r) => r.lines[0])).toEqual(lines.filter(Boolean));
      expect(asUtf8[0]?.startOffset).toBe(2);
      expect(await tail(content.subarray(2), 4096)).toEqual([]);
      expect(await tail(content.subarray(2), 4096, 1 << 20, "utf-16le")).toHaveLength(4);
    });

    it("a lone surrogate flags the line invalid_utf16; a long line is cut on a code unit and flagged", async () => {
      const lone = Buffer.concat([Buffer.from([0x00, 0xd8]), Buffer.from("x\n", "utf16le")]);
      expect((await tail(lone, 64, 1 << 20, "utf-16le"))[0]?.flags).toEqual(["invalid_utf16"]);
      const long = Buffer.from(`${"y".repeat(600)}\n`, "utf16le");
      const [record] = await tail(long, 64, 1025, "utf-16le");
      expect(record?.lines[0]).toBe("y".repeat(512));
      expect(record?.flags).toEqual(["truncated"]);
    });
  });
});

describe("encodings", () => {
  const lines = ["service started Ċ ok", "naïve café ☕ 𝄞", "stopping", "last without newline"];
  const text = `${lines.join("\r\n")}`;
  const utf16be = (value: string) => Buffer.from(value, "utf16le").swap16();
  const texts = (records: Array<{ lines: string[] }>) => records.map((r) => r.lines.join("\n"));

  for (const bufferBytes of [3, 5, 64, 4096]) {
    it(`UTF-16BE, by its mark or said, each line once with exact offsets (read buffer ${bufferBytes} bytes)`, async () => {
      const marked = Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be(text)]);
      for (const encoding of ["utf-16", "utf-16be", "utf-8"] as const) {
        const records = await tail(marked, bufferBytes, 1 << 20, encoding);
        expect(texts(records), encoding).toEqual(lines);
        expect(records[0]?.startOffset).toBe(2);
        expect(records[1]?.startOffset).toBe(2 + utf16be(`${lines[0]}\r\n`).length);
        expect(records.at(-1)?.endOffset).toBe(marked.length);
        expect(records.every((r) => r.flags.length === 0)).toBe(true);
      }
      expect(texts(await tail(utf16be(text), bufferBytes, 1 << 20, "utf-16be"))).toEqual(lines);
    });

    it(`a UTF-8 byte order mark is not text: the first line starts after it (read buffer ${bufferBytes} bytes)`, async () => {
      const marked = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${text}\n`)]);
      const records = await tail(marked, bufferBytes);
      expect(texts(records)).toEqual(lines);
      expect(records[0]?.startOffset).toBe(3);
      expect(records[0]?.lines[0]?.charCodeAt(0)).not.toBe(0xfeff);
    });
  }

  it("utf-16 without a mark is little-endian", async () => {
    expect(texts(await tail(Buffer.from(text, "utf16le"), 64, 1 << 20, "utf-16"))).toEqual(lines);
  });

  it("latin1 and windows-1252: every byte a character, as each defines it", async () => {
    // é (E9 in both), € (80: the euro sign in windows-1252, the control U+0080 in latin1), ÿ (FF).
    const bytes = Buffer.concat([
      Buffer.from("caf"),
      Buffer.from([0xe9, 0x20, 0x80, 0x20, 0xff]),
      Buffer.from("\nok\n"),
    ]);
    const latin1 = await tail(bytes, 4, 1 << 20, "latin1");
    expect(texts(latin1)).toEqual(["café \u0080 ÿ", "ok"]);
    expect(latin1.every((r) => r.flags.length === 0)).toBe(true);
    const cp1252 = await tail(bytes, 4, 1 << 20, "windows-1252");
    expect(texts(cp1252)).toEqual(["café € ÿ", "ok"]);
    expect(cp1252.map((r) => [r.startOffset, r.endOffset])).toEqual([
      [0, 9],
      [9, 12],
    ]);
    // Read as UTF-8 the same bytes are invalid: flagged, not silently changed.
    expect((await tail(bytes, 4))[0]?.flags).toEqual(["invalid_utf8"]);
  });
});

describe("file identity", () => {
  it("a 64-bit file id past 2^53 stays exact (NTFS puts a sequence number in the high bits)", async () => {
    const { exactIno } = await import("../../shipper/tail/file-identity.ts");
    // Two NTFS file references one MFT record apart, sequence number 0x0102: equal as doubles, not as ids.
    const a = (0x0102n << 48n) | 0x1234n;
    const b = a + 1n;
    expect(Number(a)).toBe(Number(b));
    expect(exactIno(a)).not.toBe(exactIno(b));
    expect(exactIno(a)).toBe(a.toString());
    expect(exactIno(123n)).toBe(123);
  });
});
