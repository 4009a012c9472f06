import { createRequire } from "node:module";
import { promisify } from "node:util";
import { constants, createZstdCompress, zstdDecompress } from "node:zlib";
import { BufferPool } from "./buffer-pool.ts";

/**
 * kafkajs 2.2.4 (its last release) groups a batch's messages per partition by copying the partition's array
 * for every message: quadratic, and the largest cost of a 2,500-message batch. This module replaces that one
 * internal function with a linear one before kafkajs loads it; it must be imported before "kafkajs".
 * test/unit/kafkajs-fixes.test.ts checks that the replacement is the one kafkajs uses.
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

require(modulePath);
const cached = require.cache[modulePath];
if (cached) cached.exports = groupMessagesPerPartition;

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
    const compressed = await compressZstd(encoder.buffer);
    encoderBuffers.give(encoder.buf);
    return compressed;
  },
  decompress: (buffer: Buffer) => decompress(buffer),
};

/**
 * One pass over a whole batch on the thread pool (not a round trip to the event loop per 16 KiB). The output is
 * copied out at its size and the stream's output buffers are freed at once: left to the collector, these 128 KiB
 * buffers were the largest part of the memory waiting for collection (about 18 MiB with 1,000 files tailed).
 */
function compressZstd(input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const stream = createZstdCompress({
      params: { [constants.ZSTD_c_compressionLevel]: 1 },
      chunkSize: ZSTD_OUTPUT_CHUNK_BYTES,
    });
    const pieces: Buffer[] = [];
    let bytes = 0;
    stream.on("data", (piece: Buffer) => {
      pieces.push(piece);
      bytes += piece.length;
    });
    stream.once("error", reject);
    stream.once("end", () => {
      const output = Buffer.allocUnsafe(bytes);
      let offset = 0;
      for (const piece of pieces) offset += piece.copy(output, offset);
      for (const backing of new Set(pieces.map((piece) => piece.buffer as ArrayBuffer))) {
        if (backing.byteLength >= ZSTD_OUTPUT_CHUNK_BYTES) backing.transfer(0);
      }
      resolve(output);
    });
    stream.end(input);
  });
}

const codecs = require("kafkajs/src/protocol/message/compression/index.js") as {
  Codecs: Record<number, () => unknown>;
  Types: { ZSTD: number };
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
  ensureAvailable(length: number): void;
  writeEncoder(value: EncoderInternals): EncoderInternals;
  writeEncoderArray(value: EncoderInternals[]): EncoderInternals;
}
const Encoder = require("kafkajs/src/protocol/encoder.js") as {
  prototype: EncoderInternals;
  nextPowerOfTwo(value: number): number;
};
/** kafkajs's own encoder methods, for tests that compare bytes. */
export const originalEncoderMethods = {
  ensureAvailable: Encoder.prototype.ensureAvailable,
  writeEncoder: Encoder.prototype.writeEncoder,
  writeEncoderArray: Encoder.prototype.writeEncoderArray,
};
Encoder.prototype.ensureAvailable = function ensureAvailable(this: EncoderInternals, length: number) {
  if (this.offset + length <= this.buf.length) return;
  const grown = encoderBuffer(this.offset + length);
  this.buf.copy(grown, 0, 0, this.offset);
  this.buf = grown;
};
Encoder.prototype.writeEncoder = function writeEncoder(this: EncoderInternals, value: EncoderInternals) {
  if (value == null || !Buffer.isBuffer(value.buf)) throw new Error("value should be an instance of Encoder");
  this.ensureAvailable(value.offset);
  value.buf.copy(this.buf, this.offset, 0, value.offset);
  this.offset += value.offset;
  encoderBuffers.give(value.buf);
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
  for (const encoder of value) total += encoder.offset;
  if (this.offset + total > this.buf.length) {
    const grown = encoderBuffer(this.offset + total);
    this.buf.copy(grown, 0, 0, this.offset);
    this.buf = grown;
  }
  for (const encoder of value) {
    encoder.buf.copy(this.buf, this.offset, 0, encoder.offset);
    this.offset += encoder.offset;
    encoderBuffers.give(encoder.buf);
  }
  return this;
};

/** Encoder buffers from 16 KiB come from the pool; smaller ones are left to Node, as before. */
const POOLED_ENCODER_BYTES = 16 << 10;
export const encoderBuffers = new BufferPool({ limitBytes: 4 << 20, minBytes: POOLED_ENCODER_BYTES });

function encoderBuffer(minimum: number): Buffer {
  return minimum < POOLED_ENCODER_BYTES
    ? Buffer.allocUnsafe(Encoder.nextPowerOfTwo(minimum))
    : encoderBuffers.take(minimum);
}
