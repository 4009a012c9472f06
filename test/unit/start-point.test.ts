import { describe, expect, it } from "vitest";
import { startPoint } from "../../shipper/start-point.ts";

const checkpoint = { offset: 500, fileId: "f1" };
const base = { size: 1_000, sizeWhenFound: 900, startAt: "beginning" as const, running: false };

describe("where reading a file begins", () => {
  it("continues from its checkpoint, with the file id its lines had", () => {
    expect(startPoint({ ...base, checkpoint, sameContent: true })).toEqual({
      offset: 500,
      fileId: "f1",
      why: "checkpoint",
    });
    // At its end exactly: nothing to read again, and still the same file.
    expect(startPoint({ ...base, size: 500, checkpoint, sameContent: true }).why).toBe("checkpoint");
  });

  it("reads from the start, with new ids, a checkpoint's inode that holds other content or less than was read", () => {
    expect(startPoint({ ...base, checkpoint, sameContent: false })).toEqual({
      offset: 0,
      fileId: undefined,
      why: "inode reused",
    });
    expect(startPoint({ ...base, size: 499, checkpoint, sameContent: true })).toEqual({
      offset: 0,
      fileId: undefined,
      why: "shorter than its checkpoint",
    });
  });

  it("starts a new file at its start, or where it ended when found if the input says startAt end at startup", () => {
    const fresh = { ...base, checkpoint: undefined, sameContent: false };
    expect(startPoint(fresh)).toEqual({ offset: 0, fileId: undefined, why: "new" });
    expect(startPoint({ ...fresh, startAt: "end" })).toEqual({
      offset: 900,
      fileId: undefined,
      why: "new, startAt end",
    });
    // A file that appears while running is new content: from its start, whatever startAt says.
    expect(startPoint({ ...fresh, startAt: "end", running: true }).offset).toBe(0);
    // A checkpoint wins over startAt.
    expect(startPoint({ ...base, startAt: "end", checkpoint, sameContent: true }).offset).toBe(500);
  });
});
