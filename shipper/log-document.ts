import { AFTER_TIMESTAMP, EVENT_ID_KEY, formatTail, LOG_HEAD } from "../core/ecs/log-layout.ts";
import { SCHEMA_VERSION } from "../core/events.ts";
import type { RecordWriter } from "../core/kafka/batch-producer.ts";
import type { ExtractedFields } from "./parse/fields.ts";

/** What stays the same for every record of one file. */
export interface FileContext {
  dataset: string;
  hostName: string;
  service: { name: string; environment?: string | undefined } | undefined;
  labels: Record<string, string>;
}

export interface LogLine {
  eventId: string;
  path: string;
  text: string;
  lineCount: number;
  startOffset: number;
  flags: ReadonlySet<string>;
  fields: ExtractedFields;
}

/**
 * Writes the shipper's ECS log document as JSON text directly: the document `JSON.stringify` makes of the
 * object (test/unit/log-document.test.ts holds them equal), without building the object. The shipper makes one per
 * line, and building then serialising was a quarter of its CPU. Per-line values are escaped here; the parts
 * that are the same for the whole file are serialised once.
 */
export class LogDocumentTemplate implements RecordWriter {
  private readonly dataset: string;
  private readonly afterOffset: string;
  private readonly labels: string;
  private path = "";
  private pathPart = "";
  /** The prepared plain document's size (RecordWriter). */
  bytes = 0;
  private readonly plain: PlainParts;
  private plainFileId = "";
  private source: Buffer = EMPTY;
  private sourceStart = 0;
  private sourceLength = 0;
  private sourceEscapes = 0;
  private offset = 0;
  private offsetDigits36 = 0;
  private offsetDigits10 = 0;
  private traceId: string | undefined;
  private spanId: string | undefined;
  /** The line's own time (shipper/parse/timestamp.ts), or undefined: the read time is `@timestamp`. */
  private timestamp: string | undefined;

  constructor(context: FileContext) {
    this.dataset = `,"dataset":${JSON.stringify(context.dataset)}`;
    const service = context.service ? `,"service":${JSON.stringify(context.service)}` : "";
    this.afterOffset = `},"host":{"name":${JSON.stringify(context.hostName)}}${service}`;
    this.labels = Object.keys(context.labels).length > 0 ? `,"labels":${JSON.stringify(context.labels)}` : "";
    this.plain = {
      eventId: EMPTY,
      afterEventId: EMPTY,
      afterOffset: ownBytes(this.afterOffset),
      tail: ownBytes(`${this.labels},"lifeline":{"schema_version":${SCHEMA_VERSION},${formatTail("plain")}`),
    };
  }

  /**
   * Prepares the document of a plain-text line (one physical line, no flags) whose bytes are
   * `source[start, start + length)`, valid UTF-8, for `writeInto`: the very bytes of `write` for that line
   * (test/unit/log-document.test.ts), copied from the read buffer and escaped as JSON.stringify escapes them,
   * without making the line's JSON text. Sets and returns `bytes`.
   */
  preparePlain(
    source: Buffer,
    start: number,
    length: number,
    fileId: string,
    path: string,
    startOffset: number,
    traceId: string | undefined,
    spanId: string | undefined,
    timestamp: string | undefined,
  ): number {
    const plain = this.plain;
    if (fileId !== this.plainFileId) {
      this.plainFileId = fileId;
      plain.eventId = ownBytes(`"${EVENT_ID_KEY}${fileId}`);
    }
    if (path !== this.path) this.setPath(path);
    let escapes = 0;
    for (let i = start, end = start + length; i < end; i++)
      escapes += ESCAPE_EXTRA[source[i] as number] as number;
    this.source = source;
    this.sourceStart = start;
    this.sourceLength = length;
    this.sourceEscapes = escapes;
    this.offset = startOffset;
    this.offsetDigits36 = digits(startOffset, 36);
    this.offsetDigits10 = digits(startOffset, 10);
    this.traceId = traceId;
    this.spanId = spanId;
    this.timestamp = timestamp;
    this.bytes =
      PLAIN_HEAD.length +
      24 +
      PLAIN_MESSAGE.length +
      length +
      escapes +
      plain.eventId.length +
      this.offsetDigits36 +
      (timestamp ? PLAIN_CREATED.length + 24 : 0) +
      plain.afterEventId.length +
      this.offsetDigits10 +
      plain.afterOffset.length +
      (traceId ? PLAIN_TRACE.length + traceId.length + 2 : 0) +
      (spanId ? PLAIN_SPAN.length + spanId.length + 2 : 0) +
      plain.tail.length;
    return this.bytes;
  }

  /** A file renamed (or a copy of it) is written under its new path: the parts that hold the path. */
  private setPath(path: string): void {
    this.path = path;
    this.pathPart = `},"log":{"file":{"path":${JSON.stringify(path)}},"offset":`;
    this.plain.afterEventId = ownBytes(`"${this.dataset}${this.pathPart}`);
  }

  writeInto(target: Buffer, offset: number): void {
    const plain = this.plain;
    let at = put(target, offset, PLAIN_HEAD);
    at = putAscii(target, at, this.timestamp ?? isoNow());
    at = put(target, at, PLAIN_MESSAGE);
    const { source, sourceStart: start, sourceLength: length } = this;
    if (this.sourceEscapes === 0) at += source.copy(target, at, start, start + length);
    else at = putEscaped(target, at, source, start, start + length);
    at = put(target, at, plain.eventId);
    at = putInteger(target, at, this.offset, 36, this.offsetDigits36);
    // `"created":"<read time>` (afterEventId begins with the closing quote) when @timestamp is the line's own.
    if (this.timestamp) at = putAscii(target, put(target, at, PLAIN_CREATED), isoNow());
    at = put(target, at, plain.afterEventId);
    at = putInteger(target, at, this.offset, 10, this.offsetDigits10);
    at = put(target, at, plain.afterOffset);
    if (this.traceId) at = putId(target, at, PLAIN_TRACE, this.traceId);
    if (this.spanId) at = putId(target, at, PLAIN_SPAN, this.spanId);
    put(target, at, plain.tail);
    // Ids are slices of the whole chunk's text and the source is a read buffer: kept, they would hold both.
    this.source = EMPTY;
    this.traceId = undefined;
    this.spanId = undefined;
    this.timestamp = undefined;
  }

  write(line: LogLine): string {
    if (line.path !== this.path) this.setPath(line.path);
    const { fields, flags } = line;
    const plain = fields.format === "plain";
    const message = plain || line.lineCount > 1 ? line.text : (fields.message ?? line.text);
    // Timestamps come out of toISOString, event ids are base64url, trace and span ids validated hex: no escaping.
    // @timestamp is the line's own time when it has one, and event.created the time it was read; else the read time.
    const created = fields.timestamp ? `,"created":"${isoNow()}"` : "";
    let json = `${LOG_HEAD}${fields.timestamp ?? isoNow()}${AFTER_TIMESTAMP}${JSON.stringify(message)}${EVENT_ID_KEY}${line.eventId}"${created}${this.dataset}`;
    if (!plain) json += `,"original":${JSON.stringify(line.text)}`;
    json += `${this.pathPart}${line.startOffset}`;
    if (fields.level) json += `,"level":${JSON.stringify(fields.level)}`;
    if (flags.size > 0) json += `,"flags":${JSON.stringify([...flags])}`;
    json += this.afterOffset;
    if (fields.traceId) json += `,"trace":{"id":"${fields.traceId}"}`;
    if (fields.spanId) json += `,"span":{"id":"${fields.spanId}"}`;
    return `${json}${this.labels},"lifeline":{"schema_version":${SCHEMA_VERSION},${formatTail(fields.format)}`;
  }
}

interface PlainParts {
  /** `","event":{"id":"` and the file id: the event id's base-36 offset follows. */
  eventId: Buffer;
  /** The event id's closing quote, the dataset, the file path, up to the offset. */
  afterEventId: Buffer;
  afterOffset: Buffer;
  tail: Buffer;
}

const EMPTY = Buffer.alloc(0);

/**
 * A file's parts, kept as long as the file is read, in memory of their own: from Buffer.from, each would be a slice
 * of Node's shared 64 KiB pool and keep a whole slab alive (bench/tuning.md).
 */
function ownBytes(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  bytes.write(text);
  return bytes;
}
const PLAIN_HEAD = Buffer.from(LOG_HEAD);
const PLAIN_MESSAGE = Buffer.from(`${AFTER_TIMESTAMP}"`);
const PLAIN_CREATED = Buffer.from(`","created":"`);
const PLAIN_TRACE = Buffer.from(`,"trace":{"id":"`);
const PLAIN_SPAN = Buffer.from(`,"span":{"id":"`);
const HEX = Buffer.from("0123456789abcdef");
const DIGITS = Buffer.from("0123456789abcdefghijklmnopqrstuvwxyz");

/** JSON.stringify's two-character escapes of control characters (\b \t \n \f \r); 0: written as \u00XX. */
const SHORT_ESCAPES = new Uint8Array(0x20);
SHORT_ESCAPES[0x08] = 0x62;
SHORT_ESCAPES[0x09] = 0x74;
SHORT_ESCAPES[0x0a] = 0x6e;
SHORT_ESCAPES[0x0c] = 0x66;
SHORT_ESCAPES[0x0d] = 0x72;

/** The bytes an escape adds, per byte value: a table lookup per byte, no branches. */
const ESCAPE_EXTRA = new Uint8Array(256);
for (let byte = 0; byte < 0x20; byte++) ESCAPE_EXTRA[byte] = SHORT_ESCAPES[byte] === 0 ? 5 : 1;
ESCAPE_EXTRA[0x22] = 1;
ESCAPE_EXTRA[0x5c] = 1;

function put(target: Buffer, at: number, bytes: Buffer): number {
  target.set(bytes, at);
  return at + bytes.length;
}

/** Text known to be ASCII (timestamps, validated hex ids). */
function putAscii(target: Buffer, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) target[at + i] = text.charCodeAt(i);
  return at + text.length;
}

function putId(target: Buffer, at: number, head: Buffer, id: string): number {
  at = putAscii(target, put(target, at, head), id);
  target[at] = 0x22; // "
  target[at + 1] = 0x7d; // }
  return at + 2;
}

function putEscaped(target: Buffer, at: number, source: Buffer, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    const byte = source[i] as number;
    if (byte >= 0x20 && byte !== 0x22 && byte !== 0x5c) {
      target[at++] = byte;
    } else if (byte >= 0x20) {
      target[at++] = 0x5c;
      target[at++] = byte;
    } else if (SHORT_ESCAPES[byte] !== 0) {
      target[at++] = 0x5c;
      target[at++] = SHORT_ESCAPES[byte] as number;
    } else {
      target[at++] = 0x5c;
      target[at++] = 0x75; // u
      target[at++] = 0x30;
      target[at++] = 0x30;
      target[at++] = HEX[byte >> 4] as number;
      target[at++] = HEX[byte & 15] as number;
    }
  }
  return at;
}

/** How many digits `value` (a non-negative safe integer) has in `radix`, as Number#toString writes it. */
function digits(value: number, radix: number): number {
  let count = 1;
  while (value >= radix) {
    value = quotient(value, radix);
    count++;
  }
  return count;
}

/** `value` in `radix`, `count` digits long (its `digits`). */
function putInteger(target: Buffer, at: number, value: number, radix: number, count: number): number {
  const end = at + count;
  let i = end;
  do {
    target[--i] = DIGITS[value % radix] as number;
    value = quotient(value, radix);
  } while (value > 0);
  return end;
}

/** Integer division: in 32-bit integers while the value fits (offsets below 2 GiB), else in doubles. */
function quotient(value: number, radix: number): number {
  return value < 0x80000000 ? (value / radix) | 0 : Math.floor(value / radix);
}

let lastMs = -1;
let lastIso = "";

/** Lines read in the same millisecond share one ISO string. */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}
