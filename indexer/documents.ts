import { MAX_CLOCK_SKEW_MS } from "../core/ecs/document.ts";
import { AFTER_TIMESTAMP, EVENT_ID_KEY, formatTail, LOG_HEAD } from "../core/ecs/log-layout.ts";

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

const SHIPPER_HEAD = Buffer.from(LOG_HEAD);
const MESSAGE_KEY = Buffer.from(AFTER_TIMESTAMP);
const SHIPPER_EVENT = Buffer.from(EVENT_ID_KEY);
const PLAIN_TAIL = Buffer.from(formatTail("plain"));
const LOGFMT_TAIL = Buffer.from(formatTail("logfmt"));
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
  if (end - start < TIMESTAMP_END + MESSAGE_KEY.length + LOGFMT_TAIL.length) return undefined;
  if (!bytesAt(buffer, start, SHIPPER_HEAD) || !bytesAt(buffer, start + TIMESTAMP_END, MESSAGE_KEY)) {
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
