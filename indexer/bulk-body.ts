/**
 * The bulk request's NDJSON body, encoded once into one buffer: the client would concatenate the strings, measure
 * the result and encode it again, three passes over a 5 MB body.
 */
export function bulkBody(chunk: ReadonlyArray<{ action: string; source: string }>): Buffer {
  let chars = 0;
  for (const item of chunk) chars += item.action.length + item.source.length + 2;
  // Room for ASCII text as is; a string that may not fit is measured exactly first.
  let body = Buffer.allocUnsafe(chars + 4_096);
  let offset = 0;
  const append = (text: string) => {
    if (body.length - offset < text.length * 3 + 1) {
      const needed = offset + Buffer.byteLength(text) + 1;
      if (needed > body.length) {
        const grown = Buffer.allocUnsafe(Math.max(needed, body.length * 2));
        body.copy(grown, 0, 0, offset);
        body = grown;
      }
    }
    offset += body.write(text, offset);
    body[offset++] = 10;
  };
  for (const item of chunk) {
    append(item.action);
    append(item.source);
  }
  return body.subarray(0, offset);
}
