import { appendFileSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Append-only NDJSON with an fsync per entry: what is in it survives a crash and a Kafka outage. The lifecycle
 * journal is tailed by the shipper; the command journal remembers which command ids were seen (and their outcome).
 */
export class Journal {
  readonly path: string;
  private readonly fd: number;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.path = path;
    this.fd = openSync(path, "a");
  }

  append(entry: unknown): void {
    appendFileSync(this.fd, `${JSON.stringify(entry)}\n`);
    fsyncSync(this.fd);
  }

  /** Every entry written so far (small files: the command journal). */
  static read<T>(path: string): T[] {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      return [];
    }
    const entries: T[] = [];
    for (const line of text.split("\n")) {
      if (!line) continue;
      try {
        entries.push(JSON.parse(line) as T);
      } catch {
        // A torn last line after a crash: the command it named was not acted on.
      }
    }
    return entries;
  }

  close(): void {
    closeSync(this.fd);
  }
}
