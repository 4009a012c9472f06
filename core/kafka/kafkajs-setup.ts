import { connect as connectTcp, isIP, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { promisify } from "node:util";
import { constants, createZstdCompress, type ZstdCompress, zstdDecompress } from "node:zlib";
import kafkajs, { type ISocketFactory } from "kafkajs";
import { BufferPool } from "./buffer-pool.ts";

/*
 * What Lifeline sets up in kafkajs 2.2.4, through its public API: the zstd codec (CompressionCodecs), a socket
 * factory (the client's `socketFactory` option) and where its encoders take buffers from (`useEncoderBuffers`,
 * the one export patches/kafkajs+2.2.4.patch adds). The patch itself changes kafkajs's source at install
 * (patch-package, run by `npm ci`), each change commented in place; docs/kafka-client.md lists them and why.
 * test/unit/kafkajs-patch.test.ts compares the patched kafkajs with kafkajs 2.2.4 as published, byte for byte.
 */

/** Whether the kafkajs that Node loads here carries Lifeline's patch. */
export function kafkajsIsPatched(): boolean {
  return typeof (kafkajs as { useEncoderBuffers?: unknown }).useEncoderBuffers === "function";
}

if (!kafkajsIsPatched()) {
  throw new Error(
    "kafkajs is installed without Lifeline's patch (patches/kafkajs+2.2.4.patch): run `npm ci` in Lifeline's " +
      "folder, whose postinstall applies it, or `npx patch-package` after an install with --ignore-scripts",
  );
}

/** Encoder buffers from 16 KiB come from the pool; smaller ones are left to Node, as kafkajs does. */
const POOLED_ENCODER_BYTES = 16 << 10;
export const encoderBuffers = new BufferPool({ limitBytes: 4 << 20, minBytes: POOLED_ENCODER_BYTES });

/** What kafkajs's encoders grow into and give back to (the patch's Encoder.useBuffers). */
export const encoderBufferSource = {
  take: (minimum: number): Buffer =>
    minimum < POOLED_ENCODER_BYTES
      ? Buffer.allocUnsafe(2 ** Math.ceil(Math.log2(minimum + 1)))
      : encoderBuffers.take(minimum),
  give: (buffer: Buffer): void => encoderBuffers.give(buffer),
};
kafkajs.useEncoderBuffers(encoderBufferSource);

// kafkajs is CommonJS; Node's named exports of it miss CompressionCodecs (built by an object literal).
kafkajs.CompressionCodecs[kafkajs.CompressionTypes.ZSTD] = () => zstdCodec;

/**
 * kafkajs's own socket factory (TCP or TLS, keep-alive after 60 s), with written frames going back to the pool.
 * A request's outermost encoder is not written into another one: it goes to the socket, and kafkajs drops it once
 * written. Left to the collector, these frames (a compressed batch or more each, hundreds per million lines) live
 * through a round trip to the broker, long enough to be promoted, and then wait for a full collection.
 */
export const socketFactory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
  const socket = ssl
    ? connectTls({ host, port, ...(isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
    : connectTcp({ host, port }, onConnect);
  socket.setKeepAlive(true, 60_000);
  return returnWrittenFrames(socket);
};

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
  decompress: async (buffer: Buffer) => {
    const text = await decompress(buffer, { chunkSize: decompressChunkBytes(buffer.length) });
    // Text that fit one piece is a slice of that piece, and lives as long as the records that point into it: when
    // it leaves over a fifth of the piece unused (data that compresses less than JSON), it is copied out.
    // (Into memory of its own: Node's shared pool would hand out a slice of a 64 KiB slab below 32 KiB.)
    if (text.byteLength * 1.25 >= text.buffer.byteLength) return text;
    const copy = Buffer.allocUnsafeSlow(text.byteLength);
    text.copy(copy);
    return copy;
  },
};

/**
 * The output piece for decompressing a batch of `compressedBytes`: about its whole text (JSON compresses 10-18
 * times), between 64 KiB and 2 MiB. Each piece is a round trip from the thread pool to the event loop: with zlib's
 * default 16 KiB, a 4 MiB fetch of 900 KB batches took 230-500 ms and 300 ms of CPU to decompress, against 62-95 ms
 * and 92 ms (measured alone, 73 batches of the indexer bench's records).
 */
export function decompressChunkBytes(compressedBytes: number): number {
  return Math.min(2 << 20, Math.max(64 << 10, compressedBytes * 16));
}

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
 * of the event loop instead of waiting for a collection (bench/tuning.md).
 */
function batchOutputBuffer(bytes: number): Buffer {
  if (bytes < POOLED_ENCODER_BYTES) return Buffer.allocUnsafe(bytes);
  const pooled = encoderBuffers.take(bytes);
  setImmediate(() => encoderBuffers.give(pooled));
  return pooled.subarray(0, bytes);
}

/**
 * A 128 KiB window instead of level 1's 512 KiB: on 2 MiB batches of documents the same ratio or better, faster,
 * and less memory per kept compressor (bench/tuning.md).
 */
const ZSTD_WINDOW_LOG = 17;

/** A lane compresses one batch at a time, and the shipper has three by default: one kept compressor each. */
const IDLE_COMPRESSORS = 3;
const idleCompressors: ZstdCompress[] = [];

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
