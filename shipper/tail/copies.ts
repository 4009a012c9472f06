import { readSync } from "node:fs";
import { FINGERPRINT_BYTES, hashPrefix } from "./file-identity.ts";
import type { ContentBefore } from "./file-tailer.ts";

/**
 * copytruncate leaves a copy of a file beside it (`app.log.1`), and globs such as `app.log*` match the copy: read
 * as a new file, it would ship every line a second time. A copy is recognised by its content, and starts where
 * the original had been read to. These are the decisions; the shipper holds the files and their handles.
 */

/** A file truncated in place a short while ago: what it held, how far it had been read, and its file id then. */
export interface Truncation {
  before: ContentBefore;
  /** Every line below this offset of the old content was read from the original (the rest only a copy has). */
  readUpTo: number;
  /** The original's file id before the truncation: a copy's lines get the ids the original would have given them. */
  fileId: string;
  at: number;
}

/** Truncations are remembered this long, for a copy found by a later pass of the glob. */
export const TRUNCATION_MEMORY_MS = 5 * 60_000;
const MAX_TRUNCATIONS = 1_000;

export class RecentTruncations {
  private list: Truncation[] = [];

  add(truncation: Truncation): void {
    this.list.push(truncation);
    if (this.list.length > MAX_TRUNCATIONS) this.list.shift();
  }

  /**
   * The truncation whose old content `fd` holds at its start: the whole fingerprint, or (a copy being written)
   * every byte the file has so far, compared with the fingerprinted bytes themselves.
   */
  find(fd: number, size: number, now: number): Truncation | undefined {
    this.list = this.list.filter((truncation) => now - truncation.at < TRUNCATION_MEMORY_MS);
    for (let i = this.list.length - 1; i >= 0; i--) {
      const truncation = this.list[i] as Truncation;
      const { fingerprint, fingerprintBytes, prefix } = truncation.before;
      if (fingerprintBytes === 0 || size === 0) continue;
      const head = readAt(fd, 0, Math.min(size, fingerprintBytes));
      if (head.length === fingerprintBytes) {
        if (hashPrefix(head) === fingerprint) return truncation;
      } else if (prefix && head.equals(prefix.subarray(0, head.length))) {
        return truncation;
      }
    }
    return undefined;
  }
}

/** Where a held copy of a truncated file starts, or undefined while it may still be being written. */
export function copyStart(
  truncation: Truncation,
  size: number,
  sizeAtLastLook: number | undefined,
): number | undefined {
  if (size >= truncation.readUpTo) return truncation.readUpTo;
  // Shorter than what was read from the original: a copy still being written, or one taken before the last lines
  // (written between the copy and the truncation, read from the original). Decided once it stops growing.
  return size === sizeAtLastLook ? size : undefined;
}

/** True when a new file's first bytes are a live file's whole fingerprint: a copy of it, until shown otherwise. */
export function isFullCopyOf(
  candidate: { fingerprint: string; fingerprintBytes: number },
  original: { fingerprint: string; fingerprintBytes: number },
): boolean {
  return (
    candidate.fingerprintBytes === FINGERPRINT_BYTES &&
    original.fingerprintBytes === FINGERPRINT_BYTES &&
    candidate.fingerprint === original.fingerprint
  );
}

/**
 * Compares a copy with its live original over `[from, to)`. Returns how far they are equal (`to` when they are)
 * where the last line that is equal in full ends (the copy's own lines begin there), and whether a byte differs.
 */
export function compareCopy(
  copyFd: number,
  originalFd: number,
  from: number,
  to: number,
  lineEnd: number,
): { equalUpTo: number; lineEnd: number; diverged: boolean } {
  const block = 64 * 1024;
  for (let at = from; at < to; at += block) {
    const length = Math.min(block, to - at);
    const copy = readAt(copyFd, at, length);
    const original = readAt(originalFd, at, length);
    const common = Math.min(copy.length, original.length);
    let differs = -1;
    for (let i = 0; i < common; i++) {
      if (copy[i] !== original[i]) {
        differs = i;
        break;
      }
    }
    const equal = differs === -1 ? common : differs;
    const newline = copy.subarray(0, equal).lastIndexOf(10);
    if (newline !== -1) lineEnd = at + newline + 1;
    if (differs !== -1) return { equalUpTo: at + differs, lineEnd, diverged: true };
    // A short read (one of them shrank meanwhile): no decision on bytes not seen.
    if (common < length) return { equalUpTo: at + common, lineEnd, diverged: false };
  }
  return { equalUpTo: to, lineEnd, diverged: false };
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  const read = readSync(fd, buffer, 0, length, position);
  return buffer.subarray(0, read);
}
