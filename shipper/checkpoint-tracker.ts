import type { Component } from "../core/lifecycle.ts";
import type { Logger } from "../core/logger.ts";
import type { CheckpointStore, FileCheckpoint } from "./checkpoint-store.ts";
import type { FileRegistry, TrackedFile } from "./file-registry.ts";

/**
 * What the checkpoint says, and when it is written: every open file's acknowledged offset (a held copy's: what its
 * original shipped of it), plus the parked checkpoints of files not open (not found yet since start, closed while
 * inactive, renamed away while stopped). Acknowledgements move a file's offset; writes are serialised, skipped when
 * nothing changed, and a failed one is tried again.
 *
 * A component started before the producer and stopped after it: its last write holds every acknowledgement the
 * producer's drain brought in.
 */
export class CheckpointTracker implements Component {
  readonly name = "checkpoints";
  private readonly store: CheckpointStore;
  private readonly files: FileRegistry;
  private readonly logger: Logger;
  private readonly parkedFiles = new Map<string, FileCheckpoint>();
  private dirty = false;
  private saving: Promise<void> = Promise.resolve();
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: { store: CheckpointStore; files: FileRegistry; intervalMs: number; logger: Logger }) {
    this.store = options.store;
    this.files = options.files;
    this.intervalMs = options.intervalMs;
    this.logger = options.logger;
  }

  /** Reads the checkpoint (an unreadable one stops the start: it is never overwritten), then writes every interval. */
  async start(): Promise<void> {
    for (const [key, checkpoint] of await this.store.load()) this.parkedFiles.set(key, checkpoint);
    this.timer = setInterval(() => void this.save(), this.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.save(true);
    this.logger.info({ files: this.files.size, file: this.store.file }, "checkpoint saved");
  }

  /** Something the checkpoint holds changed: the next interval writes it. */
  changed(): void {
    this.dirty = true;
  }

  private readonly markChanged = (): void => {
    this.dirty = true;
  };

  /** The checkpoint of a file that is not open, if any. */
  parked(key: string): FileCheckpoint | undefined {
    return this.parkedFiles.get(key);
  }

  /** Parked checkpoints, a copy: the caller may forget some while it goes through them. */
  allParked(): Array<[string, FileCheckpoint]> {
    return [...this.parkedFiles];
  }

  get anyParked(): boolean {
    return this.parkedFiles.size > 0;
  }

  /** The file is open again (or its checkpoint is no use any more). */
  forget(key: string): void {
    this.parkedFiles.delete(key);
  }

  /** The file is being closed (inactive): its checkpoint stays, parked, until it is opened again. */
  park(key: string, file: TrackedFile): void {
    this.parkedFiles.set(key, this.of(key, file));
    this.dirty = true;
  }

  /**
   * The callback that moves the file's checkpoint up to an acknowledged record's end: one per file and truncation
   * generation (acknowledgements of records from before a truncation are ignored).
   */
  acknowledger(file: TrackedFile): (endOffset: number) => void {
    return file.acknowledger(this.markChanged);
  }

  of(key: string, file: TrackedFile): FileCheckpoint {
    const { tailer, input, fileId } = file;
    return {
      key,
      input: input.config.name,
      path: tailer.path,
      dev: tailer.identity.dev,
      ino: tailer.identity.ino,
      fingerprint: tailer.identity.fingerprint,
      fingerprintBytes: tailer.identity.fingerprintBytes,
      offset: file.checkpointOffset(),
      size: tailer.size,
      mtimeMs: tailer.mtimeMs,
      updatedAt: new Date().toISOString(),
      fileId,
    };
  }

  /** Writes the checkpoint if something changed (`force`: whatever); one write at a time, in order. */
  save(force = false): Promise<void> {
    this.saving = this.saving.then(async () => {
      if (!this.dirty && !force) return;
      this.dirty = false;
      const entries: FileCheckpoint[] = [];
      for (const [key, file] of this.files) entries.push(this.of(key, file));
      // Checkpoints of files not found yet (first pass still running) are kept as they were.
      for (const [key, parked] of this.parkedFiles) if (!this.files.has(key)) entries.push(parked);
      try {
        await this.store.save(entries);
      } catch (error) {
        this.dirty = true;
        this.logger.error({ err: error }, "checkpoint write failed; will retry");
      }
    });
    return this.saving;
  }
}
