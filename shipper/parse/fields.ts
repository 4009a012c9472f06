import { normaliseTraceId, parseTraceparent } from "../../core/trace-context.ts";

/** What the shipper pulls out of one log record at the edge; everything else stays in event.original. */
export interface ExtractedFields {
  format: "json" | "logfmt" | "plain";
  timestamp?: string;
  level?: string;
  message?: string;
  traceId?: string;
  spanId?: string;
}

const TIMESTAMP_KEYS = ["@timestamp", "timestamp", "time", "ts", "@t", "t", "date", "Timestamp"];
const LEVEL_KEYS = ["log.level", "level", "severity", "lvl", "@l", "loglevel", "Level", "severity_text"];
const MESSAGE_KEYS = ["message", "msg", "@m", "@mt", "MESSAGE", "Message", "body"];
const TRACEPARENT_KEYS = ["traceparent", "trace.parent"];
const TRACE_KEYS = [
  "trace.id",
  "trace_id",
  "traceId",
  "traceID",
  "otelTraceID",
  "dd.trace_id",
  "@tr",
  "TraceId",
];
const SPAN_KEYS = ["span.id", "span_id", "spanId", "spanID", "otelSpanID", "dd.span_id", "@sp", "SpanId"];

// pino and bunyan numeric levels.
const NUMERIC_LEVELS: Record<number, string> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};

export function extractFields(line: string, parser: "auto" | "json" | "logfmt" | "plain"): ExtractedFields {
  if ((parser === "auto" || parser === "json") && line.charCodeAt(0) === 123 /* { */) {
    const object = parseJsonObject(line);
    if (object) return fromObject(object, "json");
  }
  if (parser === "auto" || parser === "logfmt") {
    const pairs = parseLogfmt(line);
    if (pairs) return fromObject(pairs, "logfmt");
  }
  const fields: ExtractedFields = { format: "plain" };
  traceFromText(line, fields);
  return fields;
}

/** A JSON object's fields, or undefined for anything else (invalid JSON, an array, a scalar). */
export function parseJsonObject(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return value && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** key=value pairs, values optionally double-quoted; at least two pairs and nothing else on the line. */
export function parseLogfmt(line: string): Record<string, string> | undefined {
  const pairs: Record<string, string> = {};
  const pattern = /\s*([A-Za-z_@][\w.@-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)/y;
  let count = 0;
  let index = 0;
  while (index < line.length) {
    pattern.lastIndex = index;
    const match = pattern.exec(line);
    if (!match) {
      if (isBlankFrom(line, index)) break;
      return undefined;
    }
    const raw = match[2] as string;
    pairs[match[1] as string] = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, "$1") : raw;
    count++;
    index = pattern.lastIndex;
  }
  return count >= 2 ? pairs : undefined;
}

function lookup(object: Record<string, unknown>, key: string): unknown {
  if (key in object) return object[key];
  // Dotted names also match nested objects: "trace.id" finds {"trace": {"id": ...}}.
  let node: unknown = object;
  for (const part of key.split(".")) {
    if (!node || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function first(object: Record<string, unknown>, keys: string[]): unknown {
  for (const key of keys) {
    const value = lookup(object, key);
    if (value !== undefined && value !== null && value !== "") return value;
  }
  return undefined;
}

function fromObject(object: Record<string, unknown>, format: "json" | "logfmt"): ExtractedFields {
  const fields: ExtractedFields = { format };
  const timestamp = normaliseTimestamp(first(object, TIMESTAMP_KEYS));
  if (timestamp) fields.timestamp = timestamp;
  const level = first(object, LEVEL_KEYS);
  if (typeof level === "number") fields.level = NUMERIC_LEVELS[level] ?? String(level);
  else if (typeof level === "string") fields.level = level.toLowerCase();
  const message = first(object, MESSAGE_KEYS);
  if (typeof message === "string") fields.message = message;
  const traceparent = parseTraceparent(asString(first(object, TRACEPARENT_KEYS)));
  const traceId = traceparent?.traceId ?? normaliseTraceId(first(object, TRACE_KEYS));
  if (traceId) {
    fields.traceId = traceId;
    const spanId = traceparent?.spanId ?? normaliseSpanId(first(object, SPAN_KEYS));
    if (spanId) fields.spanId = spanId;
  }
  return fields;
}

function isBlankFrom(text: string, index: number): boolean {
  for (let i = index; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code !== 32 && code !== 9 && code !== 13 && code !== 10 && code !== 12 && code !== 11) return false;
  }
  return true;
}

const TRACEPARENT_IN_TEXT = /\b00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}\b/;

/** A key naming an id in free text, matched by hand: `<word>[._-]?id`, `<word>Id` or `otel<Word>ID`. */
interface IdKey {
  word: string;
  otel: string;
  hexLength: number;
  /** What both forms contain ("race"), where it sits in each, and the characters before it ("t", "T"). */
  stem: string;
  stemInOtel: number;
  wordLead: number;
  otelLead: number;
}
function idKey(word: string, otel: string, hexLength: number): IdKey {
  const stem = word.slice(1);
  const stemInOtel = otel.indexOf(stem);
  return {
    word,
    otel,
    hexLength,
    stem,
    stemInOtel,
    wordLead: word.charCodeAt(0),
    otelLead: otel.charCodeAt(stemInOtel - 1),
  };
}
const TRACE_KEY = idKey("trace", "otelTraceID", 32);
const SPAN_KEY = idKey("span", "otelSpanID", 16);

/**
 * The first id named by a key in free text (`trace_id=…`, `traceId: "…"`, `otelTraceID=…`; likewise for spans),
 * lower case, "" if all zeros:
 * what /\b(?:trace[._-]?id|traceId|otelTraceID)["']?\s*[=:]\s*["']?([0-9a-fA-F]{32})\b/ finds, by hand, looked
 * for only where a key can start. The expression ran at every position of every line: a sixth of the shipper's
 * time (test/unit/shipper-fields.test.ts holds both equal on generated lines).
 */
function idInText(line: string, key: IdKey): string | undefined {
  const { stem, stemInOtel } = key;
  for (let at = line.indexOf(stem); at !== -1; at = line.indexOf(stem, at + stem.length)) {
    // Character codes first: startsWith is a call, and most candidates are decided by one character.
    const lead = line.charCodeAt(at - 1);
    const start =
      lead === key.wordLead
        ? at - 1
        : lead === key.otelLead && line.startsWith(key.otel, at - stemInOtel)
          ? at - stemInOtel
          : -1;
    if (start < 0 || (start > 0 && isWordCode(line.charCodeAt(start - 1)))) continue;
    const id = idAfterKey(line, start, key);
    if (id) return id;
  }
  return undefined;
}

function idAfterKey(line: string, start: number, key: IdKey): string | undefined {
  let at: number;
  if (line.charCodeAt(start) !== key.wordLead)
    at = start + key.otel.length; // idInText matched the otel key
  else {
    at = start + key.word.length;
    const code = line.charCodeAt(at);
    if (code === 73 /* I */ && line.charCodeAt(at + 1) === 100 /* d */) at += 2;
    else {
      if (code === 46 || code === 95 || code === 45) at++; // . _ -
      if (line.charCodeAt(at) !== 105 /* i */ || line.charCodeAt(at + 1) !== 100 /* d */) return undefined;
      at += 2;
    }
  }
  if (isQuote(line.charCodeAt(at))) at++;
  while (isSpace(line.charCodeAt(at))) at++;
  const separator = line.charCodeAt(at);
  if (separator !== 61 && separator !== 58) return undefined; // = :
  at++;
  while (isSpace(line.charCodeAt(at))) at++;
  if (isQuote(line.charCodeAt(at))) at++;
  const end = at + key.hexLength;
  if (end > line.length || (end < line.length && isWordCode(line.charCodeAt(end)))) return undefined;
  // Validated and normalised in the same pass: lower case, and "" for all zeros (named, but no id).
  let upper = false;
  let zero = true;
  for (let i = at; i < end; i++) {
    const code = line.charCodeAt(i);
    if (code >= 97 && code <= 102) zero = false;
    else if (code >= 65 && code <= 70) {
      upper = true;
      zero = false;
    } else if (code >= 49 && code <= 57) zero = false;
    else if (code !== 48) return undefined;
  }
  if (zero) return "";
  const id = line.slice(at, end);
  return upper ? id.toLowerCase() : id;
}

function isQuote(code: number): boolean {
  return code === 34 || code === 39;
}

/** What \s matches in a JavaScript regular expression. */
function isSpace(code: number): boolean {
  return (
    (code >= 9 && code <= 13) ||
    code === 32 ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

function isWordCode(code: number): boolean {
  return (
    (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95
  );
}

/** Every traceparent holds "00-", then 32 characters, then "-": cheaper to look for than to run the expression. */
function mayHoldTraceparent(line: string): boolean {
  for (let dash = line.indexOf("-", 2); dash !== -1; dash = line.indexOf("-", dash + 1)) {
    if (
      line.charCodeAt(dash - 1) === 48 &&
      line.charCodeAt(dash - 2) === 48 &&
      line.charCodeAt(dash + 33) === 45
    )
      return true;
  }
  return false;
}

function traceFromText(line: string, fields: ExtractedFields): void {
  const parent = mayHoldTraceparent(line) ? parseTraceparent(TRACEPARENT_IN_TEXT.exec(line)?.[0]) : undefined;
  if (parent) {
    fields.traceId = parent.traceId;
    fields.spanId = parent.spanId;
    return;
  }
  const traceId = idInText(line, TRACE_KEY);
  if (!traceId) return;
  fields.traceId = traceId;
  const spanId = idInText(line, SPAN_KEY);
  if (spanId) fields.spanId = spanId;
}

function normaliseSpanId(value: unknown): string | undefined {
  if (typeof value === "number" && Number.isSafeInteger(value) && value > 0) value = String(value);
  if (typeof value !== "string") return undefined;
  const text = value.trim().toLowerCase();
  if (/^[0-9a-f]{16}$/.test(text)) return /^0+$/.test(text) ? undefined : text;
  if (/^[0-9]{1,20}$/.test(text)) {
    const big = BigInt(text);
    return big > 0n && big < 2n ** 64n ? big.toString(16).padStart(16, "0") : undefined;
  }
  return undefined;
}

function asString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** ISO strings pass through (if valid); numbers are epoch seconds (zap) or milliseconds (pino). */
export function normaliseTimestamp(value: unknown): string | undefined {
  if (typeof value === "number" && Number.isFinite(value)) {
    const ms = value < 1e11 ? value * 1000 : value < 1e14 ? value : value / 1e6;
    const date = new Date(ms);
    return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
  }
  if (typeof value === "string" && value.length >= 10) {
    if (/^\d+(\.\d+)?$/.test(value)) return normaliseTimestamp(Number(value));
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
  }
  return undefined;
}
