import { createHash } from "node:crypto";
import { type BigIntStats, readSync, type Stats, statSync } from "node:fs";
import { type FileHandle, stat } from "node:fs/promises";

/** How many leading bytes identify a file's content (with device and inode). */
export const FINGERPRINT_BYTES = 1024;

/**
 * A file is device + inode, and the hash of its first bytes: an inode reused for a new file after deletion has
 * other first bytes, so it is not mistaken for the old one. Small files get a fingerprint of what they have and
 * are read at once; the fingerprint grows with them up to FINGERPRINT_BYTES.
 */
export interface FileIdentity {
  dev: number;
  /** A number, or a decimal string when it does not fit a double exactly (see exactIno). */
  ino: number | string;
  fingerprint: string;
  fingerprintBytes: number;
}

export function identityKey(identity: { dev: number; ino: number | string }): string {
  return `${identity.dev}:${identity.ino}`;
}

/** What the shipper needs of a file's stat, with an exact file id. */
export type FileStat = Pick<Stats, "dev" | "size" | "mtimeMs" | "isFile"> & { ino: number | string };

/**
 * A 64-bit file id as a number when a double holds it exactly, as its decimal digits otherwise. On Windows the
 * file id (with the volume serial number as `dev`) is NTFS's 64-bit file reference, whose high 16 bits are a
 * sequence number: past 2^53 a number stat rounds it, and two files could share one identity.
 */
export function exactIno(ino: bigint): number | string {
  return ino <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(ino) : ino.toString();
}

/** stat with an exact file id: on Windows through a bigint stat (volume serial number + file index). */
export async function statFile(
  target: string | FileHandle,
  platform: NodeJS.Platform = process.platform,
): Promise<FileStat> {
  const read = (options?: { bigint: true }) =>
    typeof target === "string" ? stat(target, options as never) : target.stat(options as never);
  if (platform !== "win32") return (await read()) as Stats;
  return fromBigIntStats((await read({ bigint: true })) as unknown as BigIntStats);
}

/** What a bigint stat says, as a FileStat: the exact 64-bit file id, the rest as numbers. */
function fromBigIntStats(exact: BigIntStats): FileStat {
  return {
    dev: Number(exact.dev),
    ino: exactIno(exact.ino),
    size: Number(exact.size),
    mtimeMs: Number(exact.mtimeMs),
    isFile: () => exact.isFile(),
  };
}

/**
 * statFile at once, or undefined when the path is gone (or cannot be stat'ed): for the reconcile pass, which looks at
 * every matched path every few seconds. From the inode cache a stat takes about a microsecond; through the thread
 * pool and a promise it cost tens, twice per path per pass (bench/README.md).
 */
export function statFileSync(
  path: string,
  platform: NodeJS.Platform = process.platform,
): FileStat | undefined {
  try {
    if (platform !== "win32") return statSync(path, { throwIfNoEntry: false });
    const exact = statSync(path, { bigint: true, throwIfNoEntry: false });
    return exact ? fromBigIntStats(exact) : undefined;
  } catch {
    return undefined;
  }
}

export function fingerprintOf(handle: FileHandle, size: number, bytes = Math.min(size, FINGERPRINT_BYTES)) {
  const prefix = readPrefix(handle, bytes);
  return { fingerprint: hashPrefix(prefix), fingerprintBytes: prefix.length };
}

/** The file's first `bytes` bytes, or fewer if it is shorter now (read at once: see FileTailer's reads). */
export function readPrefix(handle: FileHandle, bytes: number): Buffer {
  if (bytes === 0) return Buffer.alloc(0);
  const buffer = Buffer.allocUnsafe(bytes);
  const bytesRead = readSync(handle.fd, buffer, 0, bytes, 0);
  return buffer.subarray(0, bytesRead);
}

export function hashPrefix(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex").slice(0, 32);
}
