import { readSync } from "node:fs";
import { open, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { deterministicId } from "../core/events.ts";
import type { Logger } from "../core/logger.ts";
import type { FileCheckpoint } from "./checkpoint-store.ts";
import type { FileRegistry, Held, TrackedFile } from "./file-registry.ts";
import type { Input } from "./input.ts";
import type { ShipperMetrics } from "./metrics.ts";
import { compareCopy, copyStart, isFullCopyOf, RecentTruncations, type Truncation } from "./tail/copies.ts";
import { fingerprintOf, identityKey, statFile } from "./tail/file-identity.ts";
import type { ContentBefore } from "./tail/file-tailer.ts";

/** What the copy tracker asks of the shipper. */
export interface CopyHost {
  readonly files: FileRegistry;
  /** Opens and tracks a file from a checkpoint, already detached (read to its end, then closed). */
  openDetached(
    path: string,
    input: Input,
    size: number,
    checkpoint: FileCheckpoint,
  ): Promise<TrackedFile | undefined>;
  /** Something the checkpoint holds changed. */
  changed(): void;
  /** Writes the checkpoint now. */
  saveNow(): Promise<void>;
  /** Reads what is new in a file. */
  pump(file: TrackedFile): void;
}

/**
 * copytruncate, both ways round: a file truncated in place (new content, new ids; the lines it had not shipped are
 * looked for in a copy beside it), and a new file that is a copy of one being read (held: not read until it is known
 * where its own lines begin, so no line is shipped twice, whatever the glob matches). See shipper/tail/copies.ts.
 */
export class CopyTracker {
  private readonly truncations = new RecentTruncations();
  private readonly host: CopyHost;
  private readonly metrics: ShipperMetrics;
  private readonly logger: Logger;

  constructor(host: CopyHost, metrics: ShipperMetrics, logger: Logger) {
    this.host = host;
    this.metrics = metrics;
    this.logger = logger;
  }

  /** A new file that holds another's content: a copytruncate copy (see shipper/tail/copies.ts), or undefined. */
  heldFor(
    fd: number,
    size: number,
    current: { fingerprint: string; fingerprintBytes: number },
    running: boolean,
  ): Held | undefined {
    const truncation = this.truncations.find(fd, size, Date.now());
    if (truncation) return { kind: "truncated", truncation, lastSize: undefined };
    if (!running) return undefined;
    for (const original of this.host.files.values()) {
      if (original.held || original.tailer.state !== "active") continue;
      if (!isFullCopyOf(current, original.tailer.identity)) continue;
      const lineEnd = firstLinesEnd(fd, current.fingerprintBytes);
      return { kind: "live", original, compared: current.fingerprintBytes, lineEnd };
    }
    return undefined;
  }

  /** A new file found to be a copy is tracked, held: counted, said, and released at once if it can be. */
  holding(file: TrackedFile, inode: number | string, size: number): void {
    const held = file.held;
    if (!held) return;
    this.metrics.copiesHeld.inc({ input: file.input.config.name });
    this.logger.info(
      {
        path: file.tailer.path,
        inode,
        copyOf: held.kind === "live" ? held.original.tailer.path : "a file truncated in place",
      },
      "a copy of a file already read: its lines are not read twice",
    );
    this.review(file, size);
  }

  /**
   * Decides where a held copy's own lines begin, if that can be known now, and lets it be read from there.
   * `final`: the copy is gone from its path (its content will not change): decide with what it holds.
   */
  review(file: TrackedFile, size: number, final = false): void {
    const held = file.held;
    if (!held) return;
    let start: number | undefined;
    if (held.kind === "truncated") {
      start = final
        ? Math.min(size, held.truncation.readUpTo)
        : copyStart(held.truncation, size, held.lastSize);
      held.lastSize = size;
    } else {
      const { original } = held;
      const originalLive = this.host.files.holds(original) && original.tailer.state === "active";
      if (originalLive && original.tailer.contentChanged()) {
        // The original was truncated and has not noticed yet: its truncation will say where the copy's lines
        // begin (onTruncated). Deciding now, even for a deleted copy, could skip lines only the copy has.
        return;
      }
      if (final || !originalLive) {
        // The original is read to its end through its own handle: the copy holds nothing it does not.
        start = size;
      } else {
        const to = Math.min(size, original.tailer.currentSize());
        const compared = compareCopy(file.tailer.fd, original.tailer.fd, held.compared, to, held.lineEnd);
        held.compared = compared.equalUpTo;
        held.lineEnd = compared.lineEnd;
        // Lines that differ from the original's are the copy's own (not a copy after all, or written to since).
        if (compared.diverged) start = compared.lineEnd;
      }
    }
    if (start === undefined) return;
    file.release();
    file.tailer.skipTo(start);
    this.host.changed();
    this.logger.info({ path: file.tailer.path, from: start }, "copy released: reading the lines only it has");
    this.host.pump(file);
  }

  /** The file was truncated in place: new content, new ids; its last lines may be only in a copy beside it. */
  truncated(file: TrackedFile, previous: number, before: ContentBefore): void {
    const { tailer } = file;
    const truncation: Truncation = { before, readUpTo: previous, fileId: file.fileId, at: Date.now() };
    this.truncations.add(truncation);
    // Copies of it found before the truncation now know where their own lines begin.
    let copyKnown = false;
    for (const copy of this.host.files.values()) {
      if (copy.held?.kind === "live" && copy.held.original === file) {
        copy.hold({ kind: "truncated", truncation, lastSize: undefined });
        this.review(copy, copy.tailer.currentSize());
        copyKnown = true;
      }
    }
    // New content in the same inode: new ids, so its records never collide with the old content's.
    file.renewFileId(deterministicId(file.fileId, "truncated", tailer.generation, Date.now()));
    this.host.changed();
    this.metrics.truncations.inc({ input: file.input.config.name });
    this.logger.warn(
      { path: tailer.path, previous },
      "file truncated (copytruncate?): reading it from the start",
    );
    if (!copyKnown) void this.catchUp(file, truncation);
  }

  /**
   * copytruncate copies the file, then truncates it: lines written after our last read are only in the copy.
   * Find the copy (same first bytes, at least as long as what we had read) beside the file and read that tail.
   */
  private async catchUp(file: TrackedFile, truncation: Truncation): Promise<void> {
    const { readUpTo } = truncation;
    const { fingerprint, fingerprintBytes } = truncation.before;
    const { tailer } = file;
    const dir = dirname(tailer.path);
    if (fingerprintBytes === 0) return this.reportMissed(file, truncation);
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, name);
      if (path === tailer.path) continue;
      const info = await statFile(path).catch(() => undefined);
      if (!info?.isFile()) continue;
      const tracked = this.host.files.get(identityKey(info));
      if (tracked) {
        // Found by the glob already, and recognised as this copy: it is read from where the original stopped.
        if (tracked.fileId === truncation.fileId) return;
        continue;
      }
      const handle = await open(path, "r").catch(() => undefined);
      if (!handle) continue;
      const prefix = fingerprintOf(handle, info.size, fingerprintBytes);
      await handle.close();
      if (prefix.fingerprint !== fingerprint) continue;
      if (info.size <= readUpTo) break; // a copy taken before the last lines: they are in neither
      const copy = await this.host.openDetached(path, file.input, info.size, {
        key: identityKey(info),
        input: file.input.config.name,
        path,
        dev: info.dev,
        ino: info.ino,
        fingerprint,
        fingerprintBytes,
        offset: readUpTo,
        size: info.size,
        mtimeMs: info.mtimeMs,
        updatedAt: new Date().toISOString(),
        // The ids the original gave (or would have given) these lines: a line read twice is one document.
        fileId: truncation.fileId,
      });
      if (copy) {
        this.logger.info(
          { path, inode: info.ino, copyOf: tailer.path, from: readUpTo, to: info.size },
          "a copy of a file already read: its lines are not read twice",
        );
        await this.host.saveNow();
        this.host.pump(copy);
      }
      return;
    }
    this.reportMissed(file, truncation);
  }

  /**
   * The original was truncated before its last lines were read, and no copy of them is beside it (deleted or
   * compressed before it was seen, or kept elsewhere): say so, with how much at least, instead of nothing.
   * A copy the glob finds later is still read (RecentTruncations).
   */
  private reportMissed(file: TrackedFile, truncation: Truncation): void {
    const missed = truncation.before.size - truncation.readUpTo;
    if (missed <= 0) return;
    this.metrics.copyBytesMissed.inc({ input: file.input.config.name }, missed);
    this.logger.warn(
      {
        path: file.tailer.path,
        readUpTo: truncation.readUpTo,
        sizeSeen: truncation.before.size,
        bytes: missed,
      },
      "file truncated before its last lines were read, and no copy of them was found beside it: at least these bytes are not shipped",
    );
  }
}

function firstLinesEnd(fd: number, bytes: number): number {
  const head = Buffer.allocUnsafe(bytes);
  const read = readSync(fd, head, 0, bytes, 0);
  return head.subarray(0, read).lastIndexOf(10) + 1;
}
