import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { murmur2, murmur2Partitioner } from "../../core/kafka/partitioner.ts";

// kafkajs's own murmur2 (64-bit Long arithmetic), the reference: the partition of a key must not change.
const kafkajsMurmur2 = createRequire(import.meta.url)(
  "kafkajs/src/producer/partitioners/default/murmur2.js",
) as (key: string | Buffer) => number;

describe("murmur2 partitioner", () => {
  it("hashes every key as kafkajs does: ASCII, non-ASCII, Buffers, every length modulo 4", () => {
    let state = 99;
    const next = () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state;
    };
    const keys: Array<string | Buffer> = ["", "a", "ab", "abc", "abcd", "é", "漢字🚀", "web-1/checkout"];
    for (let i = 0; i < 3000; i++) {
      const length = next() % 70;
      const ascii = Array.from({ length }, () => String.fromCharCode(32 + (next() % 95))).join("");
      keys.push(ascii, Buffer.from(Array.from({ length }, () => next() % 256)));
      if (i % 10 === 0) keys.push(`${ascii}ü${ascii}`);
      keys.push(next().toString(16).padStart(32, "0"));
    }
    for (const key of keys) expect(murmur2(key), String(key)).toBe(kafkajsMurmur2(key));
    // The Java client's values (Utils.murmur2), as Akka's Murmur2Spec records them for Kafka-compatible sharding.
    const java = {
      "1": -1993445489,
      "12": 126087238,
      "123": -267702483,
      "1234": -1614185708,
      "12345": -1188365604,
    };
    for (const [key, hash] of Object.entries(java)) expect(murmur2(key), key).toBe(hash);
  });

  it("places keyed messages where kafkajs's default partitioner does, and leaves the rest to it", () => {
    const ours = murmur2Partitioner();
    const partitionMetadata = Array.from({ length: 12 }, (_, partitionId) => ({
      partitionId,
      leader: 1,
      replicas: [1],
      isr: [1],
      partitionErrorCode: 0,
    }));
    for (let i = 0; i < 2000; i++) {
      const key = `trace-${i.toString(36)}`;
      const expected = (kafkajsMurmur2(key) & 0x7fffffff) % 12;
      expect(ours({ topic: "t", partitionMetadata, message: { key, value: "v" } })).toBe(expected);
    }
    expect(ours({ topic: "t", partitionMetadata, message: { key: "k", value: "v", partition: 7 } })).toBe(7);
    const unkeyed = ours({ topic: "t", partitionMetadata, message: { value: "v" } });
    expect(unkeyed).toBeGreaterThanOrEqual(0);
    expect(unkeyed).toBeLessThan(12);
  });
});
