import { readSync } from "node:fs";
import { type FileHandle, open, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { deterministicId } from "../core/events.ts";
import { BatchProducer } from "../core/kafka/batch-producer.ts";
import type { KafkaPort as Kafka } from "../core/kafka/port.ts";
import type { Component } from "../core/lifecycle.ts";
import type { Logger } from "../core/logger.ts";
import { Semaphore } from "../core/semaphore.ts";
import { topicNames } from "../core/topics.ts";
import { CheckpointStore, type FileCheckpoint } from "./checkpoint-store.ts";
import type { ShipperConfig } from "./config.ts";
import { FolderWatcher, listMatching, type WatchEvent } from "./discovery.ts";
import { compileInput, type Input } from "./input.ts";
import { LogDocumentTemplate } from "./log-document.ts";
import type { ShipperMetrics } from "./metrics.ts";
import { ReadBudget } from "./read-budget.ts";
import { RecordEncoder } from "./record-encoder.ts";
import { compareCopy, copyStart, isFullCopyOf, RecentTruncations, type Truncation } from "./tail/copies.ts";
import { type FileStat, fingerprintOf, identityKey, statFile } from "./tail/file-identity.ts";
import { type ContentBefore, FileTailer, READ_CHUNK_BYTES, type TailerEvents } from "./tail/file-tailer.ts";
import type { JoinedRecord } from "./tail/multiline.ts";

interface TrackedFile {
  tailer: FileTailer;
  input: Input;
  /** Stable per file (and per truncation), persisted: the basis of deterministic event ids. */
  fileId: string;
  /** When the path stopped pointing at this file (renamed away or deleted): read to the end, then close. */
  detachedAt: number | undefined;
  /** Kafka key: one file's records stay in one partition, in order. */
  kafkaKey: string;
  template: LogDocumentTemplate;
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
type Held =
  | { kind: "truncated"; truncation: Truncation; lastSize: number | undefined }
  | { kind: "live"; original: TrackedFile; compared: number; lineEnd: number };

const TICK_MS = 100;
const GAUGE_INTERVAL_MS = 1_000;
const RECONCILE_CONCURRENCY = 16;
const READ_CONCURRENCY = 4;

/**
 * Tails every input's files into Kafka. Offsets advance only after Kafka acknowledged a record; the
 * checkpoint is written atomically every second and on stop. Files are the buffer: when Kafka is slow or away,
 * reading pauses at `limits.inflightBytes` and resumes by itself.
 */
export class Shipper implements Component {
  readonly name = "shipper";
  private readonly config: ShipperConfig;
  private readonly logger: Logger;
  private readonly metrics: ShipperMetrics;
  private readonly producer: BatchProducer;
  private readonly checkpoints: CheckpointStore;
  private readonly inputs: Input[];
  private readonly files = new Map<string, TrackedFile>();
  /** The same files by their tailer: looked up for every record, cheaper than building the identity key. */
  private readonly fileByTailer = new Map<FileTailer, TrackedFile>();
  /** Change events name a path: looked up here, not by a scan of every file (ten thousand events a second). */
  private filesByPath: Map<string, TrackedFile[]> | undefined;
  private saved = new Map<string, FileCheckpoint>();
  private watcher: FolderWatcher | undefined;
  /** Files a change event named since the last turn: each is read once however many writes it saw. */
  private readonly changed = new Set<TrackedFile>();
  private readChanged: NodeJS.Immediate | undefined;
  private timers: NodeJS.Timeout[] = [];
  private reconciling: Promise<void> | undefined;
  private reconcileAgain = false;
  private reconcileSoon: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  private dirty = false;
  private stopped = false;
  private started = false;
  private readonly events: TailerEvents;
  private readonly reads: ReadBudget;
  private readonly encoder: RecordEncoder;
  private readonly opening = new Set<string>();
  private readonly truncations = new RecentTruncations();
  private warnedWaiting = false;
  /** Files being opened by the reconcile pass right now (they take a slot of limits.openFiles). */
  private pendingOpens = 0;

  constructor(options: { config: ShipperConfig; kafka: Kafka; logger: Logger; metrics: ShipperMetrics }) {
    this.config = options.config;
    this.logger = options.logger;
    this.metrics = options.metrics;
    const prefix = options.config.topicPrefix;
    this.producer = new BatchProducer({
      kafka: options.kafka,
      logger: options.logger.child({ component: "kafka-producer" }),
      batchBytes: options.config.limits.batchBytes,
      lingerMs: options.config.limits.lingerMs,
      inflightBytes: options.config.limits.inflightBytes,
      compression: options.config.compression,
      // recordFormat single: one document per record, whatever limits.packBytes says.
      packBytes: options.config.recordFormat === "single" ? 0 : options.config.limits.packBytes,
      lanes: options.config.limits.producers,
      deadLetterTopic: topicNames(prefix).deadLetter,
      metrics: {
        sent: (records, bytes) => {
          this.metrics.recordsAcked.inc(records);
          this.metrics.bytesAcked.inc(bytes);
        },
        failed: () => this.metrics.kafkaErrors.inc(),
        deadLettered: (records) => this.metrics.deadLettered.inc(records),
      },
    });
    this.reads = new ReadBudget(this.producer, READ_CONCURRENCY, READ_CHUNK_BYTES);
    this.checkpoints = new CheckpointStore(options.config.checkpointDir);
    this.inputs = options.config.inputs.map((config) => compileInput(config, prefix));
    this.encoder = new RecordEncoder(this.producer, this.metrics);
    this.events = {
      record: (tailer, record) => this.onRecord(tailer, record),
      acquireRead: () => this.reads.acquire(),
      tryAcquireRead: () => this.reads.tryAcquire(),
      truncated: (tailer, previous, before) => this.onTruncated(tailer, previous, before),
      binarySkipped: (tailer) => {
        this.metrics.binarySkipped.inc({ input: tailer.input });
        this.logger.warn(
          { path: tailer.path },
          "binary file skipped (NUL bytes in its first 8 KiB; UTF-16 text without a byte order mark needs `encoding: utf-16le` or `utf-16be` on its input)",
        );
        this.dirty = true;
      },
      bytesRead: (tailer, bytes) => {
        this.metrics.bytesRead.inc({ input: tailer.input }, bytes);
        this.reportRecords(this.fileByTailer.get(tailer));
      },
    };
  }

  get topics(): string[] {
    return [
      ...new Set(this.inputs.map((input) => input.topic)),
      topicNames(this.config.topicPrefix).deadLetter,
    ];
  }

  health() {
    return {
      healthy: this.started && !this.stopped && this.producer.healthy,
      details: {
        files: this.files.size,
        inflightBytes: this.producer.inflightBytes,
        kafkaLastError: this.producer.lastError ?? null,
      },
    };
  }

  async start(): Promise<void> {
    this.saved = await this.checkpoints.load();
    await this.producer.start();
    await this.reconcile();
    const patterns = this.inputs.flatMap((input) => input.config.paths);
    this.watcher = new FolderWatcher(
      patterns,
      (event) => this.onWatchEvent(event),
      (error, dir) =>
        this.logger.warn(
          { err: error, dir },
          "folder watch failed; the reconcile pass covers it and tries again",
        ),
    );
    this.timers.push(setInterval(() => void this.reconcile(), this.config.reconcileIntervalMs));
    this.timers.push(setInterval(() => this.tick(), TICK_MS));
    this.timers.push(setInterval(() => this.refreshBytesBehind(), GAUGE_INTERVAL_MS));
    this.timers.push(setInterval(() => void this.saveCheckpoint(), this.config.checkpointIntervalMs));
    this.started = true;
    this.logger.info({ files: this.files.size, inputs: this.inputs.length }, "shipper started");
  }

  async stop(deadline: AbortSignal): Promise<void> {
    if (this.stopped || !this.started) {
      this.stopped = true;
      return;
    }
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    clearTimeout(this.reconcileSoon);
    clearImmediate(this.readChanged);
    this.watcher?.close();
    await this.reconciling;
    // Stop reading; records already complete go out, half-written lines are read again next time.
    await Promise.all([...this.files.values()].map(async ({ tailer }) => tailer.close()));
    for (const { tailer } of this.files.values()) tailer.flushRecords();
    await this.producer.stop(deadline);
    await this.saveCheckpoint(true);
    this.logger.info({ files: this.files.size }, "shipper stopped, checkpoint saved");
  }

  private onWatchEvent({ kind, path }: WatchEvent): void {
    if (this.stopped) return;
    if (kind === "change" && path !== undefined) {
      const files = this.filesAt(path);
      // A file closed while inactive (or waiting for a slot) that grows: opened by the next pass, soon.
      if (files.length > 0) {
        for (const file of files) this.changed.add(file);
        this.readChanged ??= setImmediate(() => {
          this.readChanged = undefined;
          for (const file of this.changed) this.pump(file);
          this.changed.clear();
        });
        return;
      }
    }
    // New, renamed or vanished names (or an event without one): look again shortly, once, whatever the number
    // of events.
    this.reconcileSoon ??= setTimeout(() => {
      this.reconcileSoon = undefined;
      void this.reconcile();
    }, 20);
  }

  /** The files known at a path (a renamed file's old path may be a new file's too); the index is rebuilt lazily. */
  private filesAt(path: string): TrackedFile[] {
    if (!this.filesByPath) {
      this.filesByPath = new Map();
      for (const file of this.files.values()) {
        const list = this.filesByPath.get(file.tailer.path);
        if (list) list.push(file);
        else this.filesByPath.set(file.tailer.path, [file]);
      }
    }
    return this.filesByPath.get(path) ?? [];
  }

  private reconcile(): Promise<void> {
    if (this.reconciling) {
      this.reconcileAgain = true;
      return this.reconciling;
    }
    this.reconciling = (async () => {
      try {
        do {
          this.reconcileAgain = false;
          await this.reconcileOnce();
        } while (this.reconcileAgain && !this.stopped);
      } catch (error) {
        this.logger.error({ err: error }, "reconcile pass failed");
      } finally {
        this.reconciling = undefined;
      }
    })();
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    this.watcher?.refresh();
    const seen = new Map<string, string>(); // identity key → path
    const opened: TrackedFile[] = [];
    let waiting = 0;
    for (const input of this.inputs) {
      const paths = await listMatching(input.matcher);
      // Several paths at a time: a thousand files found at start open in a fraction of the time, one by one.
      const slots = new Semaphore(RECONCILE_CONCURRENCY);
      await Promise.all(
        paths.map((path) =>
          slots.run(async () => {
            if (this.stopped) return;
            const info = await statFile(path).catch(() => undefined);
            if (!info) return;
            const key = identityKey(info);
            seen.set(key, path);
            const known = this.files.get(key);
            if (!known) {
              // Closed while inactive, and not grown since: stays closed (its checkpoint is in `saved`).
              const closed = this.saved.get(key);
              if (closed && this.started && closed.size === info.size && closed.mtimeMs === info.mtimeMs)
                return;
              if (this.files.size + this.pendingOpens >= this.config.limits.openFiles) {
                waiting++;
                return;
              }
            }
            if (known) {
              if (known.tailer.path !== path) {
                known.tailer.renamedTo(path); // renamed, and still matched
                this.filesByPath = undefined;
              }
              known.detachedAt = undefined;
              if (known.held) this.reviewHeld(known, info.size);
              return;
            }
            // Counted before the first await: paths open concurrently, and each must see the others' slots.
            this.pendingOpens++;
            try {
              const file = await this.openFile(path, input, info.size);
              if (file) opened.push(file);
            } finally {
              this.pendingOpens--;
            }
          }),
        ),
      );
      if (this.stopped) return;
    }
    if (this.saved.size > 0) opened.push(...(await this.recoverRotatedWhileStopped(seen)));
    const now = Date.now();
    for (const [key, file] of this.files) {
      if (seen.has(key)) continue;
      // A held copy deleted (compressed, say) is still read through its handle: where its own lines begin is
      // decided from what it holds, as soon as its original can tell.
      if (file.held) this.reviewHeld(file, file.tailer.currentSize(), true);
      if (file.detachedAt === undefined) {
        file.detachedAt = now;
        file.tailer.detach();
        this.metrics.rotations.inc({ input: file.input.config.name });
        this.logger.info(
          { path: file.tailer.path, read: file.tailer.position },
          "file renamed away or deleted: reading it to its end",
        );
      } else if (this.drained(file, now)) {
        file.tailer.finish();
        await file.tailer.close();
        if (file.tailer.ackedOffset >= file.tailer.position) {
          this.files.delete(key);
          this.fileByTailer.delete(file.tailer);
          this.filesByPath = undefined;
          this.dirty = true;
        }
      }
    }
    this.closeInactive(now);
    if (opened.length > 0) {
      // The new files' ids must be on disk before any of their records is sent.
      await this.saveCheckpoint(true);
    }
    this.metrics.filesWaiting.set(waiting);
    if (waiting > 0 && !this.warnedWaiting) {
      this.logger.warn(
        { openFiles: this.config.limits.openFiles, waiting },
        "limits.openFiles files are open: more files wait for a slot (raise the limit, or lower closeInactiveMs)",
      );
    }
    this.warnedWaiting = waiting > 0;
    this.metrics.filesOpen.set([...this.files.values()].filter((f) => f.tailer.state !== "closed").length);
    for (const file of this.files.values()) this.pump(file);
  }

  /**
   * Files read to their end, acknowledged and quiet for closeInactiveMs are closed; their checkpoint is kept in
   * `saved`, and the reconcile pass opens them again (same offset and file id) once their size or time changes.
   */
  private closeInactive(now: number): void {
    const after = this.config.closeInactiveMs;
    if (after <= 0) return;
    for (const [key, file] of this.files) {
      const { tailer } = file;
      if (tailer.state !== "active" || file.held || file.detachedAt !== undefined || tailer.holdsData)
        continue;
      if (now - tailer.lastGrowthAt < after || tailer.ackedOffset < tailer.position) continue;
      if (tailer.position < tailer.size) continue;
      this.saved.set(key, this.checkpointOf(key, file));
      this.files.delete(key);
      this.fileByTailer.delete(tailer);
      this.filesByPath = undefined;
      this.dirty = true;
      void tailer.close();
      this.metrics.filesClosedInactive.inc({ input: file.input.config.name });
      this.logger.debug({ path: tailer.path }, "file inactive: closed until it grows");
    }
  }

  /** A detached file is done when read to its end, nothing is pending, and it stopped growing a while ago. */
  private drained(file: TrackedFile, now: number): boolean {
    const { tailer } = file;
    if (file.held) return false; // not read yet: its original decides first
    const quiet = Math.max(1_000, 2 * this.config.reconcileIntervalMs);
    return (
      tailer.position >= tailer.size &&
      now - tailer.lastGrowthAt >= quiet &&
      now - (file.detachedAt ?? now) >= quiet
    );
  }

  private async openFile(path: string, input: Input, sizeHint: number, fromCheckpoint?: FileCheckpoint) {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, "r");
    } catch (error) {
      this.logger.warn({ path, err: (error as Error).message }, "cannot open file; will retry");
      return undefined;
    }
    const info = await statFile(handle);
    const key = identityKey(info);
    // Paths open concurrently: two names of one file (a rename during the pass, a hard link) open it once.
    if (this.files.has(key) || this.opening.has(key)) {
      await handle.close();
      return undefined;
    }
    this.opening.add(key);
    try {
      return await this.track(path, input, sizeHint, handle, info, key, fromCheckpoint);
    } finally {
      this.opening.delete(key);
    }
  }

  private async track(
    path: string,
    input: Input,
    sizeHint: number,
    handle: FileHandle,
    info: FileStat,
    key: string,
    fromCheckpoint: FileCheckpoint | undefined,
  ): Promise<TrackedFile> {
    const saved = fromCheckpoint ?? this.saved.get(key);
    let offset = input.config.startAt === "end" && !this.started ? sizeHint : 0;
    let fileId: string | undefined;
    const current = fingerprintOf(handle, info.size);
    if (saved) {
      const sameContent =
        saved.fingerprintBytes <= info.size &&
        fingerprintOf(handle, info.size, saved.fingerprintBytes).fingerprint === saved.fingerprint;
      if (sameContent) {
        offset = saved.offset <= info.size ? saved.offset : 0;
        fileId = saved.offset <= info.size ? saved.fileId : undefined;
        if (saved.offset > info.size)
          this.logger.warn(
            { path, saved: saved.offset, size: info.size },
            "file shorter than its checkpoint: truncated while stopped, reading from the start",
          );
      } else {
        this.logger.info({ path }, "inode reused by a new file: reading it from the start");
        offset = 0;
      }
      this.saved.delete(key);
    } else if (this.started) {
      offset = 0; // a file that appears while running is read from its start, whatever startAt says
    }
    const held = saved ? undefined : this.copyHeld(handle.fd, info.size, current);
    if (held?.kind === "truncated") fileId = held.truncation.fileId;
    if (held?.kind === "live") fileId = held.original.fileId;
    const identity = { dev: info.dev, ino: info.ino, ...current };
    const tailer = new FileTailer({
      handle,
      path,
      input: input.config.name,
      identity,
      offset,
      maxLineBytes: input.config.maxLineBytes,
      multiline: input.multiline,
      events: this.events,
      encoding: input.config.encoding,
    });
    const file: TrackedFile = {
      tailer,
      input,
      fileId: fileId ?? deterministicId(this.config.host.name, key, current.fingerprint, Date.now()),
      detachedAt: undefined,
      kafkaKey: `${this.config.host.name}|${key}`,
      acknowledge: undefined,
      acknowledgeGeneration: -1,
      unreportedRecords: 0,
      held,
      template: new LogDocumentTemplate({
        dataset: input.config.name,
        hostName: this.config.host.name,
        service: input.config.service,
        labels: input.config.fields,
      }),
    };
    this.files.set(key, file);
    this.fileByTailer.set(file.tailer, file);
    this.filesByPath = undefined;
    this.dirty = true;
    if (held) {
      this.metrics.copiesHeld.inc({ input: input.config.name });
      this.logger.info(
        {
          path,
          inode: info.ino,
          copyOf: held.kind === "live" ? held.original.tailer.path : "a file truncated in place",
        },
        "a copy of a file already read: its lines are not read twice",
      );
      this.reviewHeld(file, info.size);
    }
    return file;
  }

  /**
   * A held copy's checkpoint: what its original had shipped of it. After a restart it is read from there (lines
   * the original also reads again keep their event ids: one document each).
   */
  private heldFloor(file: TrackedFile): number {
    const held = file.held as Held;
    const size = file.tailer.currentSize();
    return Math.min(
      size,
      held.kind === "truncated" ? held.truncation.readUpTo : held.original.tailer.ackedOffset,
    );
  }

  /** A new file that holds another's content: a copytruncate copy (see shipper/tail/copies.ts), or undefined. */
  private copyHeld(
    fd: number,
    size: number,
    current: { fingerprint: string; fingerprintBytes: number },
  ): Held | undefined {
    const truncation = this.truncations.find(fd, size, Date.now());
    if (truncation) return { kind: "truncated", truncation, lastSize: undefined };
    if (!this.started) return undefined;
    for (const original of this.files.values()) {
      if (original.held || original.tailer.state !== "active") continue;
      if (!isFullCopyOf(current, original.tailer.identity)) continue;
      const lineEnd = this.firstLinesEnd(fd, current.fingerprintBytes);
      return { kind: "live", original, compared: current.fingerprintBytes, lineEnd };
    }
    return undefined;
  }

  private firstLinesEnd(fd: number, bytes: number): number {
    const head = Buffer.allocUnsafe(bytes);
    const read = readSync(fd, head, 0, bytes, 0);
    return head.subarray(0, read).lastIndexOf(10) + 1;
  }

  /**
   * Decides where a held copy's own lines begin, if that can be known now, and lets it be read from there.
   * `final`: the copy is gone from its path (its content will not change): decide with what it holds.
   */
  private reviewHeld(file: TrackedFile, size: number, final = false): void {
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
      const originalLive =
        this.fileByTailer.get(original.tailer) === original && original.tailer.state === "active";
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
    file.held = undefined;
    file.tailer.skipTo(start);
    this.dirty = true;
    this.logger.info({ path: file.tailer.path, from: start }, "copy released: reading the lines only it has");
    this.pump(file);
  }

  /**
   * A file renamed away (and no longer matched) while the shipper was stopped still holds lines that were never
   * sent. Look for it, by device and inode, next to where it was, and read it to its end.
   */
  private async recoverRotatedWhileStopped(seen: Map<string, string>): Promise<TrackedFile[]> {
    const recovered: TrackedFile[] = [];
    for (const [key, saved] of [...this.saved]) {
      if (seen.has(key) || this.files.has(key)) continue;
      const input = this.inputs.find((candidate) => candidate.config.name === saved.input);
      const dir = dirname(saved.path);
      const names = input ? await readdir(dir).catch(() => [] as string[]) : [];
      for (const name of names) {
        const path = join(dir, name);
        const info = await statFile(path).catch(() => undefined);
        if (!info?.isFile() || identityKey(info) !== key || info.size <= saved.offset || !input) continue;
        const file = await this.openFile(path, input, info.size, saved);
        if (file) {
          file.detachedAt = Date.now();
          file.tailer.detach();
          this.logger.info(
            { path, from: saved.offset, size: info.size },
            "found a file rotated while stopped: reading the rest",
          );
          recovered.push(file);
        }
        break;
      }
      this.saved.delete(key);
    }
    return recovered;
  }

  /** Reads what is new in a file; a failed read is logged and tried again on its next event or pass. */
  private pump(file: TrackedFile): void {
    if (file.held) return;
    file.tailer.pump().catch((error: Error) => {
      this.logger.warn({ path: file.tailer.path, err: error.message }, "read failed; will retry");
    });
  }

  private tick(): void {
    const now = Date.now();
    for (const file of this.files.values()) {
      file.tailer.tick(now);
      this.reportRecords(file);
    }
    this.metrics.inflightBytes.set(this.producer.inflightBytes);
  }

  /** Once a second, not every tick: a labelled gauge per file costs more than the tick, at a thousand files. */
  private refreshBytesBehind(): void {
    for (const file of this.files.values()) {
      this.metrics.bytesBehind.set(
        { input: file.input.config.name, path: file.tailer.path },
        Math.max(0, file.tailer.size - file.tailer.ackedOffset),
      );
    }
  }

  private onTruncated(tailer: FileTailer, previous: number, before: ContentBefore): void {
    const file = this.fileByTailer.get(tailer);
    if (!file) return;
    const truncation: Truncation = { before, readUpTo: previous, fileId: file.fileId, at: Date.now() };
    this.truncations.add(truncation);
    // Copies of it found before the truncation now know where their own lines begin.
    let copyKnown = false;
    for (const copy of this.files.values()) {
      if (copy.held?.kind === "live" && copy.held.original === file) {
        copy.held = { kind: "truncated", truncation, lastSize: undefined };
        this.reviewHeld(copy, copy.tailer.currentSize());
        copyKnown = true;
      }
    }
    // New content in the same inode: new ids, so its records never collide with the old content's.
    file.fileId = deterministicId(file.fileId, "truncated", tailer.generation, Date.now());
    this.dirty = true;
    this.metrics.truncations.inc({ input: file.input.config.name });
    this.logger.warn(
      { path: tailer.path, previous },
      "file truncated (copytruncate?): reading it from the start",
    );
    if (!copyKnown) void this.catchUpFromCopy(file, truncation);
  }

  /**
   * copytruncate copies the file, then truncates it: lines written after our last read are only in the copy.
   * Find the copy (same first bytes, at least as long as what we had read) beside the file and read that tail.
   */
  private async catchUpFromCopy(file: TrackedFile, truncation: Truncation): Promise<void> {
    const { readUpTo } = truncation;
    const { fingerprint, fingerprintBytes } = truncation.before;
    const { tailer } = file;
    const dir = dirname(tailer.path);
    if (fingerprintBytes === 0) return this.reportMissedCopy(file, truncation);
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, name);
      if (path === tailer.path) continue;
      const info = await statFile(path).catch(() => undefined);
      if (!info?.isFile()) continue;
      const tracked = this.files.get(identityKey(info));
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
      const copy = await this.openFile(path, file.input, info.size, {
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
        copy.detachedAt = Date.now();
        copy.tailer.detach();
        this.logger.info(
          { path, inode: info.ino, copyOf: tailer.path, from: readUpTo, to: info.size },
          "a copy of a file already read: its lines are not read twice",
        );
        await this.saveCheckpoint(true);
        this.pump(copy);
      }
      return;
    }
    this.reportMissedCopy(file, truncation);
  }

  /**
   * The original was truncated before its last lines were read, and no copy of them is beside it (deleted or
   * compressed before it was seen, or kept elsewhere): say so, with how much at least, instead of nothing.
   * A copy the glob finds later is still read (RecentTruncations).
   */
  private reportMissedCopy(file: TrackedFile, truncation: Truncation): void {
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

  private onRecord(tailer: FileTailer, record: JoinedRecord): void {
    const file = this.fileByTailer.get(tailer);
    if (!file) return;
    file.unreportedRecords++;
    this.encoder.encode(file, record, this.acknowledger(file));
  }

  /** Records read are counted per chunk, not per record: a labelled counter update costs more than a record. */
  private reportRecords(file: TrackedFile | undefined): void {
    if (!file || file.unreportedRecords === 0) return;
    this.metrics.linesRead.inc({ input: file.input.config.name }, file.unreportedRecords);
    file.unreportedRecords = 0;
  }

  private acknowledger(file: TrackedFile): (endOffset: number) => void {
    const { tailer } = file;
    if (file.acknowledge && file.acknowledgeGeneration === tailer.generation) return file.acknowledge;
    const generation = tailer.generation;
    file.acknowledgeGeneration = generation;
    file.acknowledge = (endOffset) => {
      if (tailer.acknowledge(generation, endOffset)) this.dirty = true;
    };
    return file.acknowledge;
  }

  private checkpointOf(key: string, file: TrackedFile): FileCheckpoint {
    const { tailer, input, fileId } = file;
    return {
      key,
      input: input.config.name,
      path: tailer.path,
      dev: tailer.identity.dev,
      ino: tailer.identity.ino,
      fingerprint: tailer.identity.fingerprint,
      fingerprintBytes: tailer.identity.fingerprintBytes,
      offset: file.held ? this.heldFloor(file) : tailer.ackedOffset,
      size: tailer.size,
      mtimeMs: tailer.mtimeMs,
      updatedAt: new Date().toISOString(),
      fileId,
    };
  }

  private saveCheckpoint(force = false): Promise<void> {
    this.saving = this.saving.then(async () => {
      if (!this.dirty && !force) return;
      this.dirty = false;
      const entries: FileCheckpoint[] = [];
      for (const [key, file] of this.files) entries.push(this.checkpointOf(key, file));
      // Checkpoints of files not found yet (first pass still running) are kept as they were.
      for (const [key, saved] of this.saved) if (!this.files.has(key)) entries.push(saved);
      try {
        await this.checkpoints.save(entries);
      } catch (error) {
        this.dirty = true;
        this.logger.error({ err: error }, "checkpoint write failed; will retry");
      }
    });
    return this.saving;
  }
}
