import { PermanentError } from "../core/errors.ts";
import { deterministicId } from "../core/events.ts";
import { isoString } from "../core/iso-time.ts";
import { isValidSpanId, isValidTraceId } from "../core/trace-context.ts";
import { otlpTypes } from "./otlp-schema.ts";
import { decodeTraceRequest } from "./otlp-wire.ts";

export type Signal = "traces" | "logs" | "metrics";
export type Encoding = "protobuf" | "json";

/** One record for Kafka: the JSON document the indexer reads, and its key. */
export interface ConvertedRecord {
  key: string;
  value: string;
}

/**
 * A request's records, their text written one after another into one buffer as each is made, with their keys.
 * A document's text dies as soon as it is written, so a collection that starts mid-request finds only the keys
 * alive, not hundreds of documents: half the collector's garbage-collection time went to copying them.
 * The pipeline hands the buffer of one request to the next (`release`); the producer copies each record out.
 */
export class ConvertedRecords {
  private buffer: Buffer;
  private readonly keys: string[] = [];
  /** Where each record's text ends in the buffer; it starts where the one before it ends. */
  private readonly ends: number[] = [];
  /** The bytes of every record's text. */
  bytes = 0;

  constructor(buffer?: Buffer) {
    this.buffer = buffer ?? Buffer.allocUnsafe(FIRST_BUFFER_BYTES);
  }

  get length(): number {
    return this.keys.length;
  }

  add(key: string, text: string): void {
    // A UTF-16 code unit is at most 3 bytes of UTF-8: room for the worst case, without measuring the text first.
    const room = this.bytes + text.length * 3;
    if (room > this.buffer.length) {
      const larger = Buffer.allocUnsafe(Math.max(room, this.buffer.length * 2));
      this.buffer.copy(larger, 0, 0, this.bytes);
      this.buffer = larger;
    }
    this.bytes += this.buffer.write(text, this.bytes);
    this.keys.push(key);
    this.ends.push(this.bytes);
  }

  key(index: number): string {
    return this.keys[index] as string;
  }

  start(index: number): number {
    return index === 0 ? 0 : (this.ends[index - 1] as number);
  }

  end(index: number): number {
    return this.ends[index] as number;
  }

  /** Copies record `index`'s text into `target` at `offset`. */
  copy(index: number, target: Buffer, offset: number): void {
    this.buffer.copy(target, offset, this.start(index), this.end(index));
  }

  value(index: number): string {
    return this.buffer.toString("utf8", this.start(index), this.end(index));
  }

  toArray(): ConvertedRecord[] {
    return this.keys.map((key, index) => ({ key, value: this.value(index) }));
  }

  /** The buffer, for the next request's records once these were copied out; none if it grew too large to keep. */
  release(): Buffer | undefined {
    return this.buffer.length <= KEPT_BUFFER_BYTES ? this.buffer : undefined;
  }
}

const FIRST_BUFFER_BYTES = 64 * 1024;
const KEPT_BUFFER_BYTES = 1024 * 1024;

export interface Conversion {
  records: ConvertedRecords;
  /** Items the request carried that cannot be stored (invalid ids...): reported as partial success. */
  rejected: number;
  rejectedReason?: string;
}

type Loose = Record<string, unknown>;

/**
 * Decodes an OTLP export request body into plain objects, the same shape for both encodings (the OTLP/JSON
 * mapping uses the protobuf field names in lowerCamelCase, hex ids and integer enums). Broken input is a
 * PermanentError: the client gets 400 and must not retry.
 */
export function decodeRequest(signal: Signal, encoding: Encoding, body: Buffer): Loose {
  if (encoding === "json") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch (error) {
      throw new PermanentError("otlp.bad_json", `request body is not JSON: ${(error as Error).message}`);
    }
    if (!isObject(parsed)) throw new PermanentError("otlp.bad_json", "request body is not a JSON object");
    return parsed;
  }
  const type = REQUEST_TYPES[signal];
  try {
    // Traces, the busiest signal, are read from the wire directly into this shape (otlp-wire.ts).
    if (signal === "traces") return decodeTraceRequest(body);
    return type.toObject(type.decode(body), { longs: String, enums: Number }) as Loose;
  } catch (error) {
    throw new PermanentError(
      "otlp.bad_protobuf",
      `request body is not an OTLP protobuf message: ${(error as Error).message}`,
    );
  }
}

const REQUEST_TYPES = {
  traces: otlpTypes.traceRequest,
  logs: otlpTypes.logsRequest,
  metrics: otlpTypes.metricsRequest,
};
const RESPONSE_TYPES = {
  traces: otlpTypes.traceResponse,
  logs: otlpTypes.logsResponse,
  metrics: otlpTypes.metricsResponse,
};
const REJECTED_FIELD = { traces: "rejectedSpans", logs: "rejectedLogRecords", metrics: "rejectedDataPoints" };

/** The converter of each signal; `buffer`: where to write the records' text (see ConvertedRecords). */
export function convert(signal: Signal, request: Loose, buffer?: Buffer): Conversion {
  return signal === "traces"
    ? convertTraces(request, buffer)
    : signal === "logs"
      ? convertLogs(request, buffer)
      : convertMetrics(request, buffer);
}

const SPAN_KINDS = ["unspecified", "internal", "server", "client", "producer", "consumer"];
const STATUS_OUTCOME = ["success", "success", "failure"] as const;

const STATUS_NAMES = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];
const KIND_NAMES = SPAN_KINDS.map((k) => `SPAN_KIND_${k.toUpperCase()}`);

/**
 * OTLP spans → span documents (ECS names, Elastic's trace layout), keyed by trace id. Each document's JSON is
 * written as text, not built as an object and serialised: the collector's busiest path (`JSON.stringify` of the
 * nested document was its largest cost). What is the same for a resource or a scope is serialised once; the
 * values of a span are escaped with `JSON.stringify` where they can need it. test/unit/otlp.test.ts holds the text
 * equal to `JSON.stringify` of the document's object form.
 */
export function convertTraces(request: Loose, buffer?: Buffer): Conversion {
  const records = new ConvertedRecords(buffer);
  let rejected = 0;
  let rejectedReason: string | undefined;
  for (const resourceSpans of list(request.resourceSpans)) {
    const resource = attributes((resourceSpans.resource as Loose | undefined)?.attributes);
    // The same for every span of the resource: made once.
    const { service, host } = serviceFields(resource);
    const owner = `,"service":${JSON.stringify(service)}${host ? `,"host":${JSON.stringify(host)}` : ""}`;
    const lifelineHead = `,"lifeline":{"resource":${JSON.stringify(resource)},"attributes":`;
    for (const scopeSpans of list(resourceSpans.scopeSpans)) {
      const scope = scopeOf(scopeSpans.scope);
      const scopePart = scope ? `,"scope":${JSON.stringify(scope)}` : "";
      for (const span of list(scopeSpans.spans)) {
        const traceId = hexId(span.traceId);
        const spanId = hexId(span.spanId);
        if (!traceId || !isValidTraceId(traceId) || !spanId || !isValidSpanId(spanId)) {
          rejected++;
          rejectedReason ??= `span "${String(span.name ?? "")}" has an invalid trace or span id`;
          continue;
        }
        const parentId = hexId(span.parentSpanId);
        const start = nanos(span.startTimeUnixNano);
        const end = nanos(span.endTimeUnixNano) ?? start;
        const status = (span.status ?? {}) as Loose;
        const statusCode = enumNumber(status.code, STATUS_NAMES);
        const kind = SPAN_KINDS[enumNumber(span.kind, KIND_NAMES)];
        const name = JSON.stringify(String(span.name ?? ""));
        const entry = !parentId || kind === "server" || kind === "consumer";
        // Ids are validated hex, times decimal digits, the event id base64url, the rest constants: no escaping.
        const timestamp = isoFromNanos(start);
        let json = timestamp === undefined ? "{" : `{"@timestamp":"${timestamp}",`;
        json += `"event":{"id":"${deterministicId("otlp-span", traceId, spanId)}","kind":"event","category":"span","dataset":"lifeline.spans","outcome":"${statusCode === 0 ? "unknown" : (STATUS_OUTCOME[statusCode] ?? "unknown")}"},"trace":{"id":"${traceId}"},"span":{"id":"${spanId}","name":${name},"kind":"${kind ?? "unspecified"}"`;
        if (start !== undefined && end !== undefined) json += `,"start_ns":"${start}","end_ns":"${end}"`;
        json += "}";
        if (parentId && isValidSpanId(parentId)) json += `,"parent":{"id":"${parentId}"}`;
        // Entry spans are "transactions" in Elastic's trace layout (APM UI, Discover's trace view).
        json += entry
          ? `,"processor":{"event":"transaction"},"transaction":{"id":"${spanId}","name":${name}}`
          : `,"processor":{"event":"span"}`;
        json += owner;
        if (statusCode === 2 && status.message)
          json += `,"error":{"message":${JSON.stringify(String(status.message))}}`;
        json += `${lifelineHead}${JSON.stringify(attributes(span.attributes))}${scopePart}`;
        const events = list(span.events);
        if (events.length > 0) json += `,"span_events":${JSON.stringify(events.map(spanEvent))}`;
        const links = list(span.links);
        if (links.length > 0) json += `,"links":${JSON.stringify(links.map(link))}`;
        records.add(traceId, `${json}}}`);
      }
    }
  }
  return { records, rejected, ...(rejectedReason ? { rejectedReason } : {}) };
}

const SEVERITY = ["trace", "debug", "info", "warn", "error", "fatal"];

/** OTLP log records → log documents like the shipper's, keyed by service. */
export function convertLogs(request: Loose, buffer?: Buffer): Conversion {
  const records = new ConvertedRecords(buffer);
  let rejected = 0;
  let rejectedReason: string | undefined;
  for (const resourceLogs of list(request.resourceLogs)) {
    const resource = attributes((resourceLogs.resource as Loose | undefined)?.attributes);
    const service = serviceFields(resource);
    for (const scopeLogs of list(resourceLogs.scopeLogs)) {
      const scope = scopeOf(scopeLogs.scope);
      for (const record of list(scopeLogs.logRecords)) {
        const traceId = hexId(record.traceId);
        const spanId = hexId(record.spanId);
        if ((traceId && !isValidTraceId(traceId)) || (spanId && !isValidSpanId(spanId))) {
          rejected++;
          rejectedReason ??= "a log record has an invalid trace or span id";
          continue;
        }
        const time = nanos(record.timeUnixNano) ?? nanos(record.observedTimeUnixNano);
        const severityNumber = Number(record.severityNumber ?? 0);
        const level =
          typeof record.severityText === "string" && record.severityText.length > 0
            ? record.severityText.toLowerCase()
            : severityNumber > 0
              ? SEVERITY[Math.min(5, Math.floor((severityNumber - 1) / 4))]
              : undefined;
        const body = anyValue(record.body);
        const recordAttributes = attributes(record.attributes);
        const message = typeof body === "string" ? body : body === undefined ? "" : JSON.stringify(body);
        const document: Loose = {
          ...(time !== undefined && time !== "0" ? { "@timestamp": isoFromNanos(time) } : {}),
          message,
          event: {
            // OTLP log records carry no id: one is derived from everything they say, so a resend is the same.
            id: deterministicId(
              "otlp-log",
              JSON.stringify(resource),
              String(time),
              message,
              JSON.stringify(recordAttributes),
              traceId ?? "",
              spanId ?? "",
            ),
            dataset: "lifeline.otlp",
          },
          ...(level ? { log: { level } } : {}),
          ...service,
          ...(traceId ? { trace: { id: traceId } } : {}),
          ...(spanId ? { span: { id: spanId } } : {}),
          lifeline: { format: "otlp", resource, attributes: recordAttributes, scope },
        };
        const key = String((service.service as Loose | undefined)?.name ?? "unknown");
        records.add(key, JSON.stringify(document));
      }
    }
  }
  return { records, rejected, ...(rejectedReason ? { rejectedReason } : {}) };
}

const TEMPORALITY = ["unspecified", "delta", "cumulative"];
const METRIC_TYPES = ["gauge", "sum", "histogram", "exponentialHistogram", "summary"] as const;

/**
 * OTLP metrics → one document per data point: the metric (name, unit, type, temporality), the value (gauge, sum)
 * or the distribution (histogram: count, sum, min, max and the explicit buckets; exponential histogram and
 * summary: count, sum, min, max, quantiles), the point's attributes, and its exemplars with their trace and span
 * ids: `trace.id` holds every exemplar's trace id, so a trace's search finds the metric points it is an exemplar
 * of. Keyed by service and metric name (a series stays in one partition). A point without a time is rejected.
 */
export function convertMetrics(request: Loose, buffer?: Buffer): Conversion {
  const records = new ConvertedRecords(buffer);
  let rejected = 0;
  let rejectedReason: string | undefined;
  for (const resourceMetrics of list(request.resourceMetrics)) {
    const resource = attributes((resourceMetrics.resource as Loose | undefined)?.attributes);
    const service = serviceFields(resource);
    const serviceName = String((service.service as Loose | undefined)?.name ?? "unknown");
    for (const scopeMetrics of list(resourceMetrics.scopeMetrics)) {
      const scope = scopeOf(scopeMetrics.scope);
      for (const metric of list(scopeMetrics.metrics)) {
        const name = String(metric.name ?? "");
        const type = METRIC_TYPES.find((t) => isObject(metric[t]));
        if (!name || !type) {
          rejected++;
          rejectedReason ??= `metric "${name}" has no name or no data`;
          continue;
        }
        const data = metric[type] as Loose;
        const temporality =
          TEMPORALITY[
            enumNumber(data.aggregationTemporality, [
              "AGGREGATION_TEMPORALITY_UNSPECIFIED",
              "AGGREGATION_TEMPORALITY_DELTA",
              "AGGREGATION_TEMPORALITY_CUMULATIVE",
            ])
          ];
        for (const point of list(data.dataPoints)) {
          const time = nanos(point.timeUnixNano);
          if (time === undefined || time === "0") {
            rejected++;
            rejectedReason ??= `a data point of metric "${name}" has no time`;
            continue;
          }
          const start = nanos(point.startTimeUnixNano);
          const pointAttributes = attributes(point.attributes);
          const exemplars = list(point.exemplars).map(exemplar);
          const traceIds = [
            ...new Set(exemplars.map((e) => e.trace_id).filter((id): id is string => Boolean(id))),
          ];
          const document: Loose = {
            "@timestamp": isoFromNanos(time),
            event: {
              id: deterministicId(
                "otlp-metric",
                JSON.stringify(resource),
                name,
                JSON.stringify(pointAttributes),
                time,
              ),
              kind: "metric",
              dataset: "lifeline.metrics",
            },
            ...service,
            metric: {
              name,
              ...(metric.unit ? { unit: String(metric.unit) } : {}),
              ...(metric.description ? { description: String(metric.description) } : {}),
              type: type === "exponentialHistogram" ? "exponential_histogram" : type,
              ...(temporality && temporality !== "unspecified" && type !== "gauge" ? { temporality } : {}),
              ...(type === "sum" ? { monotonic: Boolean(data.isMonotonic) } : {}),
              ...(start && start !== "0" ? { start: isoFromNanos(start) } : {}),
              ...pointValues(type, point),
            },
            ...(traceIds.length > 0 ? { trace: { id: traceIds.length === 1 ? traceIds[0] : traceIds } } : {}),
            lifeline: {
              resource,
              attributes: pointAttributes,
              scope,
              ...(exemplars.length > 0 ? { exemplars } : {}),
            },
          };
          records.add(`${serviceName}/${name}`, JSON.stringify(document));
        }
      }
    }
  }
  return { records, rejected, ...(rejectedReason ? { rejectedReason } : {}) };
}

function pointValues(type: (typeof METRIC_TYPES)[number], point: Loose): Loose {
  const number = (value: unknown) => (value === undefined || value === null ? undefined : Number(value));
  const defined = (fields: Loose) =>
    Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  if (type === "gauge" || type === "sum") return defined({ value: number(point.asDouble ?? point.asInt) });
  const distribution = defined({
    count: number(point.count),
    sum: number(point.sum),
    min: number(point.min),
    max: number(point.max),
  });
  if (type === "histogram") {
    const bounds = (Array.isArray(point.explicitBounds) ? point.explicitBounds : []).map(Number);
    const counts = (Array.isArray(point.bucketCounts) ? point.bucketCounts : []).map(Number);
    return counts.length > 0 ? { ...distribution, buckets: { bounds, counts } } : distribution;
  }
  if (type === "summary") {
    const quantiles = list(point.quantileValues).map((q) => ({
      quantile: Number(q.quantile ?? 0),
      value: Number(q.value ?? 0),
    }));
    return quantiles.length > 0 ? { ...distribution, quantiles } : distribution;
  }
  return distribution;
}

function exemplar(value: Loose): {
  trace_id?: string;
  span_id?: string;
  value?: number;
  "@timestamp"?: string;
} {
  const traceId = hexId(value.traceId);
  const spanId = hexId(value.spanId);
  const time = nanos(value.timeUnixNano);
  const amount = value.asDouble ?? value.asInt;
  return {
    ...(traceId && isValidTraceId(traceId) ? { trace_id: traceId } : {}),
    ...(spanId && isValidSpanId(spanId) ? { span_id: spanId } : {}),
    ...(amount !== undefined ? { value: Number(amount) } : {}),
    ...(time && time !== "0" ? { "@timestamp": isoFromNanos(time) } : {}),
  };
}

/** The OTLP/HTTP success body, with partial success when some items were rejected. */
export function encodeSuccess(
  signal: Signal,
  encoding: Encoding,
  conversion: Pick<Conversion, "rejected" | "rejectedReason">,
): Buffer | string {
  const partial =
    conversion.rejected > 0
      ? {
          partialSuccess: {
            [REJECTED_FIELD[signal]]: conversion.rejected,
            errorMessage: conversion.rejectedReason ?? "",
          },
        }
      : {};
  if (encoding === "json") return JSON.stringify(partial);
  const type = RESPONSE_TYPES[signal];
  return Buffer.from(type.encode(type.fromObject(partial)).finish());
}

/** The OTLP/HTTP error body: a google.rpc.Status. */
export function encodeStatus(
  encoding: Encoding,
  code: number,
  message: string,
  retryAfterSeconds?: number,
): Buffer | string {
  if (encoding === "json") return JSON.stringify({ code, message });
  // A google.rpc.RetryInfo among the details tells a gRPC client how long to wait (the OTLP specification's
  // throttling answer; Go's exporter honours it).
  const details =
    retryAfterSeconds === undefined
      ? []
      : [
          {
            typeUrl: "type.googleapis.com/google.rpc.RetryInfo",
            value: otlpTypes.retryInfo
              .encode(
                otlpTypes.retryInfo.fromObject({ retryDelay: { seconds: retryAfterSeconds, nanos: 0 } }),
              )
              .finish(),
          },
        ];
  return Buffer.from(
    otlpTypes.status.encode(otlpTypes.status.fromObject({ code, message, details })).finish(),
  );
}

function serviceFields(resource: Loose): { service: Loose; host?: Loose } {
  const pick = (key: string) => (typeof resource[key] === "string" ? (resource[key] as string) : undefined);
  const name = pick("service.name");
  const version = pick("service.version");
  const environment = pick("deployment.environment.name") ?? pick("deployment.environment");
  const instance = pick("service.instance.id");
  const host = pick("host.name");
  return {
    service: {
      name: name ?? "unknown_service",
      ...(version ? { version } : {}),
      ...(environment ? { environment } : {}),
      ...(instance ? { node: { name: instance } } : {}),
    },
    ...(host ? { host: { name: host } } : {}),
  };
}

function scopeOf(scope: unknown): Loose | undefined {
  if (!isObject(scope) || !scope.name) return undefined;
  return { name: String(scope.name), ...(scope.version ? { version: String(scope.version) } : {}) };
}

function spanEvent(event: Loose): Loose {
  const time = nanos(event.timeUnixNano);
  return {
    name: String(event.name ?? ""),
    ...(time ? { "@timestamp": isoFromNanos(time) } : {}),
    attributes: attributes(event.attributes),
  };
}

function link(value: Loose): Loose {
  return { trace_id: hexId(value.traceId), span_id: hexId(value.spanId) };
}

function attributes(value: unknown): Loose {
  const out: Loose = {};
  for (const entry of list(value)) {
    if (typeof entry.key === "string") out[entry.key] = anyValue(entry.value);
  }
  return out;
}

function anyValue(value: unknown): unknown {
  if (!isObject(value)) return undefined;
  if (value.stringValue !== undefined) return String(value.stringValue);
  if (value.boolValue !== undefined) return Boolean(value.boolValue);
  if (value.intValue !== undefined) {
    const number = Number(value.intValue);
    return Number.isSafeInteger(number) ? number : String(value.intValue);
  }
  if (value.doubleValue !== undefined) return Number(value.doubleValue);
  if (isObject(value.arrayValue)) return list(value.arrayValue.values).map(anyValue);
  if (isObject(value.kvlistValue)) return attributes(value.kvlistValue.values);
  if (value.bytesValue !== undefined) {
    return value.bytesValue instanceof Uint8Array
      ? Buffer.from(value.bytesValue).toString("base64")
      : String(value.bytesValue);
  }
  return undefined;
}

/** Ids are bytes in protobuf and hex strings in OTLP/JSON; empty means absent. */
function hexId(value: unknown): string | undefined {
  if (value instanceof Uint8Array) return value.length === 0 ? undefined : Buffer.from(value).toString("hex");
  if (typeof value === "string" && value.length > 0) return value.toLowerCase();
  return undefined;
}

function nanos(value: unknown): string | undefined {
  if (typeof value === "string" && /^\d+$/.test(value)) return value;
  if (typeof value === "number" && Number.isFinite(value) && value >= 0)
    return BigInt(Math.trunc(value)).toString();
  return undefined;
}

/** Nanoseconds since the epoch (decimal text) → ISO 8601 in milliseconds; undefined outside Date's range. */
export function isoFromNanos(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ms = value.length > 6 ? Number(value.slice(0, -6)) : 0;
  return ms <= 8.64e15 ? isoString(ms) : undefined;
}

function enumNumber(value: unknown, names: string[]): number {
  if (typeof value === "number") return value;
  if (typeof value === "string") return Math.max(0, names.indexOf(value));
  return 0;
}

function list(value: unknown): Loose[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

function isObject(value: unknown): value is Loose {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
