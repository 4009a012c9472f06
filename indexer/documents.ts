import { PermanentError } from "../core/errors.ts";
import { deterministicId } from "../core/events.ts";
import { isValidSpanId, isValidTraceId } from "../core/trace-context.ts";
import type { StreamKind } from "./index-setup.ts";

export interface IndexableDocument {
  kind: StreamKind;
  id: string;
  document: Record<string, unknown>;
  /** What was changed so that Elasticsearch stores the document (also in its `lifeline.flags`). */
  flags?: DegradeFlag[];
}

/**
 * A document is stored, not refused, when fields parsed from a log line (or a span's attributes) go past what a
 * flattened field takes; what was done is named in `lifeline.flags`:
 * - `long_value_not_indexed`: a value longer than FLATTENED_IGNORE_ABOVE characters is kept in `_source` but not
 *   indexed (Lucene refuses terms over 32,766 bytes, which refused the whole document).
 * - `depth_limited`: objects nested deeper than FLATTENED_DEPTH_LIMIT are kept as their JSON text at that depth
 *   (a flattened field refuses the whole document past its depth_limit).
 */
export type DegradeFlag = "long_value_not_indexed" | "depth_limited";

/** index-setup.ts maps every flattened field with this ignore_above: 4 bytes a character stays under Lucene's limit. */
export const FLATTENED_IGNORE_ABOVE = 8_191;
/** Elasticsearch's default depth_limit for flattened fields. */
export const FLATTENED_DEPTH_LIMIT = 20;

/** Where a record came from: the dead letter and the fallback id name it. */
export interface RecordOrigin {
  topic: string;
  partition: number;
  offset: string;
  /** Position of the document inside a packed message. */
  index: number;
}

const MAX_CLOCK_SKEW_MS = 24 * 3600 * 1000;

/**
 * Turns one JSON document from Kafka into the document to index. Throws PermanentError (→ dead letter) for what
 * no retry can fix: not JSON, not an object. The id is the record's event.id (deterministic at the source), or
 * one derived from its Kafka position, so a re-delivery is the same document.
 */
export function toDocument(
  kind: StreamKind,
  text: string,
  origin: RecordOrigin,
  now = new Date(),
): IndexableDocument {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new PermanentError("indexer.not_json", `not JSON: ${(error as Error).message}`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new PermanentError("indexer.not_object", "not a JSON object");
  }
  const document = parsed as Record<string, unknown>;
  const event = (isObject(document.event) ? document.event : {}) as Record<string, unknown>;
  const id =
    typeof event.id === "string" && event.id.length > 0 && event.id.length <= 512
      ? event.id
      : deterministicId(origin.topic, origin.partition, origin.offset, origin.index);
  document.event = { ...event, id, ingested: isoString(now) };
  fixTimestamp(document, now);
  if (kind === "logs") promoteParsedFields(document);
  if (kind === "spans") spanDocument(document);
  dropInvalidIds(document);
  const flags = fitFlattenedFields(document);
  return flags ? { kind, id, document, flags } : { kind, id, document };
}

/** The flattened fields of index-setup.ts's mappings: where a document's own keys become terms. */
const FLATTENED_PATHS: ReadonlyArray<readonly string[]> = [
  ["labels"],
  ["lifeline", "fields"],
  ["lifeline", "resource"],
  ["lifeline", "attributes"],
  ["lifeline", "claimed"],
];

/** Makes each flattened field storable; the flags say what changed (also added to `lifeline.flags`). */
function fitFlattenedFields(document: Record<string, unknown>): DegradeFlag[] | undefined {
  const found = new Set<DegradeFlag>();
  for (const path of FLATTENED_PATHS) {
    let parent: Record<string, unknown> = document;
    for (const key of path.slice(0, -1)) {
      const next = parent[key];
      if (!isObject(next)) {
        parent = {};
        break;
      }
      parent = next;
    }
    const key = path[path.length - 1] as string;
    const value = parent[key];
    if (isObject(value) || Array.isArray(value)) parent[key] = fitValue(value, 1, found);
    else if (typeof value === "string" && value.length > FLATTENED_IGNORE_ABOVE)
      found.add("long_value_not_indexed");
  }
  if (found.size === 0) return undefined;
  const flags = [...found];
  const lifeline = (isObject(document.lifeline) ? document.lifeline : {}) as Record<string, unknown>;
  const before = Array.isArray(lifeline.flags) ? (lifeline.flags as unknown[]) : [];
  document.lifeline = { ...lifeline, flags: [...new Set([...before, ...flags])] };
  return flags;
}

/**
 * One value of a flattened field at `depth` (its top-level object is depth 1): objects past the depth limit become
 * their JSON text; long strings are left as they are (the mapping's ignore_above keeps them out of the index).
 */
function fitValue(value: unknown, depth: number, found: Set<DegradeFlag>): unknown {
  if (typeof value === "string") {
    if (value.length > FLATTENED_IGNORE_ABOVE) found.add("long_value_not_indexed");
    return value;
  }
  if (Array.isArray(value)) return value.map((item) => fitValue(item, depth, found));
  if (!isObject(value)) return value;
  if (depth > FLATTENED_DEPTH_LIMIT) {
    found.add("depth_limited");
    const text = JSON.stringify(value);
    if (text.length > FLATTENED_IGNORE_ABOVE) found.add("long_value_not_indexed");
    return text;
  }
  let changed: Record<string, unknown> | undefined;
  for (const [key, inner] of Object.entries(value)) {
    const fitted = fitValue(inner, depth + 1, found);
    if (fitted !== inner) {
      changed ??= { ...value };
      changed[key] = fitted;
    }
  }
  return changed ?? value;
}

/**
 * A shipper document as it came from Kafka, a region of the message's bytes: indexed as it is, with
 * `"ingested":"<time>",` put in at `insertAt` (the start of the `event` object's members); its id is the bytes
 * from `idStart` to `idEnd`, printable ASCII without quote or backslash, so they are JSON as they are.
 */
export interface RawDocument {
  buffer: Buffer;
  start: number;
  insertAt: number;
  end: number;
  idStart: number;
  idEnd: number;
  batch: RawBatch;
}

/** What the raw documents of one batch share: the bulk action's start, and `"ingested":"<now>",`. */
export interface RawBatch {
  now: number;
  actionHead: Buffer;
  ingested: Buffer;
}

/** The bulk action line up to the document's id: `{"create":{"_index":"<index>","_id":` */
export function actionHead(index: string): string {
  return `{"create":{"_index":${JSON.stringify(index)},"_id":`;
}

export function rawBatch(index: string, now: Date): RawBatch {
  return {
    now: now.getTime(),
    actionHead: Buffer.from(`${actionHead(index)}"`),
    ingested: Buffer.from(`"ingested":"${now.toISOString()}",`),
  };
}

const SHIPPER_HEAD = Buffer.from('{"@timestamp":"');
const AFTER_TIMESTAMP = Buffer.from('","message":');
const SHIPPER_EVENT = Buffer.from(',"event":{"id":"');
const PLAIN_TAIL = Buffer.from('"format":"plain"}}');
const LOGFMT_TAIL = Buffer.from('"format":"logfmt"}}');
const TIMESTAMP_AT = SHIPPER_HEAD.length;
const TIMESTAMP_END = TIMESTAMP_AT + 24;

/**
 * The shipper's plain-text and logfmt log documents (shipper/log-document.ts) need nothing from the indexer but
 * `event.ingested`: this recognises their exact layout in the Kafka message's bytes, so they go into the bulk
 * request without being decoded, parsed or serialised (most of the indexer's CPU per document, on cores
 * Elasticsearch needs). Anything else, or anything the full path would change (a timestamp it would rewrite, JSON
 * fields to promote, an id that needs escaping), is undefined: `toDocument` handles it. Bytes that only look like
 * the layout but are not JSON are refused by Elasticsearch, item by item, and dead-lettered with the reason like
 * any mapping error.
 */
export function shipperLogDocument(
  buffer: Buffer,
  start: number,
  end: number,
  batch: RawBatch,
): RawDocument | undefined {
  if (end - start < TIMESTAMP_END + AFTER_TIMESTAMP.length + LOGFMT_TAIL.length) return undefined;
  if (!bytesAt(buffer, start, SHIPPER_HEAD) || !bytesAt(buffer, start + TIMESTAMP_END, AFTER_TIMESTAMP)) {
    return undefined;
  }
  if (
    !bytesAt(buffer, end - PLAIN_TAIL.length, PLAIN_TAIL) &&
    !bytesAt(buffer, end - LOGFMT_TAIL.length, LOGFMT_TAIL)
  ) {
    return undefined;
  }
  const time = canonicalTime(buffer, start + TIMESTAMP_AT);
  if (time === undefined || time >= batch.now + MAX_CLOCK_SKEW_MS) return undefined;
  // A JSON string holds no unescaped quote, so the first `,"event":{"id":"` is the key itself, not message text.
  const event = buffer.indexOf(SHIPPER_EVENT, start + TIMESTAMP_END);
  if (event === -1 || event >= end) return undefined;
  const idStart = event + SHIPPER_EVENT.length;
  let idEnd = idStart;
  for (; idEnd < end; idEnd++) {
    const byte = buffer[idEnd] as number;
    if (byte === 34 /* " */) break;
    if (byte < 0x20 || byte > 0x7e || byte === 92 /* \ */) return undefined;
  }
  if (idEnd === end || idEnd === idStart || idEnd - idStart > 512) return undefined;
  return { buffer, start, insertAt: idStart - '"id":"'.length, end, idStart, idEnd, batch };
}

/** The document's JSON text (for a dead letter, a test). */
export function rawDocumentText(raw: RawDocument): string {
  const { buffer, start, insertAt, end, batch } = raw;
  return `${buffer.toString("utf8", start, insertAt)}${batch.ingested.toString("latin1")}${buffer.toString("utf8", insertAt, end)}`;
}

/** The document's id (for a test). */
export function rawDocumentId(raw: RawDocument): string {
  return raw.buffer.toString("latin1", raw.idStart, raw.idEnd);
}

function bytesAt(buffer: Buffer, at: number, expected: Buffer): boolean {
  if (at < 0 || at + expected.length > buffer.length) return false;
  for (let i = 0; i < expected.length; i++) if (buffer[at + i] !== expected[i]) return false;
  return true;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The number written in `count` ASCII digits at `at`, or -1. */
function digitsAt(bytes: Uint8Array, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const digit = (bytes[i] as number) - 48;
    if (!(digit >= 0 && digit <= 9)) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/**
 * The time of a canonical UTC timestamp ("2026-11-27T05:00:00.000Z", what toISOString makes) at `at`, or undefined
 * for anything else, including out-of-range fields that Date.parse would roll over (Feb 30, 24:00): exactly the
 * strings fixTimestamp keeps as they are, read without a Date.parse and a toISOString per document.
 */
export function canonicalTime(bytes: Uint8Array, at: number): number | undefined {
  if (
    at + 24 > bytes.length ||
    bytes[at + 4] !== 45 || // -
    bytes[at + 7] !== 45 ||
    bytes[at + 10] !== 84 || // T
    bytes[at + 13] !== 58 || // :
    bytes[at + 16] !== 58 ||
    bytes[at + 19] !== 46 || // .
    bytes[at + 23] !== 90 // Z
  ) {
    return undefined;
  }
  const year = digitsAt(bytes, at, 4);
  const month = digitsAt(bytes, at + 5, 2);
  const day = digitsAt(bytes, at + 8, 2);
  const hour = digitsAt(bytes, at + 11, 2);
  const minute = digitsAt(bytes, at + 14, 2);
  const second = digitsAt(bytes, at + 17, 2);
  const millisecond = digitsAt(bytes, at + 20, 3);
  // Years 0-99 would be read as 1900-1999 by Date.UTC: those take the full path.
  if (year < 100 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23) return undefined;
  if (minute < 0 || minute > 59 || second < 0 || second > 59 || millisecond < 0) return undefined;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 ? (leap ? 29 : 28) : (DAYS_IN_MONTH[month - 1] as number))) return undefined;
  return Date.UTC(year, month - 1, day, hour, minute, second, millisecond);
}

let lastNow: Date | undefined;
let lastNowIso = "";

/** A batch's documents share one `now`: one ISO string for all of them. */
function isoString(now: Date): string {
  if (now !== lastNow) {
    lastNow = now;
    lastNowIso = now.toISOString();
  }
  return lastNowIso;
}

/** A missing or unparseable @timestamp becomes the ingest time; the original is kept. */
function fixTimestamp(document: Record<string, unknown>, now: Date): void {
  const raw = document["@timestamp"];
  const parsed = typeof raw === "string" || typeof raw === "number" ? new Date(raw) : undefined;
  if (parsed && !Number.isNaN(parsed.getTime()) && parsed.getTime() < now.getTime() + MAX_CLOCK_SKEW_MS) {
    document["@timestamp"] = parsed.toISOString();
    return;
  }
  if (raw !== undefined) {
    document.lifeline = {
      ...(isObject(document.lifeline) ? document.lifeline : {}),
      original_timestamp: String(raw),
    };
  }
  document["@timestamp"] = isoString(now);
}

/** JSON log lines: every field of the original line stays searchable under lifeline.fields (flattened). */
function promoteParsedFields(document: Record<string, unknown>): void {
  const event = document.event as Record<string, unknown>;
  const lifeline = (isObject(document.lifeline) ? document.lifeline : {}) as Record<string, unknown>;
  if (lifeline.format !== "json" || typeof event.original !== "string") return;
  try {
    const fields: unknown = JSON.parse(event.original);
    if (isObject(fields)) document.lifeline = { ...lifeline, fields };
  } catch {
    // The shipper said JSON; if it is not, the message is still there.
  }
}

/** The collector's spans: duration and status in ECS terms (event.duration in ns, event.outcome). */
function spanDocument(document: Record<string, unknown>): void {
  const event = document.event as Record<string, unknown>;
  event.kind ??= "event";
  event.category ??= "span";
  const span = (isObject(document.span) ? document.span : {}) as Record<string, unknown>;
  if (typeof span.start_ns === "string" && typeof span.end_ns === "string") {
    event.duration = Number(BigInt(span.end_ns) - BigInt(span.start_ns));
    delete span.start_ns;
    delete span.end_ns;
  }
}

/** Trace and span ids that are not W3C ids would make wrong joins: they go, the rest of the record stays. */
function dropInvalidIds(document: Record<string, unknown>): void {
  const trace = document.trace as { id?: unknown } | undefined;
  if (trace && !(typeof trace.id === "string" && isValidTraceId(trace.id))) delete document.trace;
  const span = document.span as { id?: unknown } | undefined;
  if (span?.id !== undefined && !(typeof span.id === "string" && isValidSpanId(span.id))) delete span.id;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
