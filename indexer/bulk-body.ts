import type { RawDocument } from "./documents.ts";

/**
 * The bulk request's NDJSON body, encoded once into one buffer: the client would concatenate the strings, measure
 * the result and encode it again, three passes over a 5 MB body.
 */
export function bulkBody(chunk: ReadonlyArray<{ action: string; source: string | RawDocument }>): Buffer {
  let chars = 0;
  for (const { action, source } of chunk) {
    chars += action.length + 2 + (typeof source === "string" ? source.length : rawBytes(source));
  }
  // Room for ASCII text as is; a string that may not fit is measured exactly first.
  let body = Buffer.allocUnsafe(chars + 4_096);
  let offset = 0;
  const reserve = (bytes: number) => {
    if (offset + bytes <= body.length) return;
    const grown = Buffer.allocUnsafe(Math.max(offset + bytes, body.length * 2));
    body.copy(grown, 0, 0, offset);
    body = grown;
  };
  const append = (text: string) => {
    if (body.length - offset < text.length * 3 + 1) reserve(Buffer.byteLength(text) + 1);
    offset += body.write(text, offset);
    body[offset++] = 10;
  };
  const appendRaw = (raw: RawDocument) => {
    reserve(rawBytes(raw) + 1);
    offset += raw.buffer.copy(body, offset, raw.start, raw.insertAt);
    offset += body.write(raw.ingested, offset, "latin1");
    offset += raw.buffer.copy(body, offset, raw.insertAt, raw.end);
    body[offset++] = 10;
  };
  for (const { action, source } of chunk) {
    append(action);
    if (typeof source === "string") append(source);
    else appendRaw(source);
  }
  return body.subarray(0, offset);
}

function rawBytes(raw: RawDocument): number {
  return raw.end - raw.start + raw.ingested.length;
}
