import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createRequire } from "node:module";
import { type AddressInfo, connect, createServer } from "node:net";
import { dirname, join } from "node:path";
import { zstdDecompressSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { npmPackage } from "../../core/install.ts";
import { BufferPool } from "../../core/kafka/buffer-pool.ts";
import {
  compressZstd,
  decompressChunkBytes,
  encoderBufferSource,
  encoderBuffers,
  kafkajsIsPatched,
  returnWrittenFrames,
} from "../../core/kafka/kafkajs-setup.ts";
import { unpackRecords } from "../../core/kafka/packing.ts";

/*
 * patches/kafkajs+2.2.4.patch against kafkajs 2.2.4 as published: the installed (patched) package and a pristine
 * copy unpacked from the registry are loaded side by side, each module by its path inside its own package.
 */
const require = createRequire(import.meta.url);
const patchedRoot = dirname(require.resolve("kafkajs/package.json"));
let pristineRoot = "";
/** A module of the installed kafkajs, by its path in the package. */
const patched = <T>(path: string) => require(join(patchedRoot, path)) as T;
/** The same module of kafkajs 2.2.4 as published. */
const pristine = <T>(path: string) => require(join(pristineRoot, path)) as T;

const ENCODER = "src/protocol/encoder.js";
const RECORD = "src/protocol/recordBatch/record/v0/index.js";
const RECORD_BATCH = "src/protocol/recordBatch/v0/index.js";
const REQUEST_QUEUE = "src/network/requestQueue/index.js";
const GROUPING = "src/producer/groupMessagesPerPartition.js";
const CRC32C = "src/protocol/recordBatch/crc32C/index.js";

beforeAll(async () => {
  pristineRoot = await npmPackage("kafkajs@2.2.4");
  // The pristine copy has no zstd codec: the same one as the patched package, through kafkajs's public registry.
  const codecs = (name: string) =>
    require(name) as { CompressionCodecs: Record<number, unknown>; CompressionTypes: { ZSTD: number } };
  const ours = codecs(patchedRoot);
  codecs(pristineRoot).CompressionCodecs[ours.CompressionTypes.ZSTD] =
    ours.CompressionCodecs[ours.CompressionTypes.ZSTD];
}, 120_000);

describe("kafkajs 2.2.4 with Lifeline's patch", () => {
  it("the installed kafkajs is patched and its pristine copy is not", () => {
    expect(kafkajsIsPatched()).toBe(true);
    expect(typeof (require(pristineRoot) as { useEncoderBuffers?: unknown }).useEncoderBuffers).toBe(
      "undefined",
    );
    // The group-less partition reader is an addition: pristine kafkajs has none.
    type WithReader = { Kafka: { prototype: { partitionReader?: unknown } } };
    expect(typeof (require(patchedRoot) as WithReader).Kafka.prototype.partitionReader).toBe("function");
    expect((require(pristineRoot) as WithReader).Kafka.prototype.partitionReader).toBeUndefined();
  });

  it("an idle request queue arms no timer; one with a waiting request or a throttle does (kafkajs's armed one)", () => {
    type Queue = { throttleCheckTimeoutId: NodeJS.Timeout | null };
    type RequestQueue = { prototype: { scheduleCheckPendingRequests(this: Queue): void } };
    const queue = (pending: unknown[], throttledUntil: number): Queue =>
      ({
        pending,
        throttledUntil,
        throttleCheckTimeoutId: null,
        checkPendingRequests() {},
      }) as Queue;
    const schedule = (module: RequestQueue, one: Queue) => {
      module.prototype.scheduleCheckPendingRequests.call(one);
      const armed = one.throttleCheckTimeoutId !== null;
      clearTimeout(one.throttleCheckTimeoutId as NodeJS.Timeout);
      return armed;
    };
    const ours = patched<RequestQueue>(REQUEST_QUEUE);
    expect(schedule(ours, queue([], Date.now() - 1_000))).toBe(false);
    expect(schedule(ours, queue([{}], 0))).toBe(true);
    expect(schedule(ours, queue([], Date.now() + 5_000))).toBe(true);
    expect(schedule(pristine<RequestQueue>(REQUEST_QUEUE), queue([], Date.now() - 1_000))).toBe(true);
  });

  it("the encoder writes an array of encoders as the concatenation of their bytes", () => {
    type Encoder = new () => {
      writeInt32(value: number): unknown;
      writeBytes(value: Buffer): unknown;
      writeEncoderArray(value: unknown[]): unknown;
      buffer: Buffer;
    };
    const Encoder = patched<Encoder>(ENCODER);
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

  it("the record batch checksum (CRC-32C, eight bytes a step) is kafkajs's own at every length and alignment", () => {
    type Crc = (buffer: Buffer) => number;
    const ours = patched<Crc>(CRC32C);
    const theirs = pristine<Crc>(CRC32C);
    const bytes = randomBytes(70_000);
    for (let length = 0; length <= 300; length++) {
      for (const start of [0, 1, 3, 7]) {
        const slice = bytes.subarray(start, start + length);
        expect(ours(slice), `length ${length} at ${start}`).toBe(theirs(slice));
      }
    }
    expect(ours(bytes)).toBe(theirs(bytes));
    // The check value of the CRC-32C catalogue ("123456789").
    expect(ours(Buffer.from("123456789"))).toBe(0xe3069283);
    expect(ours(Buffer.alloc(64, 0xff))).toBe(theirs(Buffer.alloc(64, 0xff)));
  });

  it("varints are written in place, byte for byte kafkajs's own, at every length and sign", () => {
    type Encoder = new () => {
      writeVarInt(value: number): unknown;
      writeUVarInt(value: number): unknown;
      writeInt8(value: number): unknown;
      buffer: Buffer;
    };
    const values = [
      0,
      1,
      -1,
      63,
      -64,
      64,
      127,
      128,
      8_191,
      16_383,
      16_384,
      2 ** 21,
      2 ** 28,
      2 ** 30,
      2 ** 31 - 1,
    ];
    const negatives = [-(2 ** 31), -(2 ** 30) - 1, -123_456_789];
    const encode = (Encoder: Encoder) => {
      const encoder = new Encoder();
      // Enough of them to outgrow the first buffer more than once.
      for (let round = 0; round < 200; round++) {
        for (const value of [...values, ...negatives]) encoder.writeVarInt(value);
        for (const value of values) encoder.writeUVarInt(value);
        encoder.writeInt8(round % 100);
      }
      return Buffer.from(encoder.buffer);
    };
    const ours = encode(patched<Encoder>(ENCODER));
    expect(ours.equals(encode(pristine<Encoder>(ENCODER)))).toBe(true);
    expect(ours.length).toBeGreaterThan(16 << 10);
  });

  it("produce requests are byte for byte those of kafkajs as published, pooled buffers and spliced records", async () => {
    // Every request is kept while the next ones are built: a buffer pooled while still in use would be overwritten.
    type ProduceRequest = (args: unknown) => {
      apiKey: number;
      apiVersion: number;
      encode(): Promise<unknown>;
    };
    type Frame = (args: {
      correlationId: number;
      clientId: string;
      request: unknown;
    }) => Promise<{ buffer: Buffer }>;
    const PRODUCE = "src/protocol/requests/produce/v3/request.js";
    const FRAME = "src/protocol/request.js";
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
            // Buffers are spliced; a string value takes kafkajs's own way. Some are noise, so that compressed
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
    const encodeAll = async (load: <T>(path: string) => T) => {
      const build = load<ProduceRequest>(PRODUCE);
      const frame = load<Frame>(FRAME);
      const out: Buffer[] = [];
      for (const [i, { compression, topicData }] of requests.entries()) {
        const request = build({ acks: -1, timeout: 30_000, compression, topicData });
        out.push((await frame({ correlationId: i, clientId: "test", request })).buffer);
      }
      return out;
    };
    const before = encoderBuffers.pooledBytes;
    const ours = await encodeAll(patched);
    expect(encoderBuffers.pooledBytes).toBeGreaterThan(before);
    const reference = await encodeAll(pristine);
    expect(ours.map((buffer) => buffer.length)).toEqual(reference.map((buffer) => buffer.length));
    for (const [i, buffer] of ours.entries())
      expect(buffer.equals(reference[i] as Buffer), `request ${i}`).toBe(true);
  });

  it("a spliced record reads as kafkajs's own record, headers and all", () => {
    type Record = (args: unknown) => { buffer: Buffer; splice?: unknown };
    const args = {
      offsetDelta: 3,
      timestampDelta: 12,
      key: "k",
      value: Buffer.from("lifeline ".repeat(3_000)),
      headers: { a: "1", b: ["2", "3"] },
    };
    const ours = patched<Record>(RECORD)(args);
    expect(ours.splice).toBeDefined();
    expect(ours.buffer.equals(pristine<Record>(RECORD)(args).buffer)).toBe(true);
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
    type RecordBatch = { RecordBatch(args: unknown): Promise<{ buffer: Buffer; offset: number }> };
    type Record = (args: unknown) => unknown;
    const records = (load: <T>(path: string) => T) =>
      Array.from({ length: 3 }, (_, i) =>
        load<Record>(RECORD)({ offsetDelta: i, key: "k", value: "x".repeat(30_000 + i) }),
      );
    const given: number[] = [];
    const Encoder = patched<{ useBuffers(buffers: typeof encoderBufferSource | null): void }>(ENCODER);
    Encoder.useBuffers({
      take: encoderBufferSource.take,
      give: (buffer) => {
        given.push(buffer.length);
        encoderBufferSource.give(buffer);
      },
    });
    try {
      const args = {
        firstSequence: 4,
        lastOffsetDelta: 2,
        firstTimestamp: 1_795_800_000_000,
        maxTimestamp: 1_795_800_000_002,
      };
      const theirs = await pristine<RecordBatch>(RECORD_BATCH).RecordBatch({
        ...args,
        records: records(pristine),
      });
      const ours = await patched<RecordBatch>(RECORD_BATCH).RecordBatch({
        ...args,
        records: records(patched),
      });
      expect(ours.buffer.equals(theirs.buffer)).toBe(true);
      // The batch's buffer, a little shorter than the batch with its offset and length, is among those given back.
      expect(given.filter((length) => length >= ours.offset - 12).length).toBeGreaterThan(0);
    } finally {
      Encoder.useBuffers(encoderBufferSource);
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

  it("groups messages per partition in order, as kafkajs did", () => {
    type Grouper = (args: {
      topic: string;
      partitionMetadata: unknown[];
      messages: unknown[];
      partitioner: (args: { message: unknown }) => number;
    }) => Record<number, Array<{ value: string }>>;
    const messages = Array.from({ length: 10 }, (_, i) => ({ key: String(i % 3), value: String(i) }));
    const args = {
      topic: "t",
      partitionMetadata: [{}, {}, {}],
      messages,
      partitioner: ({ message }: { message: unknown }) => Number((message as { key: string }).key),
    };
    const grouped = patched<Grouper>(GROUPING)(args);
    expect(
      Object.fromEntries(Object.entries(grouped).map(([p, list]) => [p, list.map((m) => m.value)])),
    ).toEqual({ 0: ["0", "3", "6", "9"], 1: ["1", "4", "7"], 2: ["2", "5", "8"] });
    expect(grouped).toEqual(pristine<Grouper>(GROUPING)(args));
    expect(patched<Grouper>(GROUPING)({ ...args, partitionMetadata: [] })).toEqual({});
  });

  it("zstd is registered through kafkajs's public codec registry and round-trips", async () => {
    const { CompressionCodecs, CompressionTypes } = require(patchedRoot) as {
      CompressionCodecs: Record<
        number,
        () => {
          compress(e: unknown): Promise<Buffer>;
          decompress(b: Buffer): Promise<Buffer>;
        }
      >;
      CompressionTypes: { ZSTD: number };
    };
    const codec = (
      CompressionCodecs[CompressionTypes.ZSTD] as () => ReturnType<(typeof CompressionCodecs)[number]>
    )();
    const input = Buffer.from("lifeline ".repeat(10_000));
    const Encoder = patched<new () => { writeBuffer(value: Buffer): unknown }>(ENCODER);
    const compressed = await codec.compress(new Encoder().writeBuffer(input));
    expect(compressed.length).toBeLessThan(input.length / 10);
    expect((await codec.decompress(compressed)).equals(input)).toBe(true);
    // Outputs of many decompression pieces: text compressed over 1,000 times (its piece is the 64 KiB floor), and
    // random bytes that do not compress (pieces of 2 MiB).
    const repetitive = Buffer.from("lifeline ".repeat(2_000_000));
    const random = randomBytes(5 << 20);
    for (const [name, text] of [
      ["repetitive", repetitive],
      ["random", random],
    ] as const) {
      // Copied at once, as kafkajs does: the compressed batch's buffer goes back to the pool on the next turn.
      const packed = Buffer.from(await codec.compress(new Encoder().writeBuffer(text)));
      const pieces = Math.ceil(text.length / decompressChunkBytes(packed.length));
      expect(pieces, name).toBeGreaterThan(1);
      expect((await codec.decompress(packed)).equals(text), name).toBe(true);
    }
    // Text much smaller than its piece (random bytes do not compress) holds no more than a fifth unused.
    const small = randomBytes(20_000);
    const unpacked = await codec.decompress(
      Buffer.from(await codec.compress(new Encoder().writeBuffer(small))),
    );
    expect(unpacked.equals(small)).toBe(true);
    expect(unpacked.buffer.byteLength).toBe(small.length);
  });

  it("a packed message value splits into its JSON documents", () => {
    expect(unpackRecords(Buffer.from('{"a":1}\n{"b":"x\\ny"}'))).toEqual(['{"a":1}', '{"b":"x\\ny"}']);
    expect(unpackRecords('{"a":1}')).toEqual(['{"a":1}']);
    expect(unpackRecords(null)).toEqual([]);
  });
});
