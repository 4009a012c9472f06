import { describe, expect, it } from "vitest";
import { newClusterId } from "../../local-services/kafka.ts";

describe("KRaft cluster id", () => {
  it("is 22 base64url characters and never starts with '-', which kafka-storage would take for an option", () => {
    const ids = Array.from({ length: 10_000 }, newClusterId);
    expect(ids.every((id) => /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
