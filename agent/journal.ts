import {
  appendFileSync,
  closeSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
} from "node:fs";
import { dirname } from "node:path";

export interface RotationPolicy {
  /** The file is renamed to <path>.1 once it holds this many bytes. */
  maxBytes: number;
  /** Renamed generations kept (<path>.1 … <path>.<keep>); the oldest beyond is deleted. */
  keep: number;
}

/**
 * Append-only NDJSON with an fsync per entry: what is in it survives a crash and a Kafka outage. The lifecycle
 * journal is tailed by the shipper, which follows a rename the way it follows logrotate's; with a rotation
 * policy it is renamed at maxBytes, so disk use is bounded by (keep + 1) * maxBytes.
 */
export class Journal {
  readonly path: string;
  private fd: number;
  private bytes: number;
  private readonly rotation: RotationPolicy | undefined;

  constructor(path: string, rotation?: RotationPolicy) {
    mkdirSync(dirname(path), { recursive: true });
    this.path = path;
    this.rotation = rotation;
    this.fd = openSync(path, "a");
    this.bytes = fstatSync(this.fd).size;
  }

  append(entry: unknown): void {
    const line = `${JSON.stringify(entry)}\n`;
    if (this.rotation && this.bytes > 0 && this.bytes + line.length > this.rotation.maxBytes) this.rotate();
    appendFileSync(this.fd, line);
    fsyncSync(this.fd);
    this.bytes += Buffer.byteLength(line);
  }

  /** Shifts <path>.n to <path>.n+1 (deleting beyond keep), renames the file to <path>.1 and starts a new one. */
  private rotate(): void {
    const keep = (this.rotation as RotationPolicy).keep;
    closeSync(this.fd);
    rmSync(`${this.path}.${keep}`, { force: true });
    for (let n = keep - 1; n >= 1; n--) {
      try {
        renameSync(`${this.path}.${n}`, `${this.path}.${n + 1}`);
      } catch {
        // That generation does not exist (yet).
      }
    }
    renameSync(this.path, `${this.path}.1`);
    this.fd = openSync(this.path, "a");
    this.bytes = 0;
    syncDirectory(dirname(this.path));
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

/** Makes a rename in `dir` durable (not possible, nor needed, on Windows). */
export function syncDirectory(dir: string): void {
  if (process.platform === "win32") return;
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
