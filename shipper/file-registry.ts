import type { Input } from "./input.ts";
import type { LogDocumentTemplate } from "./log-document.ts";
import type { Truncation } from "./tail/copies.ts";
import type { FileTailer } from "./tail/file-tailer.ts";

/** A file being read: its tailer, and what the shipper knows of it. */
export interface TrackedFile {
  readonly tailer: FileTailer;
  readonly input: Input;
  /** Stable per file (and per truncation), persisted: the basis of deterministic event ids. */
  fileId: string;
  /** When the path stopped pointing at this file (renamed away or deleted): read to the end, then close. */
  detachedAt: number | undefined;
  /** Kafka key: one file's records stay in one partition, in order. */
  readonly kafkaKey: string;
  readonly template: LogDocumentTemplate;
  /** Moves the checkpoint watermark up to an acknowledged record's end; one per file and truncation generation. */
  acknowledge: ((endOffset: number) => void) | undefined;
  acknowledgeGeneration: number;
  unreportedRecords: number;
  /** A copy of another file's content (copytruncate's), not read until it is known where its own lines begin. */
  held: Held | undefined;
}

/**
 * Why a file is held: a copy of a file truncated a moment ago (starts where the original was read to, once it stops
 * growing), or a copy of a live file (its lines are the original's, until the original is truncated or they differ).
 */
export type Held =
  | { kind: "truncated"; truncation: Truncation; lastSize: number | undefined }
  | { kind: "live"; original: TrackedFile; compared: number; lineEnd: number };

/**
 * The files being read, by identity key (device and inode), by tailer (looked up for every record: cheaper than
 * building the key) and by path (change events name a path: ten thousand a second must not scan every file; a
 * renamed file's old path may be a new file's too, hence a list). The path index is rebuilt lazily after changes.
 */
export class FileRegistry implements Iterable<[string, TrackedFile]> {
  private readonly byKey = new Map<string, TrackedFile>();
  private readonly byTailer = new Map<FileTailer, TrackedFile>();
  private byPath: Map<string, TrackedFile[]> | undefined;

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): TrackedFile | undefined {
    return this.byKey.get(key);
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  ofTailer(tailer: FileTailer): TrackedFile | undefined {
    return this.byTailer.get(tailer);
  }

  /** Still tracked (not closed and forgotten since), as this very entry. */
  holds(file: TrackedFile): boolean {
    return this.byTailer.get(file.tailer) === file;
  }

  at(path: string): TrackedFile[] {
    if (!this.byPath) {
      this.byPath = new Map();
      for (const file of this.byKey.values()) {
        const list = this.byPath.get(file.tailer.path);
        if (list) list.push(file);
        else this.byPath.set(file.tailer.path, [file]);
      }
    }
    return this.byPath.get(path) ?? [];
  }

  add(key: string, file: TrackedFile): void {
    this.byKey.set(key, file);
    this.byTailer.set(file.tailer, file);
    this.byPath = undefined;
  }

  delete(key: string): void {
    const file = this.byKey.get(key);
    if (!file) return;
    this.byKey.delete(key);
    this.byTailer.delete(file.tailer);
    this.byPath = undefined;
  }

  /** The file is still matched, under a new name. */
  rename(file: TrackedFile, path: string): void {
    if (file.tailer.path === path) return;
    file.tailer.renamedTo(path);
    this.byPath = undefined;
  }

  values(): IterableIterator<TrackedFile> {
    return this.byKey.values();
  }

  [Symbol.iterator](): IterableIterator<[string, TrackedFile]> {
    return this.byKey.entries();
  }
}
