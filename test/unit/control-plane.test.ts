import { murmur2 as platformaticMurmur2 } from "@platformatic/kafka";
import { Partitioners } from "kafkajs";
import { describe, expect, it } from "vitest";
import { generateSigningKeys, signCommand } from "../../core/commands.ts";
import { controlMessages, controlPartition } from "../../core/control-plane.ts";
import { murmur2 } from "../../core/kafka/partitioner.ts";

describe("control plane partitioning", () => {
  it("hashes as Kafka's Java client does (its own test vectors)", () => {
    const vectors: Array<[string, number]> = [
      ["21", -973932308],
      ["foobar", -790332482],
      ["a-little-bit-long-string", -985981536],
      ["a-little-bit-longer-string", -1486304829],
      ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
      ["abc", 479470107],
    ];
    for (const [key, expected] of vectors) expect(murmur2(Buffer.from(key))).toBe(expected);
  });

  it("places a host where kafkajs's and platformatic's default partitioners place its key", () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    for (let i = 0; i < 2_000; i += 1) {
      const host = i % 3 === 0 ? `host-${i}` : `srv-${i.toString(36)}.example.com/é${"x".repeat(i % 7)}`;
      const partitions = 1 + (i % 97);
      const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
        partitionId,
        leader: 1,
        partitionErrorCode: 0,
        replicas: [1],
        isr: [1],
      }));
      const expected = kafkajs({ topic: "t", partitionMetadata, message: { key: host, value: null } });
      expect(controlPartition(host, partitions)).toBe(expected);
      expect(controlPartition(host, partitions)).toBe(
        (platformaticMurmur2(Buffer.from(host), false) & 0x7fffffff) % partitions,
      );
    }
  });

  it("sends a command to its hosts' partitions, once each, and anything else to every partition", () => {
    const keys = generateSigningKeys();
    const now = Date.now();
    const command = (target: { hosts?: string[]; groups?: string[] }) =>
      signCommand(
        {
          id: `cmd-${Math.random()}`,
          action: "stop",
          service: "api",
          target,
          parameters: {},
          issuedAt: new Date(now).toISOString(),
          expiresAt: new Date(now + 60_000).toISOString(),
          deadline: new Date(now + 60_000).toISOString(),
          issuer: "test",
        },
        "k",
        keys.privateKeyPem,
      );
    const one = controlMessages(command({ hosts: ["web-1"] }), 12);
    expect(one).toEqual([
      expect.objectContaining({ partition: controlPartition("web-1", 12), key: "web-1" }),
    ]);
    const hosts = Array.from({ length: 40 }, (_, i) => `web-${i}`);
    const many = controlMessages(command({ hosts }), 12);
    const partitions = many.map((m) => m.partition);
    expect(new Set(partitions).size).toBe(partitions.length);
    expect(new Set(partitions)).toEqual(new Set(hosts.map((h) => controlPartition(h, 12))));
    expect(controlMessages(command({ groups: ["web"] }), 5).map((m) => m.partition)).toEqual([0, 1, 2, 3, 4]);
    expect(controlMessages("not json", 3).map((m) => m.partition)).toEqual([0, 1, 2]);
    expect(() => controlPartition("x", 0)).toThrow(/partition count/);
  });
});
