import { lineEventId } from "../core/events.ts";
import type { BatchProducer } from "../core/kafka/batch-producer.ts";
import { formatTraceparent } from "../core/trace-context.ts";
import { type Input, lineFields } from "./input.ts";
import type { LogDocumentTemplate } from "./log-document.ts";
import type { ShipperMetrics } from "./metrics.ts";
import { type ExtractedFields, parseJsonObject } from "./parse/fields.ts";
import type { JoinedRecord } from "./tail/multiline.ts";

/** What the encoder needs to know of the file a record comes from. */
export interface RecordSource {
  readonly input: Input;
  /** The basis of the record's deterministic event id. */
  readonly fileId: string;
  /** Kafka key: one file's records stay in one partition, in order. */
  readonly kafkaKey: string;
  readonly template: LogDocumentTemplate;
  readonly tailer: { readonly path: string };
}

/**
 * Turns a file's records into Kafka records: filtered (and still acknowledged, so the checkpoint moves past them),
 * counted, parsed, written as ECS documents (a plain line straight from the read buffer) or, for the lifecycle
 * journal, passed on as the agent wrote them with their id and offset added. `onAck` is called with the record's end
 * offset once Kafka holds it (or once every record before a filtered one is held).
 */
export class RecordEncoder {
  private readonly producer: BatchProducer;
  private readonly metrics: ShipperMetrics;

  constructor(producer: BatchProducer, metrics: ShipperMetrics) {
    this.producer = producer;
    this.metrics = metrics;
  }

  encode(file: RecordSource, record: JoinedRecord, onAck: (endOffset: number) => void): void {
    const input = file.input;
    if (input.keep) {
      const left = input.keep(
        record.lines.length === 1 ? (record.lines[0] as string) : record.lines.join("\n"),
      );
      if (left) {
        // Not shipped, and acknowledged in order with the file's records before it: the checkpoint moves past it.
        this.metrics.linesFiltered.inc({ input: input.config.name, rule: left });
        this.producer.advance(input.topic, file.kafkaKey, onAck, record.endOffset);
        return;
      }
    }
    if (record.flags.size > 0) {
      if (record.flags.has("truncated")) this.metrics.truncatedLines.inc({ input: input.config.name });
      if (record.flags.has("invalid_utf8")) this.metrics.invalidUtf8.inc({ input: input.config.name });
    }
    let fields: ExtractedFields | undefined;
    if (record.source && record.flags.size === 0 && input.config.kind !== "lifecycle") {
      fields = lineFields(input, record.lines[0] as string);
      if (fields.format === "plain") {
        // Most lines: their document goes from the read buffer into the Kafka pack as bytes.
        const { source, sourceStart = 0, bytes, startOffset } = record;
        const { traceId, spanId } = fields;
        file.template.preparePlain(
          source,
          sourceStart,
          bytes,
          file.fileId,
          file.tailer.path,
          startOffset,
          traceId,
          spanId,
          fields.timestamp,
        );
        this.producer.enqueueWritten(
          input.topic,
          file.kafkaKey,
          spanId ? traceHeader({ id: traceId }, { id: spanId }).headers : undefined,
          file.template,
          onAck,
          record.endOffset,
        );
        return;
      }
    }
    const { value, headers } = serialise(file, record, fields);
    this.producer.enqueue({
      topic: input.topic,
      key: file.kafkaKey,
      value,
      headers,
      onAck,
      position: record.endOffset,
    });
  }
}

function serialise(
  file: RecordSource,
  record: JoinedRecord,
  extracted: ExtractedFields | undefined,
): { value: string; headers?: Record<string, string> } {
  const { input } = file;
  const path = file.tailer.path;
  const text = record.lines.length === 1 ? (record.lines[0] as string) : record.lines.join("\n");
  const eventId = lineEventId(file.fileId, record.startOffset);
  let flags = record.flags;
  if (input.config.kind === "lifecycle") {
    const event = parseJsonObject(text);
    if (event) {
      const eventMeta = (event.event ?? {}) as Record<string, unknown>;
      event.event = { ...eventMeta, id: eventMeta.id ?? eventId };
      event.log = {
        ...((event.log as object) ?? {}),
        file: { path },
        offset: record.startOffset,
      };
      return { value: JSON.stringify(event), ...traceHeader(event.trace, event.span) };
    }
    flags = new Set([...flags, "invalid_json"]);
  }
  const fields = extracted ?? lineFields(input, record.lines[0] ?? "");
  const value = file.template.write({
    eventId,
    path,
    text,
    lineCount: record.lines.length,
    startOffset: record.startOffset,
    flags,
    fields,
  });
  return fields.spanId ? { value, ...traceHeader({ id: fields.traceId }, { id: fields.spanId }) } : { value };
}

/** The W3C traceparent header, when the record names both its trace and its span (nothing is invented). */
function traceHeader(trace: unknown, span: unknown): { headers?: Record<string, string> } {
  const traceId = (trace as { id?: string } | undefined)?.id;
  const spanId = (span as { id?: string } | undefined)?.id;
  if (!traceId || !spanId) return {};
  return { headers: { traceparent: formatTraceparent({ traceId, spanId, flags: 1 }) } };
}
