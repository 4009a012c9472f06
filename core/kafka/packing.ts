/** How several records travel in one Kafka message (the shipper's and the collector's packs). */

/**
 * A message value holds one JSON document, or several separated by "\n" (JSON text never contains a raw
 * newline); this header says how many. Consumers split with `unpackRecords`.
 */
export const RECORDS_HEADER = "lifeline-records";

export function unpackRecords(value: Buffer | string | null): string[] {
  if (value === null) return [];
  const text = typeof value === "string" ? value : value.toString("utf8");
  return text.includes("\n") ? text.split("\n") : [text];
}

/**
 * A pack's default size: kafkajs encodes each message into a buffer of the next power of two, so a 64 KiB pack
 * plus its record header would take 128 KiB; 63 KiB leaves room for the header in 64 KiB.
 */
export const DEFAULT_PACK_BYTES = 63 * 1024;
