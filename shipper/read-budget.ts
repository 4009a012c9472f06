import type { ReadSlot } from "./tail/file-tailer.ts";

/** What the reads wait for: room in the producer's in-flight budget. */
export interface ProducerRoom {
  readonly hasRoom: boolean;
  waitForRoom(): Promise<void>;
}

/**
 * The shipper's read budget: few reads at a time, each only while the producer has room, each into a reused
 * chunk buffer. With a thousand active files, letting every waiting reader through when room opens would overshoot
 * the in-flight budget by a chunk per file.
 */
export class ReadBudget {
  private inProgress = 0;
  private readonly queue: Array<() => void> = [];
  /** Reused read buffers: a fresh one per read is memory outside the heap that V8 answers with full GCs. */
  private readonly buffers: Buffer[] = [];
  private readonly room: ProducerRoom;
  private readonly concurrency: number;
  private readonly chunkBytes: number;

  constructor(room: ProducerRoom, concurrency: number, chunkBytes: number) {
    this.room = room;
    this.concurrency = concurrency;
    this.chunkBytes = chunkBytes;
  }

  /** A slot once the producer has room and fewer than `concurrency` reads run. */
  async acquire(): Promise<ReadSlot> {
    // Room is checked again after every wait: a reader that waited for a slot may find the budget used up.
    for (;;) {
      await this.room.waitForRoom();
      if (this.inProgress < this.concurrency) break;
      await new Promise<void>((resolve) => this.queue.push(resolve));
    }
    return this.take();
  }

  /**
   * A slot at once when there is room and nobody waits (the everyday case): no promise per read. Ten thousand
   * small reads a second (1,000 files tailed) made the waiting path a tenth of all the memory allocated.
   */
  tryAcquire(): ReadSlot | undefined {
    if (!this.room.hasRoom || this.inProgress >= this.concurrency || this.queue.length > 0) return undefined;
    return this.take();
  }

  private take(): ReadSlot {
    this.inProgress++;
    const buffer = this.buffers.pop() ?? Buffer.allocUnsafe(this.chunkBytes);
    return {
      buffer,
      release: () => {
        this.buffers.push(buffer);
        this.inProgress--;
        this.queue.shift()?.();
      },
    };
  }
}
