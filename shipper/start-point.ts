/** Where reading a file begins, and why: a pure decision (test/unit/start-point.test.ts). */
export type StartPoint =
  /** Where its checkpoint says, with the file id its lines had: a line read again is the same document. */
  | { offset: number; fileId: string; why: "checkpoint" }
  /** The checkpoint's inode holds other content now, or content shorter than what was read: from the start. */
  | { offset: 0; fileId: undefined; why: "inode reused" | "shorter than its checkpoint" }
  /** Never seen: from its start, or its end when the input says `startAt: end` and the shipper is starting. */
  | { offset: number; fileId: undefined; why: "new" | "new, startAt end" };

export function startPoint(options: {
  /** The file's checkpoint, if it has one. */
  checkpoint: { offset: number; fileId: string } | undefined;
  /** The file's first bytes are those the checkpoint's fingerprint hashed. */
  sameContent: boolean;
  size: number;
  /** Its size when it was found: with `startAt: end`, lines written since are read. */
  sizeWhenFound: number;
  startAt: "beginning" | "end";
  /** The shipper is past its first pass: a file appearing now is read from its start, whatever startAt says. */
  running: boolean;
}): StartPoint {
  const { checkpoint, size } = options;
  if (checkpoint) {
    if (!options.sameContent) return { offset: 0, fileId: undefined, why: "inode reused" };
    if (checkpoint.offset > size) return { offset: 0, fileId: undefined, why: "shorter than its checkpoint" };
    return { offset: checkpoint.offset, fileId: checkpoint.fileId, why: "checkpoint" };
  }
  if (options.startAt === "end" && !options.running)
    return { offset: options.sizeWhenFound, fileId: undefined, why: "new, startAt end" };
  return { offset: 0, fileId: undefined, why: "new" };
}
