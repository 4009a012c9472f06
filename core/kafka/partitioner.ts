import { type ICustomPartitioner, Partitioners } from "kafkajs";

/**
 * Kafka's murmur2 of a key (the Java client's Utils.murmur2, which kafkajs's default partitioner also computes), in
 * 32-bit integer arithmetic: kafkajs computes it with 64-bit Long objects, a dozen allocations per four bytes of
 * key, and the collector hashes a new trace id for every record.
 */
export function murmur2(key: string | Buffer): number {
  const data = typeof key === "string" ? asciiOrUtf8(key) : key;
  const length = typeof key === "string" && data === scratch ? key.length : data.length;
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k =
      (data[i4] as number) |
      ((data[i4 + 1] as number) << 8) |
      ((data[i4 + 2] as number) << 16) |
      ((data[i4 + 3] as number) << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= (data[tail + 2] as number) << 16;
  if (rest >= 2) h ^= (data[tail + 1] as number) << 8;
  if (rest >= 1) h = Math.imul(h ^ (data[tail] as number), m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * A string's UTF-8 bytes: when it is ASCII (ids, names), its char codes in a scratch array reused from call to call
 * (its first key.length bytes), else a Buffer.
 */
function asciiOrUtf8(key: string): Uint8Array {
  if (key.length > scratch.length) scratch = new Uint8Array(Math.max(key.length, 2 * scratch.length));
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    if (code > 0x7f) return Buffer.from(key);
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
