import type { Input } from "./input.ts";
import type { LogDocumentTemplate } from "./log-document.ts";
import type { Truncation } from "./tail/copies.ts";
import type { FileTailer } from "./tail/file-tailer.ts";

/**
 * A file being read: its tailer, and what the shipper knows of it. Its state changes only through its methods:
 * detached (its path no longer leads to it), held (a copy not read yet), its file id renewed on truncation.
 */
export class TrackedFile {
  readonly tailer: FileTailer;
  readonly input: Input;
  /** Kafka key: one file's records stay in one partition, in order. */
  readonly kafkaKey: string;
  readonly template: LogDocumentTemplate;
  #fileId: string;
  #detachedAt: number | undefined;
  #held: Held | undefined;
  #acknowledge: ((endOffset: number) => void) | undefined;
  #acknowledgeGeneration = -1;

  constructor(options: {
    tailer: FileTailer;
    input: Input;
    fileId: string;
    kafkaKey: string;
    template: LogDocumentTemplate;
    held: Held | undefined;
  }) {
    this.tailer = options.tailer;
    this.input = options.input;
    this.#fileId = options.fileId;
    this.kafkaKey = options.kafkaKey;
    this.template = options.template;
    this.#held = options.held;
  }

  /** Stable per file (and per truncation), persisted: the basis of deterministic event ids. */
  get fileId(): string {
    return this.#fileId;
  }

  /** New content in the same inode (truncated): new ids, so its records never collide with the old content's. */
  renewFileId(fileId: string): void {
    this.#fileId = fileId;
  }

  /** When the path stopped leading to this file (renamed away or deleted): it is read to its end, then closed. */
  get detachedAt(): number | undefined {
    return this.#detachedAt;
  }

  detach(now: number): void {
    this.#detachedAt = now;
    this.tailer.detach();
  }

  /** Found at a matched path again: not closed for having been detached (its tailer keeps draining). */
  reattach(): void {
    this.#detachedAt = undefined;
  }

  /** Present while the file is a copy held back (the copy tracker's state): not read until that is decided. */
  get held(): Held | undefined {
    return this.#held;
  }

  hold(held: Held): void {
    this.#held = held;
  }

  release(): void {
    this.#held = undefined;
  }

  /**
   * What the checkpoint may say of this file: everything acknowledged; for a held copy, what its original had
   * shipped of it. After a restart a copy is read from there (lines the original also reads again keep their event
   * ids: one document each).
   */
  checkpointOffset(): number {
    const held = this.#held;
    if (!held) return this.tailer.ackedOffset;
    const shipped = held.kind === "truncated" ? held.truncation.readUpTo : held.original.tailer.ackedOffset;
    return Math.min(this.tailer.currentSize(), shipped);
  }

  /**
   * The callback that moves the checkpoint watermark up to an acknowledged record's end, made once per truncation
   * generation (an acknowledgement of a record from before a truncation is ignored); `moved` is told when it moves.
   */
  acknowledger(moved: () => void): (endOffset: number) => void {
    const { tailer } = this;
    if (this.#acknowledge && this.#acknowledgeGeneration === tailer.generation) return this.#acknowledge;
    const generation = tailer.generation;
    this.#acknowledgeGeneration = generation;
    this.#acknowledge = (endOffset) => {
      if (tailer.acknowledge(generation, endOffset)) moved();
    };
    return this.#acknowledge;
  }
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
