import { createHash } from "node:crypto";
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

export async function fingerprintOf(
  handle: FileHandle,
  size: number,
  bytes = Math.min(size, FINGERPRINT_BYTES),
) {
  const buffer = Buffer.alloc(bytes);
  const { bytesRead } = bytes > 0 ? await handle.read(buffer, 0, bytes, 0) : { bytesRead: 0 };
  return { fingerprint: hashPrefix(buffer.subarray(0, bytesRead)), fingerprintBytes: bytesRead };
}

export function hashPrefix(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex").slice(0, 32);
}
