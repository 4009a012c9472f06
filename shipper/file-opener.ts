import { type FileHandle, open, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { deterministicId } from "../core/events.ts";
import type { Logger } from "../core/logger.ts";
import type { FileCheckpoint } from "./checkpoint-store.ts";
import type { CheckpointTracker } from "./checkpoint-tracker.ts";
import type { CopyTracker } from "./copy-tracker.ts";
import { type FileRegistry, TrackedFile } from "./file-registry.ts";
import type { Input } from "./input.ts";
import { LogDocumentTemplate } from "./log-document.ts";
import { startPoint } from "./start-point.ts";
import { type FileStat, fingerprintOf, identityKey, statFile } from "./tail/file-identity.ts";
import { FileTailer, type TailerEvents } from "./tail/file-tailer.ts";

/**
 * Opens files and starts tracking them: from their checkpoint (same content) or their start, with the file id their
 * lines' event ids are made from; a copy of a file already read is held (CopyTracker). Two names of one file (a
 * rename during a pass, a hard link) open it once.
 */
export class FileOpener {
  private readonly opening = new Set<string>();
  private readonly options: {
    hostName: string;
    files: FileRegistry;
    checkpoints: CheckpointTracker;
    copies: () => CopyTracker;
    events: TailerEvents;
    /** False during the first pass: `startAt: end` applies to the files found then. */
    running: () => boolean;
    logger: Logger;
  };

  constructor(options: FileOpener["options"]) {
    this.options = options;
  }

  /** Opens and tracks a file (undefined when it cannot be opened, or is tracked already). */
  async open(
    path: string,
    input: Input,
    sizeWhenFound: number,
    fromCheckpoint?: FileCheckpoint,
  ): Promise<TrackedFile | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (error) {
      this.options.logger.warn({ path, err: (error as Error).message }, "cannot open file; will retry");
      return undefined;
    }
    const info = await statFile(handle);
    const key = identityKey(info);
    // Paths open concurrently: two names of one file open it once.
    if (this.options.files.has(key) || this.opening.has(key)) {
      await handle.close();
      return undefined;
    }
    this.opening.add(key);
    try {
      return this.track(path, input, sizeWhenFound, handle, info, key, fromCheckpoint);
    } finally {
      this.opening.delete(key);
    }
  }

  /** Opens a file no path leads to any more (or a copy): it is read to its end, then closed. */
  async openDetached(
    path: string,
    input: Input,
    size: number,
    checkpoint: FileCheckpoint,
  ): Promise<TrackedFile | undefined> {
    const file = await this.open(path, input, size, checkpoint);
    if (file) {
      file.detach(Date.now());
    }
    return file;
  }

  /**
   * A file renamed away (and no longer matched) while the shipper was stopped still holds lines that were never
   * sent. Look for it, by device and inode, next to where it was, and read it to its end. `seen`: the identity keys
   * the pass found under the inputs' globs.
   */
  async recoverRotatedWhileStopped(seen: Map<string, string>, inputs: Input[]): Promise<TrackedFile[]> {
    const { checkpoints, files, logger } = this.options;
    const recovered: TrackedFile[] = [];
    for (const [key, saved] of checkpoints.allParked()) {
      if (seen.has(key) || files.has(key)) continue;
      const input = inputs.find((candidate) => candidate.config.name === saved.input);
      const dir = dirname(saved.path);
      const names = input ? await readdir(dir).catch(() => [] as string[]) : [];
      for (const name of names) {
        const path = join(dir, name);
        const info = await statFile(path).catch(() => undefined);
        if (!info?.isFile() || identityKey(info) !== key || info.size <= saved.offset || !input) continue;
        const file = await this.openDetached(path, input, info.size, saved);
        if (file) {
          logger.info(
            { path, from: saved.offset, size: info.size },
            "found a file rotated while stopped: reading the rest",
          );
          recovered.push(file);
        }
        break;
      }
      checkpoints.forget(key);
    }
    return recovered;
  }

  private track(
    path: string,
    input: Input,
    sizeWhenFound: number,
    handle: FileHandle,
    info: FileStat,
    key: string,
    fromCheckpoint: FileCheckpoint | undefined,
  ): TrackedFile {
    const { checkpoints, files, hostName, logger } = this.options;
    const saved = fromCheckpoint ?? checkpoints.parked(key);
    const current = fingerprintOf(handle, info.size);
    const start = startPoint({
      checkpoint: saved,
      sameContent:
        saved !== undefined &&
        saved.fingerprintBytes <= info.size &&
        fingerprintOf(handle, info.size, saved.fingerprintBytes).fingerprint === saved.fingerprint,
      size: info.size,
      sizeWhenFound,
      startAt: input.config.startAt,
      running: this.options.running(),
    });
    if (start.why === "shorter than its checkpoint")
      logger.warn(
        { path, saved: saved?.offset, size: info.size },
        "file shorter than its checkpoint: truncated while stopped, reading from the start",
      );
    if (start.why === "inode reused")
      logger.info({ path }, "inode reused by a new file: reading it from the start");
    if (saved) checkpoints.forget(key);
    let fileId = start.fileId;
    const copies = this.options.copies();
    const held = saved ? undefined : copies.heldFor(handle.fd, info.size, current, this.options.running());
    if (held?.kind === "truncated") fileId = held.truncation.fileId;
    if (held?.kind === "live") fileId = held.original.fileId;
    const tailer = new FileTailer({
      handle,
      path,
      input: input.config.name,
      identity: { dev: info.dev, ino: info.ino, ...current },
      offset: start.offset,
      maxLineBytes: input.config.maxLineBytes,
      multiline: input.multiline,
      events: this.options.events,
      encoding: input.config.encoding,
    });
    const file = new TrackedFile({
      tailer,
      input,
      fileId: fileId ?? deterministicId(hostName, key, current.fingerprint, Date.now()),
      kafkaKey: `${hostName}|${key}`,
      held,
      template: new LogDocumentTemplate({
        dataset: input.config.name,
        hostName,
        service: input.config.service,
        labels: input.config.fields,
      }),
    });
    files.add(key, file);
    checkpoints.changed();
    if (held) copies.holding(file, info.ino, info.size);
    return file;
  }
}
