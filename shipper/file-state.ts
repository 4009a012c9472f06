import type { TailerState } from "./tail/file-tailer.ts";

/** Decisions about a tracked file's life, as pure functions of what is known of it (test/unit/file-state.test.ts). */

/** What these decisions look at. */
export interface FileFacts {
  /** Present while it is held back as a copy: not read until its original says where its own lines begin. */
  readonly held: object | undefined;
  /** When its path stopped leading to it, if it did. */
  readonly detachedAt: number | undefined;
  tailer: {
    readonly state: TailerState;
    /** Next byte to read, and the file's size at the last read. */
    readonly position: number;
    readonly size: number;
    /** Everything below is acknowledged by Kafka. */
    readonly ackedOffset: number;
    readonly lastGrowthAt: number;
    /** A partial line or a pending multiline record. */
    readonly holdsData: boolean;
  };
}

/**
 * A detached file (renamed away or deleted) is done when read to its end and quiet for a while: it stopped growing,
 * and it was detached, at least `max(1 s, 2 reconcile intervals)` ago. A held copy is never done before its original
 * decided where its lines begin.
 */
export function drained(file: FileFacts, now: number, reconcileIntervalMs: number): boolean {
  const { tailer } = file;
  if (file.held) return false;
  const quiet = Math.max(1_000, 2 * reconcileIntervalMs);
  return (
    tailer.position >= tailer.size &&
    now - tailer.lastGrowthAt >= quiet &&
    now - (file.detachedAt ?? now) >= quiet
  );
}

/**
 * An active file may be closed while inactive (closeInactiveMs > 0) when it is read to its end, everything read is
 * acknowledged, nothing is pending, and it has not grown for closeInactiveMs: reopened from its checkpoint on growth.
 */
export function closableWhileInactive(file: FileFacts, now: number, closeInactiveMs: number): boolean {
  const { tailer } = file;
  if (closeInactiveMs <= 0) return false;
  if (tailer.state !== "active" || file.held || file.detachedAt !== undefined || tailer.holdsData)
    return false;
  if (now - tailer.lastGrowthAt < closeInactiveMs || tailer.ackedOffset < tailer.position) return false;
  return tailer.position >= tailer.size;
}
