import { isAscii, isUtf8 } from "node:buffer";
import { fstatSync, readSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { FINGERPRINT_BYTES, type FileIdentity, hashPrefix, readPrefix } from "./file-identity.ts";
import { type JoinedRecord, MultilineJoiner, type MultilineRule, NO_FLAGS } from "./multiline.ts";

/** The size of the read buffers `acquireRead` hands out. */
export const READ_CHUNK_BYTES = 256 * 1024;
const BINARY_SNIFF_BYTES = 8 * 1024;
const CONSUME_SLICE_BYTES = 64 * 1024;

export type TailerState = "active" | "draining" | "closed";

/**
 * A file's text encoding. `utf-8` also reads a file that begins with a UTF-16 byte order mark as UTF-16 (a BOM is
 * never valid UTF-8); `utf-16` is told by its BOM (little-endian without one). Byte order marks are not text:
 * skipped, never part of a line.
 */
export const ENCODINGS = ["utf-8", "utf-16", "utf-16le", "utf-16be", "latin1", "windows-1252"] as const;
export type Encoding = (typeof ENCODINGS)[number];

/** A buffer to read into, and its release once the chunk read into it is consumed. */
export interface ReadSlot {
  buffer: Buffer;
  release: () => void;
}

export interface TailerEvents {
  /** A complete record, in file order. Must not block: backpressure is `waitForRoom`. */
  record(tailer: FileTailer, record: JoinedRecord): void;
  /**
   * Backpressure and a bound on reads in progress at once: resolves with a buffer to read into (reused: nothing
   * may keep it after the chunk is consumed) and a release for after the chunk.
   */
  acquireRead(): Promise<ReadSlot>;
  /** The same, at once when there is room and nobody waits; undefined otherwise (then `acquireRead`). */
  tryAcquireRead?(): ReadSlot | undefined;
  /** `before` identifies the old content, to find a copy of it. */
  truncated(tailer: FileTailer, previousPosition: number, before: ContentBefore): void;
  binarySkipped(tailer: FileTailer): void;
  bytesRead(tailer: FileTailer, bytes: number): void;
}

/** What identified a file's content before it was truncated: to recognise a copy of it. */
export interface ContentBefore {
  fingerprint: string;
  fingerprintBytes: number;
  /** The fingerprinted bytes themselves, when kept. */
  prefix: Buffer | undefined;
  /** The size last seen before the truncation: at least this much old content existed. */
  size: number;
}

interface Chunk {
  data: Buffer;
  /** The file's first bytes changed by the time the read ended: `data` may not be the content we were reading. */
  replaced: boolean;
  release: () => void;
}

/**
 * Reads one file from an offset, splits it into lines, joins multiline records and hands them on in order.
 * It owns an open handle, so it keeps reading a file that was renamed or deleted (draining) to its end.
 */
export class FileTailer {
  readonly identity: FileIdentity;
  readonly input: string;
  #path: string;
  #state: TailerState = "active";
  #position: number;
  #ackedOffset: number;
  #generation = 0;
  #size = 0;
  #mtimeMs = 0;
  #lastGrowthAt = Date.now();
  #skipped = false;

  private readonly handle: FileHandle;
  private readonly maxLineBytes: number;
  private readonly encoding: Encoding;
  /** UTF-16 (as Windows programs often write their logs), once known: newlines are 0A 00 (LE) or 00 0A (BE). */
  private utf16: "le" | "be" | undefined;
  /** A single-byte encoding: every byte is a character. */
  private readonly singleByte: "latin1" | "windows-1252" | undefined;
  /** The first bytes were looked at for a byte order mark. */
  private sniffed = false;
  /** Where text begins: after the byte order mark, if any. */
  private textStart = 0;
  private readonly joiner: MultilineJoiner;
  private readonly events: TailerEvents;
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private partialStart = 0;
  private partialTruncated = false;
  private pumping: Promise<void> | undefined;
  private again = false;
  private stopping = false;
  /** Between two slices of a chunk: the record in progress may go on in the rest of it. */
  private midChunk = false;
  /** The bytes the fingerprint hashes, once read: later checks compare bytes instead of hashing them again. */
  private prefix: Buffer | undefined;

  constructor(options: {
    handle: FileHandle;
    path: string;
    input: string;
    identity: FileIdentity;
    offset: number;
    maxLineBytes: number;
    multiline: MultilineRule | undefined;
    events: TailerEvents;
    encoding?: Encoding;
  }) {
    this.encoding = options.encoding ?? "utf-8";
    this.utf16 = this.encoding === "utf-16le" ? "le" : this.encoding === "utf-16be" ? "be" : undefined;
    this.singleByte =
      this.encoding === "latin1" || this.encoding === "windows-1252" ? this.encoding : undefined;
    this.handle = options.handle;
    this.#path = options.path;
    this.input = options.input;
    this.identity = options.identity;
    this.#position = options.offset;
    this.#ackedOffset = options.offset;
    this.partialStart = options.offset;
    // A UTF-16 line is cut on a whole code unit (even when UTF-16 is only found by its byte order mark).
    this.maxLineBytes = options.maxLineBytes - (options.maxLineBytes % 2);
    this.events = options.events;
    this.joiner = new MultilineJoiner(options.multiline, (record) => this.events.record(this, record));
  }

  /** The path it was opened at, or renamed to while still matched (renamedTo). */
  get path(): string {
    return this.#path;
  }

  /** active: read as it grows; draining: renamed away or deleted, read to its end; closed. */
  get state(): TailerState {
    return this.#state;
  }

  /** Next byte to read. */
  get position(): number {
    return this.#position;
  }

  /** Everything below this offset is acknowledged by Kafka (or needed no record): the checkpoint. */
  get ackedOffset(): number {
    return this.#ackedOffset;
  }

  /** Bumped on truncation, so acknowledgements of records from before it are ignored (acknowledge). */
  get generation(): number {
    return this.#generation;
  }

  /** Size and modification time at the last read. */
  get size(): number {
    return this.#size;
  }

  get mtimeMs(): number {
    return this.#mtimeMs;
  }

  /** When the last read found new bytes. */
  get lastGrowthAt(): number {
    return this.#lastGrowthAt;
  }

  /** Skipped as binary: never read. */
  get skipped(): boolean {
    return this.#skipped;
  }

  /** The file is still matched, under a new name. */
  renamedTo(path: string): void {
    this.#path = path;
  }

  /** The path no longer leads to this file (renamed away, deleted): it is read to its end through its handle. */
  detach(): void {
    if (this.#state === "active") this.#state = "draining";
  }

  /**
   * Kafka acknowledged everything up to `endOffset` of the content of `generation`: the checkpoint may move there.
   * False when it did not move (an older generation's record, or an offset already passed).
   */
  acknowledge(generation: number, endOffset: number): boolean {
    if (generation !== this.#generation || endOffset <= this.#ackedOffset) return false;
    this.#ackedOffset = endOffset;
    return true;
  }

  /** The open handle's descriptor (a copy is compared with its original through it). */
  get fd(): number {
    return this.handle.fd;
  }

  /** The file's size now, through the open handle (it may be renamed or deleted). */
  currentSize(): number {
    return fstatSync(this.handle.fd).size;
  }

  /** The file's first bytes are no longer what it was read as (truncated and written again, not yet noticed). */
  contentChanged(): boolean {
    return this.contentReplaced();
  }

  /**
   * Moves the start of a file not read yet (a copy held back until its original said how far it was read):
   * everything before `offset` counts as shipped.
   */
  skipTo(offset: number): void {
    if (this.#position !== this.#ackedOffset || this.pumping || this.partialBytes > 0) {
      throw new Error(`skipTo on a file already being read: ${this.#path}`);
    }
    this.#position = offset;
    this.#ackedOffset = offset;
    this.partialStart = offset;
  }

  /** Reads whatever is new; concurrent calls coalesce into one more pass. */
  pump(): Promise<void> {
    if (this.#state === "closed") return Promise.resolve();
    if (this.pumping) {
      this.again = true;
      return this.pumping;
    }
    this.pumping = (async () => {
      try {
        do {
          this.again = false;
          await this.readToEnd();
        } while (this.again && !this.stopping && this.#state !== "closed");
      } finally {
        this.pumping = undefined;
      }
    })();
    return this.pumping;
  }

  /** Multiline timeout; a half-written line holds the record back. */
  tick(now: number): void {
    this.joiner.tick(now, this.partialBytes > 0 || this.midChunk);
  }

  /** True while bytes are read but not yet handed on (a partial line or a pending multiline record). */
  get holdsData(): boolean {
    return this.partialBytes > 0 || this.joiner.pending;
  }

  /** Ends the file: a trailing line without newline is complete now, the pending record too. */
  finish(): void {
    if (this.partialBytes > 0) this.emitPartialAsLine(this.#position);
    this.joiner.flush();
  }

  /** Completes the pending record without treating a partial line as complete (shutdown). */
  flushRecords(): void {
    this.joiner.flush();
  }

  async close(): Promise<void> {
    this.stopping = true;
    await this.pumping;
    if (this.#state === "closed") return;
    this.#state = "closed";
    await this.handle.close().catch(() => {});
  }

  private async readToEnd(): Promise<void> {
    for (;;) {
      const stat = fstatSync(this.handle.fd);
      const modified = stat.mtimeMs !== this.#mtimeMs;
      this.#size = stat.size;
      this.#mtimeMs = stat.mtimeMs;
      if (stat.size < this.#position) {
        this.restartAfterTruncation(stat.size);
        continue;
      }
      if (this.stopping || this.#skipped) return;
      if (!this.sniffed && !this.sniffByteOrderMark(stat.size)) return;
      // Same size but written since the last look: truncated and refilled to exactly our offset, maybe.
      if (stat.size === this.#position && !(modified && this.#position > 0 && this.contentReplaced())) return;
      if (stat.size === this.#position) {
        this.restartAfterTruncation(stat.size);
        continue;
      }
      if (this.identity.fingerprintBytes < FINGERPRINT_BYTES && stat.size > this.identity.fingerprintBytes) {
        // Truncated and written again past our offset between two looks (copytruncate under heavy writes)? Asked
        // before the fingerprint grows over the new bytes; otherwise the check after each read answers it.
        if (this.#position > 0 && this.contentReplaced()) {
          this.restartAfterTruncation(stat.size);
          continue;
        }
        // Only ever extended over bytes already there, so it stays a prefix of the same content.
        const prefix = readPrefix(this.handle, Math.min(stat.size, FINGERPRINT_BYTES));
        this.identity.fingerprint = hashPrefix(prefix);
        this.identity.fingerprintBytes = prefix.length;
        this.prefix = ownCopy(prefix);
      }
      // The next chunk's buffer is asked for while this one is consumed, so a wait for room overlaps the work.
      // A chunk read at once is used at once: a small read then runs to its end without a turn of the event loop.
      let next: Chunk | Promise<Chunk> | undefined =
        this.#position < stat.size ? this.readChunk(this.#position, stat.size) : undefined;
      try {
        while (next) {
          const chunk = next instanceof Promise ? await next : next;
          next = undefined;
          const { data } = chunk;
          try {
            if (chunk.replaced) {
              // Truncated (and maybe refilled) around this read: the chunk may be new content at an old offset.
              // Drop it; everything before it was checked against the fingerprint and is the old content.
              this.restartAfterTruncation(stat.size);
              break;
            }
            if (data.length === 0 || this.stopping) break;
            // UTF-16 text is full of zero bytes: only 8-bit inputs are sniffed for binary content.
            if (
              !this.utf16 &&
              this.#position === this.textStart &&
              data.subarray(0, BINARY_SNIFF_BYTES).includes(0)
            ) {
              this.#skipped = true;
              this.#position = stat.size;
              this.#ackedOffset = stat.size;
              this.events.binarySkipped(this);
              return;
            }
            const end = this.#position + data.length;
            if (end < stat.size) {
              next = this.readChunk(end, stat.size);
              // Awaited after the slices below; until then a failed read must not count as unhandled.
              if (next instanceof Promise) next.catch(() => {});
            }
            // In slices ending at a newline, with a turn of the event loop between them: Kafka's compression and
            // acknowledgements wait for this thread, and with one request in flight that wait sets the pace
            // (faster than whole 256 KiB chunks: bench/tuning.md).
            let from = 0;
            this.midChunk = true;
            try {
              while (data.length - from > CONSUME_SLICE_BYTES) {
                const cut = data.lastIndexOf(10, from + CONSUME_SLICE_BYTES);
                if (cut < from) break;
                this.consume(data.subarray(from, cut + 1));
                this.#position += cut + 1 - from;
                from = cut + 1;
                await new Promise<void>((resolve) => setImmediate(resolve));
              }
              this.consume(data.subarray(from));
            } finally {
              this.midChunk = false;
            }
            this.#position = end;
            this.#lastGrowthAt = Date.now();
            this.events.bytesRead(this, data.length);
          } finally {
            chunk.release();
          }
        }
      } finally {
        // A chunk read ahead but not consumed (stopped, truncated, skipped): only its buffer goes back.
        if (next instanceof Promise) {
          next.then(
            (chunk) => chunk.release(),
            () => {},
          );
        } else next?.release();
      }
      // Read to the size seen: done. What was written since comes with its own watch event (`pump` runs again)
      // or the next reconcile pass; looking again here cost a stat per change event, at a thousand busy files.
      if (this.#position >= stat.size) return;
    }
  }

  /**
   * Looks at the first bytes once for a byte order mark: it decides UTF-16's byte order (and UTF-16 for a `utf-8`
   * input), and reading starts after it. False while the file is too short to tell.
   */
  private sniffByteOrderMark(size: number): boolean {
    if (size === 0) return false;
    const head = Buffer.alloc(3);
    const read = readSync(this.handle.fd, head, 0, 3, 0);
    const [a, b, c] = head;
    const utf8Bom = a === 0xef && b === 0xbb && c === 0xbf;
    const le = a === 0xff && b === 0xfe;
    const be = a === 0xfe && b === 0xff;
    // Maybe the start of a mark: wait for the third byte (a two-byte file that is all mark has no text yet).
    if (read < 3 && (a === 0xef || a === 0xff || a === 0xfe)) return false;
    this.sniffed = true;
    let mark = 0;
    if (this.singleByte) return true;
    if (this.encoding === "utf-8") {
      if (utf8Bom) mark = 3;
      else if (le || be) {
        this.utf16 = le ? "le" : "be";
        mark = 2;
      }
    } else if (this.encoding === "utf-16") {
      this.utf16 = be ? "be" : "le";
      if (le || be) mark = 2;
    } else if ((this.utf16 === "le" && le) || (this.utf16 === "be" && be)) {
      mark = 2;
    }
    this.textStart = mark;
    if (mark > 0 && this.#position === 0 && this.#ackedOffset === 0) {
      this.#position = mark;
      this.#ackedOffset = mark;
      this.partialStart = mark;
    }
    return true;
  }

  /**
   * Reads `[position, size)` up to a buffer's length, then checks the file still holds the same content.
   * Reads (and stats) are synchronous: from the page cache they take microseconds, less than an asynchronous
   * read's round trip through the thread pool (less CPU and system time: bench/tuning.md). A stalled disk stalls
   * every file either way: the thread pool has four threads.
   */
  private readChunk(position: number, size: number): Chunk | Promise<Chunk> {
    const slot = this.events.tryAcquireRead?.();
    if (slot) return this.readInto(slot, position, size);
    return this.events.acquireRead().then((waited) => this.readInto(waited, position, size));
  }

  private readInto({ buffer, release }: ReadSlot, position: number, size: number): Chunk {
    try {
      const length = Math.min(buffer.length, size - position);
      const bytesRead = readSync(this.handle.fd, buffer, 0, length, position);
      const replaced = bytesRead > 0 && this.contentReplaced();
      return { data: buffer.subarray(0, bytesRead), replaced, release };
    } catch (error) {
      release();
      throw error;
    }
  }

  /** The first bytes no longer match the fingerprint: the file was truncated and refilled. */
  private contentReplaced(): boolean {
    const { fingerprint, fingerprintBytes } = this.identity;
    if (fingerprintBytes === 0) return false;
    // A short read (the file is now shorter than the fingerprint) differs too: also replaced.
    const known = this.prefix;
    if (known?.length === fingerprintBytes) {
      // Into a buffer shared by every tailer (read and compared at once): no allocation per read.
      const read = readSync(this.handle.fd, prefixScratch, 0, fingerprintBytes, 0);
      return (
        read !== fingerprintBytes ||
        prefixScratch.compare(known, 0, fingerprintBytes, 0, fingerprintBytes) !== 0
      );
    }
    const current = readPrefix(this.handle, fingerprintBytes);
    if (hashPrefix(current) !== fingerprint) return true;
    this.prefix = ownCopy(current);
    return false;
  }

  private restartAfterTruncation(newSize: number): void {
    // A half-read line of the old content is not a line: whoever reads the copy reads it whole from its start.
    const previous = this.partialBytes > 0 ? this.partialStart : this.#position;
    const before: ContentBefore = {
      fingerprint: this.identity.fingerprint,
      fingerprintBytes: this.identity.fingerprintBytes,
      prefix: this.prefix?.length === this.identity.fingerprintBytes ? this.prefix : undefined,
      size: this.#size,
    };
    this.resetPartial(0);
    this.joiner.flush();
    this.#generation++;
    this.#position = 0;
    this.#ackedOffset = 0;
    this.partialStart = 0;
    this.#size = newSize;
    this.identity.fingerprint = hashPrefix(Buffer.alloc(0));
    this.identity.fingerprintBytes = 0;
    this.prefix = undefined;
    this.events.truncated(this, previous, before);
  }

  private consume(chunk: Buffer): void {
    if (this.utf16) {
      this.consumeUtf16(chunk);
      return;
    }
    let start = 0;
    const now = Date.now();
    // Once: after a bad byte, the rest of this chunk goes line by line.
    let wholeLinesTried = false;
    for (;;) {
      if (this.partialBytes === 0 && !wholeLinesTried) {
        start = this.consumeWholeLines(chunk, start, now);
        wholeLinesTried = true;
      }
      const newline = chunk.indexOf(10, start);
      if (newline === -1) {
        this.appendPartial(chunk.subarray(start));
        return;
      }
      const end = this.#position + newline + 1;
      if (this.partialBytes === 0) {
        this.emitLine(chunk.subarray(start, newline), this.#position + start, end, false, now);
      } else {
        this.appendPartial(chunk.subarray(start, newline));
        const line = this.partial.length === 1 ? (this.partial[0] as Buffer) : Buffer.concat(this.partial);
        const truncated = this.partialTruncated;
        const lineStart = this.partialStart;
        this.resetPartial(end);
        this.emitLine(line, lineStart, end, truncated, now);
      }
      start = newline + 1;
      this.partialStart = this.#position + start;
    }
  }

  /**
   * The common case, decoded once for the whole run of complete lines instead of once per line: valid UTF-8 up to
   * the chunk's last newline. Returns where the per-line path takes over (a bad byte, a partial line at the end).
   * A newline is one byte in UTF-8 and one unit in the decoded text, so byte and text positions move in step.
   */
  private consumeWholeLines(chunk: Buffer, from: number, now: number): number {
    const last = chunk.lastIndexOf(10);
    if (last < from) return from;
    const region = chunk.subarray(from, last + 1);
    const ascii = isAscii(region);
    // ASCII is the same text in every 8-bit encoding here; other bytes of latin1 or windows-1252 go line by line.
    if (!ascii && (this.singleByte || !isUtf8(region))) return from;
    const text = region.toString(ascii ? "latin1" : "utf8");
    let byteStart = from;
    let textStart = 0;
    while (byteStart <= last) {
      const textEnd = text.indexOf("\n", textStart);
      const byteEnd = ascii ? from + textEnd : chunk.indexOf(10, byteStart);
      const end = this.#position + byteEnd + 1;
      const carriageReturn = textEnd > textStart && text.charCodeAt(textEnd - 1) === 13 ? 1 : 0;
      const bytes = byteEnd - byteStart - carriageReturn;
      if (bytes > this.maxLineBytes) {
        this.emitLine(chunk.subarray(byteStart, byteEnd), this.#position + byteStart, end, false, now);
      } else if (bytes === 0) {
        this.joiner.pushBlank(end, now);
      } else {
        const line = text.slice(textStart, textEnd - carriageReturn);
        this.joiner.push(line, bytes, this.#position + byteStart, end, NO_FLAGS, now, chunk, byteStart);
      }
      byteStart = byteEnd + 1;
      textStart = textEnd + 1;
    }
    this.partialStart = this.#position + byteStart;
    return byteStart;
  }

  /**
   * UTF-16LE: the partial line and the chunk are searched together (a newline's two bytes may straddle two
   * chunks), code unit by code unit from the line's start, which is always at an even offset. What follows the
   * last newline stays partial. Offsets are bytes, like UTF-8's.
   */
  private consumeUtf16(chunk: Buffer): void {
    const held = this.partialBytes > 0;
    const base = held ? this.partialStart : this.#position;
    const data = held ? Buffer.concat([...this.partial, chunk]) : chunk;
    const now = Date.now();
    // A newline is the code unit 000A: its 0A byte first (LE) or second (BE).
    const [low, high] = this.utf16 === "be" ? [1, 0] : [0, 1];
    let lineStart = 0;
    for (let i = 0; i + 1 < data.length; i += 2) {
      if (data[i + low] !== 0x0a || data[i + high] !== 0) continue;
      this.emitLine(data.subarray(lineStart, i), base + lineStart, base + i + 2, false, now);
      lineStart = i + 2;
    }
    const truncated = held && this.partialTruncated && lineStart === 0;
    this.resetPartial(base + lineStart);
    this.appendPartial(data.subarray(lineStart));
    if (truncated) this.partialTruncated = true;
  }

  private appendPartial(piece: Buffer): void {
    if (piece.length === 0) return;
    const room = this.maxLineBytes - this.partialBytes;
    if (room <= 0) {
      this.partialTruncated = true;
      return;
    }
    const kept = piece.length > room ? piece.subarray(0, room) : piece;
    if (kept.length < piece.length) this.partialTruncated = true;
    // Copy: the read buffer is reused for the next chunk.
    this.partial.push(Buffer.from(kept));
    this.partialBytes += kept.length;
  }

  private resetPartial(nextStart: number): void {
    this.partial = [];
    this.partialBytes = 0;
    this.partialTruncated = false;
    this.partialStart = nextStart;
  }

  private emitPartialAsLine(end: number): void {
    const line = Buffer.concat(this.partial);
    const truncated = this.partialTruncated;
    const start = this.partialStart;
    this.resetPartial(end);
    this.emitLine(line, start, end, truncated, Date.now());
  }

  private emitLine(raw: Buffer, start: number, end: number, truncated: boolean, now: number): void {
    if (this.utf16) {
      this.emitUtf16Line(raw, start, end, truncated, now);
      return;
    }
    let line = raw.length > 0 && raw[raw.length - 1] === 13 ? raw.subarray(0, raw.length - 1) : raw;
    if (line.length > this.maxLineBytes) {
      line = line.subarray(0, this.maxLineBytes);
      truncated = true;
    }
    if (line.length === 0) {
      // A blank line makes no record of its own, but may belong to a multiline one (Go panics have them).
      this.joiner.pushBlank(end, now);
      return;
    }
    if (this.singleByte) {
      // Every byte is a character: nothing is invalid.
      const text = this.singleByte === "latin1" ? line.toString("latin1") : windows1252.decode(line);
      this.joiner.push(text, line.length, start, end, truncated ? new Set(["truncated"]) : NO_FLAGS, now);
      return;
    }
    const valid = isUtf8(line);
    const text = valid ? line.toString("utf8") : new TextDecoder("utf-8", { fatal: false }).decode(line);
    let flags: ReadonlySet<string> = NO_FLAGS;
    if (truncated || !valid) {
      flags = new Set([...(truncated ? ["truncated"] : []), ...(valid ? [] : ["invalid_utf8"])]);
    }
    this.joiner.push(text, line.length, start, end, flags, now);
  }

  private emitUtf16Line(raw: Buffer, start: number, end: number, truncated: boolean, now: number): void {
    const [low, high] = this.utf16 === "be" ? [2, 1] : [1, 2];
    let line =
      raw.length >= 2 && raw[raw.length - high] === 13 && raw[raw.length - low] === 0
        ? raw.subarray(0, -2)
        : raw;
    if (line.length > this.maxLineBytes) {
      line = line.subarray(0, this.maxLineBytes);
      truncated = true;
    }
    if (line.length === 0) {
      this.joiner.pushBlank(end, now);
      return;
    }
    let text: string;
    let valid = true;
    const decoders = this.utf16 === "be" ? utf16be : utf16le;
    try {
      text = decoders.strict.decode(line);
    } catch {
      valid = false;
      text = decoders.lenient.decode(line);
    }
    let flags: ReadonlySet<string> = NO_FLAGS;
    if (truncated || !valid) {
      flags = new Set([...(truncated ? ["truncated"] : []), ...(valid ? [] : ["invalid_utf16"])]);
    }
    this.joiner.push(text, line.length, start, end, flags, now);
  }
}

/** Decodes UTF-16 strictly: a lone surrogate or an odd byte makes the line `invalid_utf16` (decoded leniently). */
const utf16le = {
  strict: new TextDecoder("utf-16le", { fatal: true }),
  lenient: new TextDecoder("utf-16le"),
};
const utf16be = {
  strict: new TextDecoder("utf-16be", { fatal: true }),
  lenient: new TextDecoder("utf-16be"),
};
/** windows-1252 as the WHATWG Encoding Standard defines it (what browsers and .NET's Encoding.GetEncoding(1252) read). */
const windows1252 = new TextDecoder("windows-1252");

/** Where `contentReplaced` reads a file's first bytes to compare them with what they were. */
const prefixScratch = Buffer.allocUnsafeSlow(FINGERPRINT_BYTES);

/** A copy in memory of its own: a small Buffer is a slice of a 64 KiB slab (Node's pool) that it would keep alive. */
function ownCopy(bytes: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(copy);
  return copy;
}
