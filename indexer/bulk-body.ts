import type { RawDocument } from "./documents.ts";

/**
 * The bulk request's NDJSON body, encoded once into one buffer: the client would concatenate the strings, measure
 * the result and encode it again, three passes over a 5 MB body.
 */
export function bulkBody(
  chunk: ReadonlyArray<{ action: string | undefined; source: string | RawDocument }>,
  allocate: (bytes: number) => Buffer = Buffer.allocUnsafe,
): Buffer {
  let chars = 0;
  for (const { action, source } of chunk) {
    chars += typeof source === "string" ? (action?.length ?? 0) + source.length + 2 : rawBytes(source);
  }
  // Room for ASCII text as is; a string that may not fit is measured exactly first.
  let body = allocate(chars + 4_096);
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
  // The action line and the document, copied from their bytes: {"create":{"_index":…,"_id":"<id>"}}
  const appendRaw = (raw: RawDocument) => {
    reserve(rawBytes(raw));
    const { buffer, batch } = raw;
    offset += batch.actionHead.copy(body, offset);
    offset += buffer.copy(body, offset, raw.idStart, raw.idEnd);
    body[offset++] = 34; // "
    body[offset++] = 125; // }
    body[offset++] = 125;
    body[offset++] = 10;
    offset += buffer.copy(body, offset, raw.start, raw.insertAt);
    offset += batch.ingested.copy(body, offset);
    offset += buffer.copy(body, offset, raw.insertAt, raw.end);
    body[offset++] = 10;
  };
  for (const { action, source } of chunk) {
    if (typeof source === "string") {
      append(action ?? "");
      append(source);
    } else appendRaw(source);
  }
  return body.subarray(0, offset);
}

/** A raw document's bytes in the body, its action line included. */
export function rawBytes(raw: RawDocument): number {
  return (
    raw.batch.actionHead.length +
    (raw.idEnd - raw.idStart) +
    4 +
    (raw.end - raw.start) +
    raw.batch.ingested.length +
    1
  );
}
