import { PermanentError } from "../errors.ts";
import { deterministicId } from "../events.ts";
import { isValidSpanId, isValidTraceId } from "../trace-context.ts";
import { FLATTENED_DEPTH_LIMIT, FLATTENED_IGNORE_ABOVE, type StreamKind } from "./mappings.ts";

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

/** Where a record came from: the dead letter and the fallback id name it. */
export interface RecordOrigin {
  topic: string;
  partition: number;
  offset: string;
  /** Position of the document inside a packed message. */
  index: number;
}

export const MAX_CLOCK_SKEW_MS = 24 * 3600 * 1000;

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

/** The flattened fields of the mappings (mappings.ts): where a document's own keys become terms. */
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
