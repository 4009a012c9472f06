/**
 * Buffers reused instead of left to the collector: a large buffer freed by a collection is memory outside the heap
 * that V8 answers with full collections late, and that fragments malloc's heap meanwhile. Size classes are a
 * quarter of the power of two below apart (at most a fifth unused: a 2 MiB batch is not rounded up to 4). At most
 * `limitBytes` wait in the pool; a buffer given back beyond that is freed at once.
 */
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;
  /** Buffers this pool made or was given: a `take` hands them to one owner at a time. */
  private readonly handled = new WeakSet<ArrayBufferLike>();
  private readonly limitBytes: number;
  private readonly minBytes: number;

  constructor(options: { limitBytes: number; minBytes: number }) {
    this.limitBytes = options.limitBytes;
    this.minBytes = options.minBytes;
  }

  get pooledBytes(): number {
    return this.freeBytes;
  }

  static sizeClass(minimum: number): number {
    const step = 2 ** Math.floor(Math.log2(Math.max(minimum, 8))) / 4;
    return Math.ceil(minimum / step) * step;
  }

  /**
   * A free buffer of `minimum`'s size class, or else the smallest free one up to twice that size (a batch's size
   * varies from one to the next: an exact match alone missed most of the time), or else a new one.
   */
  take(minimum: number): Buffer {
    const size = BufferPool.sizeClass(Math.max(minimum, this.minBytes));
    let buffer = this.free.get(size)?.pop();
    if (!buffer) {
      let fit = Infinity;
      for (const [candidate, list] of this.free) {
        if (candidate > size && candidate < fit && candidate <= 2 * size && list.length > 0) fit = candidate;
      }
      buffer = this.free.get(fit)?.pop();
    }
    if (!buffer) {
      const made = Buffer.allocUnsafeSlow(size);
      this.handled.add(made.buffer);
      return made;
    }
    this.freeBytes -= buffer.length;
    return buffer;
  }

  /** Whether `memory` is a buffer from this pool: one a `take` made or one given back to it and taken again. */
  handedOut(memory: ArrayBufferLike): boolean {
    return this.handled.has(memory);
  }

  /** `buffer` must be unused from now on: the next `take` of its size hands it out again. */
  give(buffer: Buffer): void {
    const size = buffer.length;
    // Only whole buffers of their own (not slices of Node's shared pool or of another buffer).
    if (size < this.minBytes || buffer.byteOffset !== 0 || buffer.buffer.byteLength !== size) return;
    if (BufferPool.sizeClass(size) !== size || this.freeBytes + size > this.limitBytes) {
      (buffer.buffer as ArrayBuffer).transfer(0);
      return;
    }
    let list = this.free.get(size);
    if (!list) {
      list = [];
      this.free.set(size, list);
    }
    list.push(buffer);
    this.handled.add(buffer.buffer);
    this.freeBytes += size;
  }
}
