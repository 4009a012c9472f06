import { type ICustomPartitioner, Partitioners } from "kafkajs";

/**
 * Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) of a key's bytes (a string's UTF-8), as a signed
 * 32-bit integer, in 32-bit integer arithmetic: kafkajs computes it with 64-bit Long objects, a dozen allocations
 * per four bytes of key, and the collector hashes a new trace id for every record. The control topic's partition
 * of a host is this hash of its name too (core/control-plane.ts).
 */
export function murmur2(key: string | Uint8Array): number {
  if (typeof key !== "string") return hashBytes(key, key.length);
  const ascii = asciiBytes(key);
  if (ascii) return hashBytes(ascii, key.length);
  const utf8 = Buffer.from(key, "utf8");
  return hashBytes(utf8, utf8.length);
}

function hashBytes(data: Uint8Array, length: number): number {
  const m = 0x5bd1e995;
  const byte = (i: number) => data[i] as number;
  let h = 0x9747b28c ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = byte(i) | (byte(i + 1) << 8) | (byte(i + 2) << 16) | (byte(i + 3) << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  // The tail (1 to 3 bytes), as the Java switch mixes it by falling through.
  const tail = length & 3;
  if (tail >= 3) h ^= byte(whole + 2) << 16;
  if (tail >= 2) h ^= byte(whole + 1) << 8;
  if (tail >= 1) h = Math.imul(h ^ byte(whole), m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * An ASCII string's bytes (ids, names: its char codes) in a scratch array reused from call to call, its first
 * key.length bytes; undefined for any other string.
 */
function asciiBytes(key: string): Uint8Array | undefined {
  if (key.length > scratch.length) scratch = new Uint8Array(Math.max(key.length, 2 * scratch.length));
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    if (code > 0x7f) return undefined;
    scratch[i] = code;
  }
  return scratch;
}
let scratch = new Uint8Array(64);

/**
 * kafkajs's default partitioner, with keyed messages placed by the murmur2 above: the same partition as kafkajs and
 * the Java client (`toPositive(murmur2(key)) % partitions`). Messages with a partition or without a key go to
 * kafkajs's own (round robin over available partitions).
 */
export const murmur2Partitioner: ICustomPartitioner = () => {
  const fallback = Partitioners.DefaultPartitioner();
  return (args) => {
    const { key, partition } = args.message;
    if (partition !== undefined && partition !== null) return partition;
    if (key === null || key === undefined) return fallback(args);
    return (murmur2(key) & 0x7fffffff) % args.partitionMetadata.length;
  };
};
