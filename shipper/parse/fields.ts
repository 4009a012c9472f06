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
  return { format: "plain", ...traceFromText(line) };
}

function parseJsonObject(line: string): Record<string, unknown> | undefined {
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
      if (line.slice(index).trim() === "") break;
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

const TRACEPARENT_IN_TEXT = /\b00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}\b/;
const TRACE_ID_IN_TEXT = /\b(?:trace[._-]?id|traceId|otelTraceID)["']?\s*[=:]\s*["']?([0-9a-fA-F]{32})\b/;
const SPAN_ID_IN_TEXT = /\b(?:span[._-]?id|spanId|otelSpanID)["']?\s*[=:]\s*["']?([0-9a-fA-F]{16})\b/;

// Each expression runs only on lines holding a substring all its matches contain ("00-", "race", "pan"):
// looking for that is cheaper than the expression, and most lines have none.
function traceFromText(line: string): { traceId?: string; spanId?: string } {
  const parent = line.includes("00-") ? parseTraceparent(TRACEPARENT_IN_TEXT.exec(line)?.[0]) : undefined;
  if (parent) return { traceId: parent.traceId, spanId: parent.spanId };
  const traceId = line.includes("race") ? normaliseTraceId(TRACE_ID_IN_TEXT.exec(line)?.[1]) : undefined;
  if (!traceId) return {};
  const spanId = line.includes("pan") ? normaliseSpanId(SPAN_ID_IN_TEXT.exec(line)?.[1]) : undefined;
  return spanId ? { traceId, spanId } : { traceId };
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
