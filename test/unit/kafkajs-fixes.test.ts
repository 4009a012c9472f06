import { once } from "node:events";
import { createRequire } from "node:module";
import { type AddressInfo, connect, createServer } from "node:net";
import { zstdDecompressSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { BufferPool } from "../../core/kafka/buffer-pool.ts";
import {
  compressZstd,
  encoderBuffers,
  groupMessagesPerPartition,
  kafkajsGroupingIsLinear,
  kafkajsRecordBatchReturnsItsBuffer,
  kafkajsRecordIsSpliced,
  originalEncoderMethods,
  originalRecord,
  originalRecordBatch,
  returningRecordBatch,
  returnWrittenFrames,
} from "../../core/kafka/kafkajs-fixes.ts";
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
    // Before writing: a written encoder's buffer belongs to the pool afterwards.
    const expected = Buffer.concat([
      Buffer.from([255, 255, 255, 255]),
      ...parts.map((part) => Buffer.from(part.buffer)),
      Buffer.from([255, 255, 255, 254]),
    ]);
    const whole = new Encoder();
    whole.writeInt32(-1);
    whole.writeEncoderArray(parts);
    whole.writeInt32(-2);
    expect(whole.buffer.equals(expected)).toBe(true);
  });

  it("produce requests built with pooled encoder buffers and spliced records are byte for byte kafkajs's own", async () => {
    // Every request is kept while the next ones are built: a buffer pooled while still in use would be overwritten.
    type ProduceRequest = (args: unknown) => {
      apiKey: number;
      apiVersion: number;
      encode(): Promise<unknown>;
    };
    const requestPath = require.resolve("kafkajs/src/protocol/requests/produce/v3/request.js");
    const produceRequest = require(requestPath) as ProduceRequest;
    // The same module loaded once more while kafkajs's own Record is in place: the reference.
    const recordModule = require.cache[
      require.resolve("kafkajs/src/protocol/recordBatch/record/v0/index.js")
    ] as NodeJS.Module;
    const recordBatchModule = require.cache[
      require.resolve("kafkajs/src/protocol/recordBatch/v0/index.js")
    ] as NodeJS.Module;
    const requestModule = require.cache[requestPath] as NodeJS.Module;
    const spliced = recordModule.exports;
    const returning = recordBatchModule.exports;
    delete require.cache[requestPath];
    recordModule.exports = originalRecord;
    recordBatchModule.exports = { ...returning, RecordBatch: originalRecordBatch };
    let kafkajsProduceRequest: ProduceRequest;
    try {
      kafkajsProduceRequest = require(requestPath) as ProduceRequest;
    } finally {
      recordModule.exports = spliced;
      recordBatchModule.exports = returning;
      require.cache[requestPath] = requestModule;
    }
    expect(kafkajsProduceRequest).not.toBe(produceRequest);
    const frame = require("kafkajs/src/protocol/request.js") as (args: {
      correlationId: number;
      clientId: string;
      request: unknown;
    }) => Promise<{ buffer: Buffer }>;
    let seed = 7;
    const random = () => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed / 2 ** 32;
    };
    const requests = Array.from({ length: 24 }, (_, r) => ({
      compression: r % 3 === 0 ? 0 : 4,
      topicData: Array.from({ length: 1 + (r % 3) }, (_, t) => ({
        topic: `topic-${t}`,
        partitions: Array.from({ length: 1 + (r % 4) }, (_, p) => ({
          partition: p,
          firstSequence: r * 100 + p,
          messages: Array.from({ length: 1 + Math.floor(random() * 40) }, (_, m) => ({
            key: `host-${r}-${p}`,
            // Buffers are spliced; a string value takes kafkajs's own Record. Some are noise, so that compressed
            // batches come large enough for pooled output buffers.
            value:
              m === 1
                ? Buffer.from(Array.from({ length: 40_000 }, () => Math.floor(random() * 256)))
                : (m % 7 === 6 ? String : Buffer.from)(
                    `{"seq":${m},"text":"${"lifeline ".repeat(Math.floor(random() * 8_000))}"}`.repeat(
                      1 + (m % 3),
                    ),
                  ),
            headers: { "lifeline-records": String(1 + (m % 3)) },
            timestamp: 1_795_800_000_000 + m,
          })),
        })),
      })),
    }));
    const encodeAll = async (build: ProduceRequest) => {
      const out: Buffer[] = [];
      for (const [i, { compression, topicData }] of requests.entries()) {
        const request = build({ acks: -1, timeout: 30_000, compression, topicData });
        out.push((await frame({ correlationId: i, clientId: "test", request })).buffer);
      }
      return out;
    };
    const pooled = await encodeAll(produceRequest);
    const prototype = (require("kafkajs/src/protocol/encoder.js") as { prototype: Record<string, unknown> })
      .prototype;
    const patched = { ...originalEncoderMethods };
    for (const name of Object.keys(patched) as Array<keyof typeof patched>) {
      patched[name] = prototype[name] as never;
      prototype[name] = originalEncoderMethods[name];
    }
    let reference: Buffer[];
    try {
      reference = await encodeAll(kafkajsProduceRequest);
    } finally {
      Object.assign(prototype, patched);
    }
    expect(encoderBuffers.pooledBytes).toBeGreaterThan(0);
    expect(pooled.map((buffer) => buffer.length)).toEqual(reference.map((buffer) => buffer.length));
    for (const [i, buffer] of pooled.entries())
      expect(buffer.equals(reference[i] as Buffer), `request ${i}`).toBe(true);
  });

  it("zstd compressors kept between batches make one whole frame per batch, side by side or one after another", async () => {
    const inputs = Array.from({ length: 12 }, (_, i) =>
      Buffer.from(
        `{"batch":${i},"text":"${"lifeline restart ".repeat(1 + i * 9_000)}"}\n`.repeat(1 + (i % 4)),
      ),
    );
    // Three at a time (as three lanes do), then one by one on the compressors those left idle.
    const outputs = [
      ...(await Promise.all(inputs.slice(0, 3).map((input) => compressZstd(input)))),
      ...(await Promise.all(inputs.slice(3, 6).map((input) => compressZstd(input)))),
    ];
    for (const input of inputs.slice(6)) outputs.push(await compressZstd(input));
    for (const [i, output] of outputs.entries()) {
      expect(output.readUInt32LE(0), `frame magic of batch ${i}`).toBe(0xfd2fb528);
      expect(zstdDecompressSync(output).equals(inputs[i] as Buffer), `batch ${i}`).toBe(true);
    }
    const total = (buffers: Buffer[]) => buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    expect(total(outputs)).toBeLessThan(total(inputs) / 10);
  });

  it("a record batch's own encoder buffer goes back to the pool, and the batch is kafkajs's byte for byte", async () => {
    const Record = require("kafkajs/src/protocol/recordBatch/record/v0/index.js") as (
      args: unknown,
    ) => unknown;
    const records = () =>
      Array.from({ length: 3 }, (_, i) =>
        Record({ offsetDelta: i, key: "k", value: "x".repeat(30_000 + i) }),
      );
    const given: number[] = [];
    const give = encoderBuffers.give;
    encoderBuffers.give = function (this: BufferPool, buffer: Buffer) {
      given.push(buffer.length);
      give.call(this, buffer);
    };
    try {
      const args = {
        firstSequence: 4,
        lastOffsetDelta: 2,
        firstTimestamp: 1_795_800_000_000,
        maxTimestamp: 1_795_800_000_002,
      };
      const theirs = await originalRecordBatch({ ...args, records: records() } as never);
      const theirGives = given.splice(0).filter((length) => length >= theirs.offset).length;
      const ours = await returningRecordBatch({ ...args, records: records() } as never);
      const ourGives = given.splice(0).filter((length) => length >= ours.offset).length;
      expect(ours.buffer.equals(theirs.buffer)).toBe(true);
      // The batch's buffer, a little shorter than the batch with its offset and length.
      expect(ourGives).toBe(theirGives + 1);
    } finally {
      encoderBuffers.give = give;
    }
  });

  it("a request frame from the encoder pool goes back to it once the socket has written it, no other buffer", async () => {
    const received: Buffer[] = [];
    const server = createServer((peer) => peer.on("data", (data: Buffer) => received.push(data)));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const socket = returnWrittenFrames(connect((server.address() as AddressInfo).port, "127.0.0.1"));
    await once(socket, "connect");
    try {
      const frame = encoderBuffers.take(100_000).fill(7);
      const own = Buffer.alloc(100_000, 9);
      const memory = frame.buffer;
      await new Promise((resolve) => socket.write(frame.subarray(0, 99_000), resolve));
      // Back in the pool (the next take of its size hands it out), or freed if the pool was full.
      const taken = Array.from({ length: 32 }, () => encoderBuffers.take(100_000));
      expect(memory.byteLength === 0 || taken.some((buffer) => buffer.buffer === memory)).toBe(true);
      for (const buffer of taken) encoderBuffers.give(buffer);
      await new Promise((resolve) => socket.write(own, resolve));
      expect(own.buffer.byteLength).toBeGreaterThan(0);
      expect(own[0]).toBe(9);
      socket.end();
      await once(server.close(), "close");
      const bytes = Buffer.concat(received);
      expect(bytes.length).toBe(199_000);
      expect(bytes[98_999]).toBe(7);
      expect(bytes[99_000]).toBe(9);
    } finally {
      socket.destroy();
      server.close();
    }
  });

  it("the buffer pool hands out its size classes and keeps no more than its limit", () => {
    const pool = new BufferPool({ limitBytes: 256 << 10, minBytes: 16 << 10 });
    expect(BufferPool.sizeClass(65_536)).toBe(65_536);
    expect(BufferPool.sizeClass(65_537)).toBe(65_536 + 16_384);
    expect(BufferPool.sizeClass((2 << 20) + 100)).toBe((2 << 20) + (512 << 10));
    expect(pool.take(100).length).toBe(16 << 10);
    const a = pool.take(70_000);
    expect(a.length).toBe(81_920);
    pool.give(a);
    expect(pool.pooledBytes).toBe(81_920);
    expect(pool.take(66_000)).toBe(a);
    // No free buffer of the class: the smallest free one up to twice its size.
    const b = pool.take(100_000);
    pool.give(b);
    expect(pool.take(60_000)).toBe(b);
    pool.give(b);
    expect(pool.take(30_000)).not.toBe(b);
    expect(pool.take(60_000)).toBe(b);
    // A slice, or a buffer of no size class, is never pooled.
    pool.give(a.subarray(0, 40_000));
    pool.give(Buffer.allocUnsafeSlow(70_000));
    expect(pool.pooledBytes).toBe(0);
    // Over the limit: freed at once (detached), not kept.
    const big = [pool.take(200_000), pool.take(200_000)];
    for (const buffer of big) pool.give(buffer);
    expect(pool.pooledBytes).toBe(229_376);
    expect(big[1]?.buffer.byteLength).toBe(0);
  });

  it("kafkajs's producer uses the linear per-partition grouping and the spliced record", () => {
    expect(kafkajsGroupingIsLinear()).toBe(true);
    expect(kafkajsRecordIsSpliced()).toBe(true);
    expect(kafkajsRecordBatchReturnsItsBuffer()).toBe(true);
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
    const input = Buffer.from("lifeline ".repeat(10_000));
    const Encoder = require("kafkajs/src/protocol/encoder.js") as new () => {
      writeBuffer(value: Buffer): { buffer: Buffer };
    };
    const compressed = await codec.compress(new Encoder().writeBuffer(input));
    expect(compressed.length).toBeLessThan(input.length / 10);
    expect((await codec.decompress(compressed)).equals(input)).toBe(true);
  });

  it("a packed message value splits into its JSON documents", () => {
    expect(unpackRecords(Buffer.from('{"a":1}\n{"b":"x\\ny"}'))).toEqual(['{"a":1}', '{"b":"x\\ny"}']);
    expect(unpackRecords('{"a":1}')).toEqual(['{"a":1}']);
    expect(unpackRecords(null)).toEqual([]);
  });
});
