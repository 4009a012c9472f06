import { createRequire } from "node:module";
import type { Socket } from "node:net";
import { promisify } from "node:util";
import { constants, createZstdCompress, type ZstdCompress, zstdDecompress } from "node:zlib";
import { BufferPool } from "./buffer-pool.ts";

/*
 * Changes to kafkajs 2.2.4 (its last release) where it cost us time or memory, each said where it is made. Some
 * replace one of its internal modules before kafkajs loads it, so this module must be imported before "kafkajs";
 * test/unit/kafkajs-fixes.test.ts checks that kafkajs uses each replacement and that its bytes are kafkajs's own.
 */

/**
 * kafkajs groups a batch's messages per partition by copying the partition's array for every message: quadratic,
 * and the largest cost of a 2,500-message batch. Replaced with a linear grouping.
 */
type Grouper = (args: {
  topic: string;
  partitionMetadata: unknown[];
  messages: Array<{ key?: unknown; value?: unknown; partition?: number }>;
  partitioner: (args: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;
}) => Record<number, unknown[]>;

const require = createRequire(import.meta.url);
const modulePath = require.resolve("kafkajs/src/producer/groupMessagesPerPartition.js");

export const groupMessagesPerPartition: Grouper = ({ topic, partitionMetadata, messages, partitioner }) => {
  const result: Record<number, unknown[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    const list = result[partition];
    if (list) list.push(message);
    else result[partition] = [message];
  }
  return result;
};

/** Puts `exports` in place of kafkajs's module at `path`: every later require of it, kafkajs's own, gets ours. */
function replaceModule(path: string, exports: unknown): void {
  require(path);
  const cached = require.cache[path];
  if (cached) cached.exports = exports;
}

replaceModule(modulePath, groupMessagesPerPartition);

export function kafkajsGroupingIsLinear(): boolean {
  return require(modulePath) === groupMessagesPerPartition;
}

const decompress = promisify(zstdDecompress);

/** zstd output comes in pieces of buffers this size; one is enough for a whole 2 MiB batch of JSON text. */
const ZSTD_OUTPUT_CHUNK_BYTES = 128 << 10;

/**
 * Zstandard for Kafka record batches, from Node's own zlib (no extra native module): several times faster than
 * gzip at a better ratio. Registered for producing and consuming. Level 1, not zstd's default 3: on Lifeline's
 * JSON documents it compresses about 1.6 times faster at the same or a better ratio (measured: 1 GB/s, 17.8x).
 */
const zstdCodec = {
  compress: async (encoder: { buf: Buffer; buffer: Buffer }) => {
    const compressed = await compressZstd(encoder.buffer, batchOutputBuffer);
    encoderBuffers.give(encoder.buf);
    return compressed;
  },
  decompress: (buffer: Buffer) => decompress(buffer),
};

/**
 * One pass over a whole batch on the thread pool (not a round trip to the event loop per 16 KiB), by a compressor
 * kept for the next batch: each batch is one zstd frame (ended by the ZSTD_e_end flush), and the next write starts
 * the next frame. A fresh stream per batch allocated a zstd context (over a megabyte outside the heap) and a
 * 128 KiB output buffer each time, about a thousand times per million lines: the largest churn of malloc's heap.
 * The output is copied out at its size; an output buffer the stream has filled and left is freed at once (left to
 * the collector, these buffers were most of the memory waiting for collection).
 */
export function compressZstd(
  input: Buffer,
  allocate: (bytes: number) => Buffer = Buffer.allocUnsafe,
): Promise<Buffer> {
  const stream =
    idleCompressors.pop() ??
    createZstdCompress({
      params: { [constants.ZSTD_c_compressionLevel]: 1, [constants.ZSTD_c_windowLog]: ZSTD_WINDOW_LOG },
      chunkSize: ZSTD_OUTPUT_CHUNK_BYTES,
    });
  return new Promise((resolve, reject) => {
    const pieces: Buffer[] = [];
    let bytes = 0;
    const onData = (piece: Buffer) => {
      pieces.push(piece);
      bytes += piece.length;
    };
    const onError = (error: Error) => {
      stream.off("data", onData);
      stream.destroy();
      reject(error);
    };
    stream.on("data", onData);
    stream.once("error", onError);
    stream.write(input);
    stream.flush(constants.ZSTD_e_end, () => {
      stream.off("data", onData);
      stream.off("error", onError);
      if (stream.destroyed) return;
      const output = allocate(bytes);
      let offset = 0;
      for (const piece of pieces) offset += piece.copy(output, offset);
      const current = pieces.at(-1)?.buffer;
      for (const piece of pieces) {
        const backing = piece.buffer as ArrayBuffer;
        if (backing !== current && backing.byteLength >= ZSTD_OUTPUT_CHUNK_BYTES) backing.transfer(0);
      }
      if (idleCompressors.length < IDLE_COMPRESSORS) idleCompressors.push(stream);
      else stream.close();
      resolve(output);
    });
  });
}

/**
 * Where kafkajs gets a batch's compressed records: it copies them into the batch as soon as its await of the codec
 * resumes, within the microtasks of the compressor's callback, so the buffer goes back to the pool on the next turn
 * of the event loop instead of waiting for a collection (1,000 files: peak RSS 142 -> 139 MiB, medians of 5 runs).
 */
function batchOutputBuffer(bytes: number): Buffer {
  if (bytes < POOLED_ENCODER_BYTES) return Buffer.allocUnsafe(bytes);
  const pooled = encoderBuffers.take(bytes);
  setImmediate(() => encoderBuffers.give(pooled));
  return pooled.subarray(0, bytes);
}

/**
 * A 128 KiB window instead of level 1's 512 KiB: on 2 MiB batches of documents the same ratio or better (17.1x
 * against 16.8x), compressed in 1.6 ms instead of 1.8, and 0.7 MiB per kept compressor instead of 1.1.
 */
const ZSTD_WINDOW_LOG = 17;

/** A lane compresses one batch at a time, and the shipper has three by default: each keeps about 0.7 MiB. */
const IDLE_COMPRESSORS = 3;
const idleCompressors: ZstdCompress[] = [];

const codecs = require("kafkajs/src/protocol/message/compression/index.js") as {
  Codecs: Record<number, () => unknown>;
  Types: { None: number; ZSTD: number };
  COMPRESSION_CODEC_MASK: number;
  lookupCodec(type: number): unknown;
};
codecs.Codecs[codecs.Types.ZSTD] = () => zstdCodec;

/**
 * kafkajs re-arms a "check pending requests" timer after every check, even with nothing pending and no throttle:
 * a negative delay, which Node turns into 1 ms. Every idle broker connection then wakes the process a thousand
 * times a second (the idle agent's few percent of a core, and Node's TimeoutNegativeWarning). The check is only
 * needed while requests wait or a broker throttles us; otherwise push() schedules one when a request queues up.
 */
interface RequestQueueInternals {
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}
const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;
const RequestQueue = require("kafkajs/src/network/requestQueue/index.js") as {
  prototype: RequestQueueInternals;
};
RequestQueue.prototype.scheduleCheckPendingRequests = function scheduleCheckPendingRequests(
  this: RequestQueueInternals,
) {
  if (this.throttleCheckTimeoutId) return;
  const throttledFor = this.throttledUntil - Date.now();
  if (this.pending.length === 0 && throttledFor <= 0) return;
  const delay = throttledFor > 0 ? throttledFor : CHECK_PENDING_REQUESTS_INTERVAL_MS;
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, delay);
};

/**
 * kafkajs's encoder grows its buffer with zero-filled allocations, and writes an array of encoders (a batch's
 * records) one by one, doubling as it goes: a 2 MiB batch of 64 KiB packs is zero-filled and copied several times
 * over. Every byte below `offset` is written before it is read (`buffer` is the slice up to `offset`), so
 * uninitialised memory is never seen; an array is measured first and grown once.
 * A produce request is built from the inside out: records, the batch, its partition, its topic, the request, each
 * a new encoder copied into the next one and never read again (every kafkajs call site builds the encoder it
 * writes, right there). So a written encoder's buffer goes back to a pool, and the batch's records once they are
 * compressed. Left to the collector, these buffers were most of the shipper's memory outside the heap
 * (1,000 files tailed: 80-100 MiB waiting for collection, and malloc's heap fragmented by them).
 */
interface EncoderInternals {
  buf: Buffer;
  offset: number;
  buffer: Buffer;
  /** A record whose value is written from where it is, after these bytes (see `splicedRecord`). */
  splice?: { value: Buffer; tail: EncoderInternals };
  ensureAvailable(length: number): void;
  writeEncoder(value: EncoderInternals): EncoderInternals;
  writeEncoderArray(value: EncoderInternals[]): EncoderInternals;
  writeInt8(value: number): EncoderInternals;
  writeInt16(value: number): EncoderInternals;
  writeInt32(value: number): EncoderInternals;
  writeUInt32(value: number): EncoderInternals;
  writeInt64(value: unknown): EncoderInternals;
  writeArray(value: unknown[], type?: string): EncoderInternals;
  writeBuffer(value: Buffer): EncoderInternals;
  writeVarInt(value: number): EncoderInternals;
  writeVarLong(value: number): EncoderInternals;
  writeVarIntBytes(value: unknown): EncoderInternals;
  writeVarIntArray(value: EncoderInternals[]): EncoderInternals;
}
const Encoder = require("kafkajs/src/protocol/encoder.js") as {
  new (): EncoderInternals;
  prototype: EncoderInternals;
  nextPowerOfTwo(value: number): number;
  sizeOfVarInt(value: number): number;
  sizeOfVarLong(value: number): number;
  sizeOfVarIntBytes(value: unknown): number;
};
/** kafkajs's own encoder methods, for tests that compare bytes. */
export const originalEncoderMethods = {
  ensureAvailable: Encoder.prototype.ensureAvailable,
  writeEncoder: Encoder.prototype.writeEncoder,
  writeEncoderArray: Encoder.prototype.writeEncoderArray,
};
Encoder.prototype.ensureAvailable = function ensureAvailable(this: EncoderInternals, length: number) {
  if (this.offset + length <= this.buf.length) return;
  this.buf = grownEncoderBuffer(this.buf, this.offset, this.offset + length);
};
Encoder.prototype.writeEncoder = function writeEncoder(this: EncoderInternals, value: EncoderInternals) {
  if (value == null || !Buffer.isBuffer(value.buf)) throw new Error("value should be an instance of Encoder");
  this.ensureAvailable(encodedLength(value));
  this.offset = writeEncoded(value, this.buf, this.offset);
  return this;
};
Encoder.prototype.writeEncoderArray = function writeEncoderArray(
  this: EncoderInternals,
  value: EncoderInternals[],
) {
  if (!Array.isArray(value) || value.some((v) => v == null || !Buffer.isBuffer(v.buf))) {
    throw new Error("all values should be an instance of Encoder[]");
  }
  let total = 0;
  for (const encoder of value) total += encodedLength(encoder);
  if (this.offset + total > this.buf.length)
    this.buf = grownEncoderBuffer(this.buf, this.offset, this.offset + total);
  for (const encoder of value) this.offset = writeEncoded(encoder, this.buf, this.offset);
  return this;
};

/**
 * A buffer of at least `minimum` bytes holding `buf`'s first `written` ones; `buf` goes back to the pool. Nothing
 * else holds it: kafkajs reads an encoder's `buffer` only once it is complete (a checksum, the socket, a codec).
 */
function grownEncoderBuffer(buf: Buffer, written: number, minimum: number): Buffer {
  const grown = encoderBuffer(minimum);
  buf.copy(grown, 0, 0, written);
  encoderBuffers.give(buf);
  return grown;
}

function encodedLength(encoder: EncoderInternals): number {
  const splice = encoder.splice;
  return splice ? encoder.offset + splice.value.length + splice.tail.offset : encoder.offset;
}

/** Writes `encoder`'s bytes at `offset` of `target` and gives its buffers back; returns the offset after them. */
function writeEncoded(encoder: EncoderInternals, target: Buffer, offset: number): number {
  offset += encoder.buf.copy(target, offset, 0, encoder.offset);
  encoderBuffers.give(encoder.buf);
  const splice = encoder.splice;
  if (!splice) return offset;
  offset += splice.value.copy(target, offset);
  return writeEncoded(splice.tail, target, offset);
}

/**
 * kafkajs copies each message's value into an encoder of its own, and then that encoder into the batch's records
 * buffer: two copies of every byte before compression, and a batch's size in short-lived buffers. This record
 * holds its value where it is (a pack) and writes it straight into the records buffer: the same bytes
 * (test/unit/kafkajs-fixes.test.ts compares them with kafkajs's own), one copy. Values that are not buffers
 * take kafkajs's way. Installed like the grouping above: before kafkajs loads its produce requests.
 */
interface RecordArgs {
  offsetDelta?: number;
  timestampDelta?: number;
  key: unknown;
  value: unknown;
  headers?: Record<string, unknown>;
}
type RecordEncoder = (args: RecordArgs) => EncoderInternals;
const recordModulePath = require.resolve("kafkajs/src/protocol/recordBatch/record/v0/index.js");
export const originalRecord = require(recordModulePath) as RecordEncoder;
const Header = require("kafkajs/src/protocol/recordBatch/header/v0/index.js") as (header: {
  key: string;
  value: unknown;
}) => EncoderInternals;

export const splicedRecord: RecordEncoder = (args) => {
  const { offsetDelta = 0, timestampDelta = 0, key, value, headers = {} } = args;
  if (!Buffer.isBuffer(value)) return originalRecord(args);
  const headerEncoders: EncoderInternals[] = [];
  for (const name of Object.keys(headers)) {
    const headerValue = headers[name];
    if (Array.isArray(headerValue))
      for (const one of headerValue) headerEncoders.push(Header({ key: name, value: one }));
    else headerEncoders.push(Header({ key: name, value: headerValue }));
  }
  const tail = new Encoder().writeVarIntArray(headerEncoders);
  const sizeOfBody =
    1 +
    Encoder.sizeOfVarLong(timestampDelta) +
    Encoder.sizeOfVarInt(offsetDelta) +
    Encoder.sizeOfVarIntBytes(key) +
    Encoder.sizeOfVarIntBytes(value) +
    tail.offset;
  const head = new Encoder()
    .writeVarInt(sizeOfBody)
    .writeInt8(0)
    .writeVarLong(timestampDelta)
    .writeVarInt(offsetDelta)
    .writeVarIntBytes(key)
    .writeVarInt(value.length);
  head.splice = { value, tail };
  return head;
};
replaceModule(recordModulePath, splicedRecord);

export function kafkajsRecordIsSpliced(): boolean {
  return require(recordModulePath) === splicedRecord;
}

/**
 * kafkajs's record batch ends as `writeBytes(batch.buffer)`: the batch's encoder is copied and dropped, and its
 * buffer, often from the pool, waits for a full collection (at 1,000 files the largest memory left to the collector:
 * 125 MiB per 3,000,000 lines). The same batch, byte for byte, with that encoder written as one (its buffer goes
 * back). Installed like the record above, before kafkajs's produce requests load it.
 */
interface RecordBatchArgs {
  compression?: number;
  firstOffset?: unknown;
  firstTimestamp?: number;
  maxTimestamp?: number;
  partitionLeaderEpoch?: number;
  lastOffsetDelta?: number;
  transactional?: boolean;
  producerId?: unknown;
  producerEpoch?: number;
  firstSequence?: number;
  records?: EncoderInternals[];
}
type RecordBatchEncoder = (args: RecordBatchArgs) => Promise<EncoderInternals>;
const recordBatchModulePath = require.resolve("kafkajs/src/protocol/recordBatch/v0/index.js");
const recordBatchModule = require(recordBatchModulePath) as {
  RecordBatch: RecordBatchEncoder;
  MAGIC_BYTE: number;
};
export const originalRecordBatch = recordBatchModule.RecordBatch;
const Long = require("kafkajs/src/utils/long.js") as {
  fromInt(value: number): unknown;
  fromValue(value: number): unknown;
};
const crc32C = require("kafkajs/src/protocol/recordBatch/crc32C/index.js") as (buffer: Buffer) => number;
const TRANSACTIONAL_MASK = 16;

export const returningRecordBatch: RecordBatchEncoder = async ({
  compression = codecs.Types.None,
  firstOffset = Long.fromInt(0),
  firstTimestamp = Date.now(),
  maxTimestamp = Date.now(),
  partitionLeaderEpoch = 0,
  lastOffsetDelta = 0,
  transactional = false,
  producerId = Long.fromValue(-1),
  producerEpoch = 0,
  firstSequence = 0,
  records = [],
}) => {
  const attributes = (compression & codecs.COMPRESSION_CODEC_MASK) | (transactional ? TRANSACTIONAL_MASK : 0);
  const batchBody = new Encoder()
    .writeInt16(attributes)
    .writeInt32(lastOffsetDelta)
    .writeInt64(firstTimestamp)
    .writeInt64(maxTimestamp)
    .writeInt64(producerId)
    .writeInt16(producerEpoch)
    .writeInt32(firstSequence);
  if (compression === codecs.Types.None) {
    if (records.every((record) => typeof record === typeof records[0]))
      batchBody.writeArray(records, typeof records[0]);
    else batchBody.writeArray(records);
  } else {
    const recordsEncoder = new Encoder().writeEncoderArray(records);
    const codec = codecs.lookupCodec(compression) as { compress(encoder: EncoderInternals): Promise<Buffer> };
    batchBody.writeInt32(records.length).writeBuffer(await codec.compress(recordsEncoder));
  }
  const batch = new Encoder()
    .writeInt32(partitionLeaderEpoch)
    .writeInt8(recordBatchModule.MAGIC_BYTE)
    .writeUInt32(crc32C(batchBody.buffer))
    .writeEncoder(batchBody);
  // writeBytes is the length and then the bytes.
  return new Encoder().writeInt64(firstOffset).writeInt32(batch.offset).writeEncoder(batch);
};
replaceModule(recordBatchModulePath, { ...recordBatchModule, RecordBatch: returningRecordBatch });

export function kafkajsRecordBatchReturnsItsBuffer(): boolean {
  return (require(recordBatchModulePath) as { RecordBatch: unknown }).RecordBatch === returningRecordBatch;
}

/**
 * A request's outermost encoder is not written into another one: it goes to the socket, and kafkajs drops it once
 * written. Left to the collector, these frames (a compressed batch or more each, hundreds per million lines) live
 * through a round trip to the broker, long enough to be promoted, and then wait for a full collection. kafkajs's
 * socket factory is wrapped so that a frame from the pool goes back to it once the socket has written it.
 * Installed before kafkajs loads the factory, like the grouping above.
 */
type SocketFactory = (args: unknown) => Socket;
const socketFactoryPath = require.resolve("kafkajs/src/network/socketFactory.js");
const defaultSocketFactory = require(socketFactoryPath) as () => SocketFactory;
replaceModule(socketFactoryPath, () => {
  const create = defaultSocketFactory();
  return (args: unknown) => returnWrittenFrames(create(args));
});

export function returnWrittenFrames(socket: Socket): Socket {
  const write = socket.write;
  socket.write = function writeFrame(this: Socket, chunk: unknown, ...rest: unknown[]): boolean {
    if (!Buffer.isBuffer(chunk) || !encoderBuffers.handedOut(chunk.buffer)) {
      return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    }
    const callback =
      typeof rest.at(-1) === "function" ? (rest.pop() as (error?: Error | null) => void) : undefined;
    const memory = chunk.buffer as ArrayBuffer;
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest, (error?: Error | null) => {
      encoderBuffers.give(Buffer.from(memory, 0, memory.byteLength));
      callback?.(error);
    });
  } as Socket["write"];
  return socket;
}

/** Encoder buffers from 16 KiB come from the pool; smaller ones are left to Node, as before. */
const POOLED_ENCODER_BYTES = 16 << 10;
export const encoderBuffers = new BufferPool({ limitBytes: 4 << 20, minBytes: POOLED_ENCODER_BYTES });

function encoderBuffer(minimum: number): Buffer {
  return minimum < POOLED_ENCODER_BYTES
    ? Buffer.allocUnsafe(Encoder.nextPowerOfTwo(minimum))
    : encoderBuffers.take(minimum);
}
