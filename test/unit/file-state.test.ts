import { describe, expect, it } from "vitest";
import { closableWhileInactive, drained, type FileFacts } from "../../shipper/file-state.ts";

const now = 100_000;
function file(
  overrides: Partial<FileFacts["tailer"]> = {},
  rest: Partial<Omit<FileFacts, "tailer">> = {},
): FileFacts {
  return {
    held: undefined,
    detachedAt: undefined,
    ...rest,
    tailer: {
      state: "active",
      position: 1_000,
      size: 1_000,
      ackedOffset: 1_000,
      lastGrowthAt: now - 60_000,
      holdsData: false,
      ...overrides,
    },
  };
}

describe("a detached file is drained", () => {
  const detached = { detachedAt: now - 5_000 };
  it("when read to its end and quiet (grown and detached) for max(1 s, two reconcile intervals)", () => {
    expect(drained(file({ state: "draining" }, detached), now, 1_000)).toBe(true);
    expect(drained(file({ state: "draining" }, detached), now, 3_000)).toBe(false); // 5 s < 6 s
    expect(drained(file({ state: "draining" }, { detachedAt: now - 500 }), now, 100)).toBe(false); // < 1 s
    expect(drained(file({ state: "draining", lastGrowthAt: now - 10 }, detached), now, 100)).toBe(false);
  });

  it("not while bytes are left to read, nor while it is a held copy", () => {
    expect(drained(file({ state: "draining", position: 999 }, detached), now, 100)).toBe(false);
    expect(drained(file({ state: "draining" }, { ...detached, held: {} }), now, 100)).toBe(false);
  });
});

describe("an active file closes while inactive", () => {
  it("when read, acknowledged, with nothing pending, and not grown for closeInactiveMs", () => {
    expect(closableWhileInactive(file(), now, 30_000)).toBe(true);
    expect(closableWhileInactive(file(), now, 0)).toBe(false); // off
    expect(closableWhileInactive(file(), now, 90_000)).toBe(false); // grew 60 s ago
  });

  it("never with lines unacknowledged, unread or half-read, nor when detached, held or not active", () => {
    expect(closableWhileInactive(file({ ackedOffset: 900 }), now, 30_000)).toBe(false);
    expect(closableWhileInactive(file({ size: 1_200 }), now, 30_000)).toBe(false);
    expect(closableWhileInactive(file({ holdsData: true }), now, 30_000)).toBe(false);
    expect(closableWhileInactive(file({}, { detachedAt: now - 1 }), now, 30_000)).toBe(false);
    expect(closableWhileInactive(file({}, { held: {} }), now, 30_000)).toBe(false);
    expect(closableWhileInactive(file({ state: "draining" }), now, 30_000)).toBe(false);
  });
});
