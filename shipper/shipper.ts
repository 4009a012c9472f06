import { BatchProducer } from "../core/kafka/batch-producer.ts";
import type { KafkaPort as Kafka } from "../core/kafka/port.ts";
import type { Component } from "../core/lifecycle.ts";
import type { Logger } from "../core/logger.ts";
import { Semaphore } from "../core/semaphore.ts";
import { topicNames } from "../core/topics.ts";
import { CheckpointStore } from "./checkpoint-store.ts";
import { CheckpointTracker } from "./checkpoint-tracker.ts";
import type { ShipperConfig } from "./config.ts";
import { CopyTracker } from "./copy-tracker.ts";
import { FolderWatcher, listMatching, type WatchEvent } from "./discovery.ts";
import { FileOpener } from "./file-opener.ts";
import { FileRegistry, type TrackedFile } from "./file-registry.ts";
import { closableWhileInactive, drained } from "./file-state.ts";
import { compileInput, type Input, inputTopic } from "./input.ts";
import { BehindGauge, type ShipperMetrics } from "./metrics.ts";
import { ReadBudget } from "./read-budget.ts";
import { RecordEncoder } from "./record-encoder.ts";
import { identityKey } from "./tail/file-identity.ts";
import { type FileTailer, READ_CHUNK_BYTES, type TailerEvents } from "./tail/file-tailer.ts";
import type { JoinedRecord } from "./tail/multiline.ts";

/** How often a pending multiline record's timeout is looked at (only when an input joins lines). */
const TICK_MS = 100;
const RECONCILE_CONCURRENCY = 16;
const READ_CONCURRENCY = 4;
/** A read pass lets the pumps of this many files end before it starts the next ones. */
const PASS_GROUP = 16;

/**
 * Tails every input's files into Kafka. Offsets advance only after Kafka acknowledged a record; the
 * checkpoint is written atomically every second and on stop. Files are the buffer: when Kafka is slow or away,
 * reading pauses at `limits.inflightBytes` and resumes by itself.
 *
 * The orchestrator: it finds files (reconcile pass, folder watch), opens them (FileOpener), reads them within the
 * read budget, hands their records to the encoder, and closes them when drained or inactive. The producer and the
 * checkpoint tracker are components of their own, started before it and stopped after it (createShipper).
 */
export class Shipper implements Component {
  readonly name = "shipper";
  private readonly config: ShipperConfig;
  private readonly logger: Logger;
  private readonly metrics: ShipperMetrics;
  private readonly producer: BatchProducer;
  private readonly checkpoints: CheckpointTracker;
  private readonly inputs: Input[];
  private readonly files: FileRegistry;
  private watcher: FolderWatcher | undefined;
  /** Files a change event named since the last read pass: each is read once however many writes it saw. */
  private readonly changed = new Set<TrackedFile>();
  /** Cancels the read pass to come (its timer, or its immediate when `readDelayMs` is 0); undefined: none is due. */
  private cancelReadPass: (() => void) | undefined;
  private timers: NodeJS.Timeout[] = [];
  private reconciling: Promise<void> | undefined;
  private reconcileAgain = false;
  private reconcileSoon: NodeJS.Timeout | undefined;
  private stopped = false;
  private started = false;
  private readonly events: TailerEvents;
  private readonly reads: ReadBudget;
  private readonly encoder: RecordEncoder;
  private readonly opener: FileOpener;
  private readonly copies: CopyTracker;
  private warnedWaiting = false;
  /** Files being opened by the reconcile pass right now (they take a slot of limits.openFiles). */
  private pendingOpens = 0;
  private readonly behind: BehindGauge;

  constructor(options: {
    config: ShipperConfig;
    producer: BatchProducer;
    checkpoints: CheckpointTracker;
    files: FileRegistry;
    logger: Logger;
    metrics: ShipperMetrics;
  }) {
    this.config = options.config;
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.producer = options.producer;
    this.checkpoints = options.checkpoints;
    this.files = options.files;
    this.behind = new BehindGauge(this.metrics.bytesBehind);
    this.reads = new ReadBudget(this.producer, READ_CONCURRENCY, READ_CHUNK_BYTES);
    this.inputs = options.config.inputs.map((config) => compileInput(config, options.config.topicPrefix));
    this.encoder = new RecordEncoder(this.producer, this.metrics);
    this.copies = new CopyTracker(
      {
        files: this.files,
        openDetached: (path, input, size, checkpoint) =>
          this.opener.openDetached(path, input, size, checkpoint),
        changed: () => this.checkpoints.changed(),
        saveNow: () => this.checkpoints.save(true),
        pump: (file) => this.pump(file),
      },
      this.metrics,
      this.logger,
    );
    this.events = {
      record: (tailer, record) => this.onRecord(tailer, record),
      acquireRead: () => this.reads.acquire(),
      tryAcquireRead: () => this.reads.tryAcquire(),
      truncated: (tailer, previous, before) => {
        const file = this.files.ofTailer(tailer);
        if (file) this.copies.truncated(file, previous, before);
      },
      binarySkipped: (tailer) => {
        this.metrics.binarySkipped.inc({ input: tailer.input });
        this.logger.warn(
          { path: tailer.path },
          "binary file skipped (NUL bytes in its first 8 KiB; UTF-16 text without a byte order mark needs `encoding: utf-16le` or `utf-16be` on its input)",
        );
        this.checkpoints.changed();
      },
      bytesRead: (tailer, bytes) => {
        const file = this.files.ofTailer(tailer);
        if (!file) return;
        file.input.unreported.bytes += bytes;
        file.input.unreported.reads++;
      },
    };
    this.opener = new FileOpener({
      hostName: options.config.host.name,
      files: this.files,
      checkpoints: this.checkpoints,
      copies: () => this.copies,
      events: this.events,
      running: () => this.started,
      logger: this.logger,
    });
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
    if (this.inputs.some((input) => input.multiline !== undefined)) {
      this.timers.push(setInterval(() => this.tick(), TICK_MS));
    }
    // The metrics that need a look at the files or the counters kept while reading are brought up to date when
    // scraped, not on timers of their own.
    this.metrics.onScrape.read = () => this.reportRead();
    this.metrics.onScrape.inflight = () => this.metrics.inflightBytes.set(this.producer.inflightBytes);
    this.metrics.onScrape.behind = () => this.refreshBytesBehind();
    this.started = true;
    this.logger.info({ files: this.files.size, inputs: this.inputs.length }, "shipper started");
  }

  async stop(): Promise<void> {
    if (this.stopped || !this.started) {
      this.stopped = true;
      return;
    }
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    clearTimeout(this.reconcileSoon);
    this.cancelReadPass?.();
    this.cancelReadPass = undefined;
    this.watcher?.close();
    await this.reconciling;
    // Stop reading; records already complete go out, half-written lines are read again next time.
    await Promise.all([...this.files.values()].map(async ({ tailer }) => tailer.close()));
    for (const { tailer } of this.files.values()) tailer.flushRecords();
    this.reportRead();
    this.logger.info(
      { files: this.files.size },
      "shipper stopped reading: the producer drains, then the checkpoint is saved",
    );
  }

  private onWatchEvent({ kind, path }: WatchEvent): void {
    if (this.stopped) return;
    if (kind === "change" && path !== undefined) {
      const files = this.files.at(path);
      // A file closed while inactive (or waiting for a slot) that grows: opened by the next pass, soon.
      if (files.length > 0) {
        for (const file of files) this.changed.add(file);
        if (this.cancelReadPass === undefined) {
          const read = async () => {
            this.cancelReadPass = undefined;
            const files = [...this.changed];
            this.changed.clear();
            let outstanding = files.length;
            const done = () => {
              // Every changed file read: its lines go to Kafka now, not after the linger (which is for full speed).
              if (--outstanding === 0) this.producer.sendQueued();
            };
            // PASS_GROUP files at a time: a pump that read all it could at once ends a microtask later, so each group
            // ends before the next one starts. Started all at once, a pass over a thousand files held a thousand
            // suspended pumps to its end, through the young-generation collections its reading set off, and V8 moved
            // them to the old generation: half the bytes promoted while 1,000 files were tailed (--trace-gc-nvp).
            for (let i = 0; i < files.length; i++) {
              void this.pump(files[i] as TrackedFile).then(done);
              if (i % PASS_GROUP === PASS_GROUP - 1) await null;
            }
          };
          const wait = this.config.limits.readDelayMs;
          if (wait > 0) {
            const timer = setTimeout(() => void read(), wait);
            this.cancelReadPass = () => clearTimeout(timer);
          } else {
            const immediate = setImmediate(() => void read());
            this.cancelReadPass = () => clearImmediate(immediate);
          }
        }
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
      // Several paths open at a time: a thousand files found at start open in a fraction of the time, one by one.
      // Files already open need nothing but the stat the listing made.
      const slots = new Semaphore(RECONCILE_CONCURRENCY);
      const opening: Array<Promise<void>> = [];
      for (const [path, info] of paths) {
        if (this.stopped) break;
        const key = identityKey(info);
        seen.set(key, path);
        const known = this.files.get(key);
        if (known) {
          this.files.rename(known, path);
          known.reattach();
          if (known.held) this.copies.review(known, info.size);
          continue;
        }
        // Closed while inactive, and not grown since: stays closed (its checkpoint is parked).
        const closed = this.checkpoints.parked(key);
        if (closed && this.started && closed.size === info.size && closed.mtimeMs === info.mtimeMs) continue;
        if (this.files.size + this.pendingOpens >= this.config.limits.openFiles) {
          waiting++;
          continue;
        }
        // Counted before the first await: paths open concurrently, and each must see the others' slots.
        this.pendingOpens++;
        opening.push(
          slots.run(async () => {
            try {
              if (this.stopped) return;
              const file = await this.opener.open(path, input, info.size);
              if (file) opened.push(file);
            } finally {
              this.pendingOpens--;
            }
          }),
        );
      }
      await Promise.all(opening);
      if (this.stopped) return;
    }
    if (this.checkpoints.anyParked)
      opened.push(...(await this.opener.recoverRotatedWhileStopped(seen, this.inputs)));
    const now = Date.now();
    for (const [key, file] of this.files) {
      if (seen.has(key)) continue;
      // A held copy deleted (compressed, say) is still read through its handle: where its own lines begin is
      // decided from what it holds, as soon as its original can tell.
      if (file.held) this.copies.review(file, file.tailer.currentSize(), true);
      if (file.detachedAt === undefined) {
        file.detach(now);
        this.metrics.rotations.inc({ input: file.input.config.name });
        this.logger.info(
          { path: file.tailer.path, read: file.tailer.position },
          "file renamed away or deleted: reading it to its end",
        );
      } else if (drained(file, now, this.config.reconcileIntervalMs)) {
        file.tailer.finish();
        await file.tailer.close();
        if (file.tailer.ackedOffset >= file.tailer.position) {
          this.files.delete(key);
          this.checkpoints.changed();
        }
      }
    }
    this.closeInactive(now);
    if (opened.length > 0) {
      // The new files' ids must be on disk before any of their records is sent.
      await this.checkpoints.save(true);
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
   * Files read to their end, acknowledged and quiet for closeInactiveMs are closed; their checkpoint is parked, and
   * the reconcile pass opens them again (same offset and file id) once their size or time changes.
   */
  private closeInactive(now: number): void {
    if (this.config.closeInactiveMs <= 0) return;
    for (const [key, file] of this.files) {
      if (!closableWhileInactive(file, now, this.config.closeInactiveMs)) continue;
      const { tailer } = file;
      this.checkpoints.park(key, file);
      this.files.delete(key);
      void tailer.close();
      this.metrics.filesClosedInactive.inc({ input: file.input.config.name });
      this.logger.debug({ path: tailer.path }, "file inactive: closed until it grows");
    }
  }

  /** Reads what is new in a file; a failed read is logged and tried again on its next event or pass. */
  private pump(file: TrackedFile): Promise<void> {
    if (file.held) return Promise.resolve();
    return file.tailer.pump().catch((error: Error) => {
      this.logger.warn({ path: file.tailer.path, err: error.message }, "read failed; will retry");
    });
  }

  private tick(): void {
    const now = Date.now();
    for (const file of this.files.values()) file.tailer.tick(now);
  }

  /**
   * When the metrics are scraped. The size is the file's now (a stat through its handle), not the one its last read
   * saw: while Kafka is away reading pauses, and the bytes piling up are what this gauge is for.
   */
  private refreshBytesBehind(): void {
    this.behind.refresh(
      Array.from(this.files.values(), ({ input, tailer }) => ({
        input: input.config.name,
        path: tailer.path,
        bytes: sizeNow(tailer) - tailer.ackedOffset,
      })),
    );
  }

  private onRecord(tailer: FileTailer, record: JoinedRecord): void {
    const file = this.files.ofTailer(tailer);
    if (!file) return;
    file.input.unreported.lines++;
    this.encoder.encode(file, record, this.checkpoints.acknowledger(file));
  }

  /** Lines, bytes and reads since the last report, per input (Input.unreported): at a scrape, and at the stop. */
  private reportRead(): void {
    for (const { config, unreported } of this.inputs) {
      if (unreported.lines > 0) this.metrics.linesRead.inc({ input: config.name }, unreported.lines);
      if (unreported.bytes > 0) this.metrics.bytesRead.inc({ input: config.name }, unreported.bytes);
      if (unreported.reads > 0) this.metrics.reads.inc({ input: config.name }, unreported.reads);
      unreported.lines = 0;
      unreported.bytes = 0;
      unreported.reads = 0;
    }
  }
}

/** A file's size through its open handle; the size its last read saw once it is closed (or cannot be stat'ed). */
function sizeNow(tailer: FileTailer): number {
  if (tailer.state === "closed") return tailer.size;
  try {
    return tailer.currentSize();
  } catch {
    return tailer.size;
  }
}

/**
 * The shipper and the components it needs, in start order (the supervisor stops them in reverse): the checkpoint
 * tracker (read first, written last), the Kafka producer (drains after reading stops), the shipper.
 */
export function createShipper(options: {
  config: ShipperConfig;
  kafka: Kafka;
  logger: Logger;
  metrics: ShipperMetrics;
}): { shipper: Shipper; components: Component[] } {
  const { config, logger, metrics } = options;
  const files = new FileRegistry();
  const checkpoints = new CheckpointTracker({
    store: new CheckpointStore(config.checkpointDir),
    files,
    intervalMs: config.checkpointIntervalMs,
    logger,
  });
  const producer = new BatchProducer({
    kafka: options.kafka,
    logger: logger.child({ component: "kafka-producer" }),
    batchBytes: config.limits.batchBytes,
    lingerMs: config.limits.lingerMs,
    inflightBytes: config.limits.inflightBytes,
    compression: config.compression,
    // recordFormat single: one document per record, whatever limits.packBytes says.
    packBytes: config.recordFormat === "single" ? 0 : config.limits.packBytes,
    lanes: config.limits.producers,
    // Many files each writing a little share a message per partition, not one message per file per linger.
    topics: [...new Set(config.inputs.map((input) => inputTopic(input, config.topicPrefix)))],
    deadLetterTopic: topicNames(config.topicPrefix).deadLetter,
    metrics: {
      sent: (records, bytes) => {
        metrics.recordsAcked.inc(records);
        metrics.bytesAcked.inc(bytes);
      },
      failed: () => metrics.kafkaErrors.inc(),
      deadLettered: (records) => metrics.deadLettered.inc(records),
    },
  });
  const shipper = new Shipper({ config, producer, checkpoints, files, logger, metrics });
  return { shipper, components: [checkpoints, producer, shipper] };
}
