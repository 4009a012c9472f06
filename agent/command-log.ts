import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import type { EventOutcome } from "../core/events.ts";
import { Journal, syncDirectory } from "./journal.ts";

/**
 * The command journal: a command is journaled as accepted, with what its events need (rollout, trace, deadline),
 * before anything is done, so that an agent restarted mid-action reports on the command's own trace.
 */
export interface CommandRecord {
  id: string;
  state: "accepted" | "done";
  service: string;
  action: string;
  rolloutId?: string;
  traceparent?: string;
  deadline?: string;
  /** After this a replay is refused as expired, so the id need not be kept. */
  expiresAt?: string;
  issuer?: string;
  outcome?: EventOutcome;
  reason?: string;
  at: string;
}

/**
 * What this agent knows of the commands it has seen: the journal on disk (fsynced, replayed at start) and its
 * latest record per id in memory. A replay of a forgotten id must still be refused, as expired: ids are kept
 * `forgetAfterExpiryMs` past their command's expiry, which covers the signer's clock running behind by as much. The journal is compacted (written anew, then renamed over) once it has
 * doubled since the last compaction: a finished command is forgotten once its expiry is forgetAfterExpiryMs past, since
 * the verifier refuses it as expired from then on; an unfinished one is kept for the restart report.
 */
export class CommandLog {
  readonly path: string;
  private journal: Journal;
  private readonly latest = new Map<string, CommandRecord>();
  private lines = 0;
  /** Lines the file held after the last compaction: the next one is due when it has doubled. */
  private compactedLines = 0;
  private readonly minLinesToCompact: number;
  private readonly now: () => number;
  private readonly forgetAfterExpiryMs: number;

  constructor(
    path: string,
    options: { minLinesToCompact?: number; now?: () => number; forgetAfterExpiryMs?: number } = {},
  ) {
    this.path = path;
    this.forgetAfterExpiryMs = options.forgetAfterExpiryMs ?? 600_000;
    this.minLinesToCompact = options.minLinesToCompact ?? 1_000;
    this.now = options.now ?? Date.now;
    const history = Journal.read<CommandRecord>(path);
    for (const record of history) this.remember(record);
    this.lines = history.length;
    this.journal = new Journal(path);
    this.compactIfDue();
  }

  /** Records as first read at start, for the restart report (accepted, never done). */
  unfinished(): CommandRecord[] {
    return [...this.latest.values()].filter((record) => record.state === "accepted");
  }

  has(id: string): boolean {
    return this.latest.has(id);
  }

  get(id: string): CommandRecord | undefined {
    return this.latest.get(id);
  }

  get size(): number {
    return this.latest.size;
  }

  append(record: CommandRecord): void {
    this.journal.append(record);
    this.remember(record);
    this.lines++;
    this.compactIfDue();
  }

  /** The done record keeps what the accepted one said (expiry, trace): compaction writes them merged. */
  private remember(record: CommandRecord): void {
    const previous = this.latest.get(record.id);
    this.latest.set(record.id, previous ? { ...previous, ...record } : record);
  }

  private forgettable(record: CommandRecord, now: number): boolean {
    if (record.state !== "done") return false;
    const until = Date.parse(record.expiresAt ?? record.deadline ?? "");
    return Number.isFinite(until) && until + this.forgetAfterExpiryMs < now;
  }

  private compactIfDue(): void {
    if (this.lines < Math.max(this.minLinesToCompact, 2 * this.compactedLines)) return;
    const now = this.now();
    for (const [id, record] of this.latest) if (this.forgettable(record, now)) this.latest.delete(id);
    const temporary = `${this.path}.compacting`;
    const fd = openSync(temporary, "w");
    try {
      for (const record of this.latest.values()) writeSync(fd, `${JSON.stringify(record)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.journal.close();
    renameSync(temporary, this.path);
    syncDirectory(dirname(this.path));
    this.journal = new Journal(this.path);
    this.lines = this.latest.size;
    this.compactedLines = this.lines;
  }

  close(): void {
    this.journal.close();
  }
}
