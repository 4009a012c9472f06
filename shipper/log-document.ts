import { SCHEMA_VERSION } from "../core/events.ts";
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
export class LogDocumentTemplate {
  private readonly dataset: string;
  private readonly afterOffset: string;
  private readonly labels: string;
  private path = "";
  private pathPart = "";

  constructor(context: FileContext) {
    this.dataset = `,"dataset":${JSON.stringify(context.dataset)}`;
    const service = context.service ? `,"service":${JSON.stringify(context.service)}` : "";
    this.afterOffset = `},"host":{"name":${JSON.stringify(context.hostName)}}${service}`;
    this.labels = Object.keys(context.labels).length > 0 ? `,"labels":${JSON.stringify(context.labels)}` : "";
  }

  write(line: LogLine): string {
    if (line.path !== this.path) {
      this.path = line.path;
      this.pathPart = `},"log":{"file":{"path":${JSON.stringify(line.path)}},"offset":`;
    }
    const { fields, flags } = line;
    const plain = fields.format === "plain";
    const message = plain || line.lineCount > 1 ? line.text : (fields.message ?? line.text);
    // Timestamps come out of toISOString, event ids are base64url, trace and span ids validated hex: no escaping.
    let json = `{"@timestamp":"${fields.timestamp ?? isoNow()}","message":${JSON.stringify(message)},"event":{"id":"${line.eventId}"${this.dataset}`;
    if (!plain) json += `,"original":${JSON.stringify(line.text)}`;
    json += `${this.pathPart}${line.startOffset}`;
    if (fields.level) json += `,"level":${JSON.stringify(fields.level)}`;
    if (flags.size > 0) json += `,"flags":${JSON.stringify([...flags])}`;
    json += this.afterOffset;
    if (fields.traceId) json += `,"trace":{"id":"${fields.traceId}"}`;
    if (fields.spanId) json += `,"span":{"id":"${fields.spanId}"}`;
    return `${json}${this.labels},"lifeline":{"schema_version":${SCHEMA_VERSION},"format":"${fields.format}"}}`;
  }
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
