import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { groupMessagesPerPartition, kafkajsGroupingIsLinear } from "../../core/kafka/kafkajs-fixes.ts";
import { unpackRecords } from "../../core/kafka/packing.ts";

const require = createRequire(import.meta.url);

describe("kafkajs fixes", () => {
  it("an idle request queue arms no timer; one with a waiting request or a throttle does", () => {
    const RequestQueue = require("kafkajs/src/network/requestQueue/index.js") as {
      prototype: { scheduleCheckPendingRequests(this: unknown): void };
    };
    const queue = (pending: unknown[], throttledUntil: number) => ({
      pending,
      throttledUntil,
      throttleCheckTimeoutId: null as NodeJS.Timeout | null,
      checkPendingRequests() {},
    });
    const idle = queue([], Date.now() - 1_000);
    RequestQueue.prototype.scheduleCheckPendingRequests.call(idle);
    expect(idle.throttleCheckTimeoutId).toBeNull();
    for (const busy of [queue([{}], 0), queue([], Date.now() + 5_000)]) {
      RequestQueue.prototype.scheduleCheckPendingRequests.call(busy);
      expect(busy.throttleCheckTimeoutId).not.toBeNull();
      clearTimeout(busy.throttleCheckTimeoutId as NodeJS.Timeout);
    }
  });

  it("kafkajs's encoder writes an array of encoders as the concatenation of their bytes", () => {
    const Encoder = require("kafkajs/src/protocol/encoder.js") as new () => {
      writeInt32(value: number): unknown;
      writeBytes(value: Buffer): unknown;
      writeEncoderArray(value: unknown[]): unknown;
      buffer: Buffer;
    };
    const parts = [1, 70_000, 3, 300_000].map((size, i) => {
      const part = new Encoder();
      part.writeInt32(i);
      part.writeBytes(Buffer.alloc(size, i + 1));
      return part;
    });
    const whole = new Encoder();
    whole.writeInt32(-1);
    whole.writeEncoderArray(parts);
    whole.writeInt32(-2);
    const expected = Buffer.concat([
      Buffer.from([255, 255, 255, 255]),
      ...parts.map((part) => part.buffer),
      Buffer.from([255, 255, 255, 254]),
    ]);
    expect(whole.buffer.equals(expected)).toBe(true);
  });

  it("kafkajs's producer uses the linear per-partition grouping", () => {
    expect(kafkajsGroupingIsLinear()).toBe(true);
  });

  it("groups messages per partition in order", () => {
    const messages = Array.from({ length: 10 }, (_, i) => ({ key: String(i % 3), value: String(i) }));
    const grouped = groupMessagesPerPartition({
      topic: "t",
      partitionMetadata: [{}, {}, {}],
      messages,
      partitioner: ({ message }) => Number((message as { key: string }).key),
    });
    expect(
      Object.fromEntries(
        Object.entries(grouped).map(([p, list]) => [
          p,
          (list as Array<{ value: string }>).map((m) => m.value),
        ]),
      ),
    ).toEqual({
      0: ["0", "3", "6", "9"],
      1: ["1", "4", "7"],
      2: ["2", "5", "8"],
    });
  });

  it("zstd is registered as a Kafka codec and round-trips", async () => {
    const codecs = require("kafkajs/src/protocol/message/compression/index.js") as {
      lookupCodec: (type: number) => {
        compress(e: { buffer: Buffer }): Promise<Buffer>;
        decompress(b: Buffer): Promise<Buffer>;
      };
    };
    const codec = codecs.lookupCodec(4);
    const input = Buffer.from("lifeline ".repeat(1_000));
    const compressed = await codec.compress({ buffer: input });
    expect(compressed.length).toBeLessThan(input.length / 10);
    expect((await codec.decompress(compressed)).equals(input)).toBe(true);
  });

  it("a packed message value splits into its JSON documents", () => {
    expect(unpackRecords(Buffer.from('{"a":1}\n{"b":"x\\ny"}'))).toEqual(['{"a":1}', '{"b":"x\\ny"}']);
    expect(unpackRecords('{"a":1}')).toEqual(['{"a":1}']);
    expect(unpackRecords(null)).toEqual([]);
  });
});
