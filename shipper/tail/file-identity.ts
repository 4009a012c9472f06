import { createHash } from "node:crypto";
import { readSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";

/** How many leading bytes identify a file's content (with device and inode). */
export const FINGERPRINT_BYTES = 1024;

/**
 * A file is device + inode, and the hash of its first bytes: an inode reused for a new file after deletion has
 * other first bytes, so it is not mistaken for the old one. Small files get a fingerprint of what they have and
 * are read at once; the fingerprint grows with them up to FINGERPRINT_BYTES.
 */
export interface FileIdentity {
  dev: number;
  ino: number;
  fingerprint: string;
  fingerprintBytes: number;
}

export function identityKey(identity: { dev: number; ino: number }): string {
  return `${identity.dev}:${identity.ino}`;
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
