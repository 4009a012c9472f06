import { closeSync, openSync, writeSync } from "node:fs";
import { setImmediate as yieldToLoop } from "node:timers/promises";

/**
 * Writes numbered lines the way an application does: one open append handle, kept across a rename until
 * `reopen()`, so rotation tests see the same races a real service causes.
 */
export class SequenceWriter {
  next = 0;
  private fd: number;
  private readonly path: string;
  private readonly name: string;
  private readonly padding: string;

  constructor(path: string, name: string, padding = 60) {
    this.path = path;
    this.name = name;
    this.fd = openSync(path, "a");
    this.padding = "x".repeat(padding);
  }

  /** Writes `count` lines in chunks, yielding between chunks so the shipper reads while we write. */
  async write(count: number, perChunk = 500): Promise<void> {
    for (let written = 0; written < count; written += perChunk) {
      let chunk = "";
      for (let i = 0; i < Math.min(perChunk, count - written); i++) {
        chunk += `seq=${this.next++} writer=${this.name} pad=${this.padding}\n`;
      }
      writeSync(this.fd, chunk);
      await yieldToLoop();
    }
  }

  reopen(): void {
    closeSync(this.fd);
    this.fd = openSync(this.path, "a");
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** The sequence number a shipped record carries, from its message. */
export function seqOf(message: unknown): number {
  const match = /seq=(\d+) writer=/.exec(String(message));
  if (!match) throw new Error(`no sequence number in ${String(message).slice(0, 200)}`);
  return Number(match[1]);
}
