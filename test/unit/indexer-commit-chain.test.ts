import { describe, expect, it } from "vitest";
import { CommitChains } from "../../indexer/commit-chain.ts";

/** A batch whose writing the test settles by hand. */
function batch() {
  let settle: (written: boolean) => void = () => {};
  const written = new Promise<boolean>((resolve) => (settle = resolve));
  return { written, settle, outcome: {} as { failure?: Error } };
}

describe("CommitChains: never a commit past an unwritten batch", () => {
  it("commits in the order batches were read, even when a later one is written first", async () => {
    const chains = new CommitChains();
    const commits: string[] = [];
    const first = batch();
    const second = batch();
    const a = chains.add(
      "t|0",
      1,
      first.written,
      first.outcome,
      async () => void commits.push("first"),
      () => 1,
    );
    const b = chains.add(
      "t|0",
      1,
      second.written,
      second.outcome,
      async () => void commits.push("second"),
      () => 1,
    );
    second.settle(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(commits).toEqual([]);
    first.settle(true);
    expect(await a.upToHere).toBe(true);
    expect(await b.upToHere).toBe(true);
    expect(commits).toEqual(["first", "second"]);
    expect(await b.earlier).toBe(true);
  });

  it("after a batch that was not written, no later batch of the chain commits, and its failure is passed on", async () => {
    const chains = new CommitChains();
    const commits: string[] = [];
    const first = batch();
    const second = batch();
    chains.add(
      "t|0",
      1,
      first.written,
      first.outcome,
      async () => void commits.push("first"),
      () => 1,
    );
    const b = chains.add(
      "t|0",
      1,
      second.written,
      second.outcome,
      async () => void commits.push("second"),
      () => 1,
    );
    first.outcome.failure = new Error("heartbeat refused: rebalancing");
    first.settle(false);
    second.settle(true);
    expect(await b.earlier).toBe(false);
    expect(await b.upToHere).toBe(false);
    expect(commits).toEqual([]);
    expect(b.earlierFailure()?.message).toBe("heartbeat refused: rebalancing");
  });

  it("a group join starts a new chain: a batch read after it commits whatever became of the ones before", async () => {
    const chains = new CommitChains();
    const commits: string[] = [];
    let generation = 1;
    const old = batch();
    chains.add(
      "t|0",
      1,
      old.written,
      old.outcome,
      async () => void commits.push("old"),
      () => generation,
    );
    generation = 2;
    const fresh = batch();
    const f = chains.add(
      "t|0",
      2,
      fresh.written,
      fresh.outcome,
      async () => void commits.push("fresh"),
      () => generation,
    );
    fresh.settle(true);
    expect(await f.upToHere).toBe(true);
    expect(commits).toEqual(["fresh"]);
    // The batch read before the join is written later: its partition may be another member's now, so no commit.
    old.settle(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(commits).toEqual(["fresh"]);
  });

  it("keeps partitions apart: one held partition does not hold another's commits", async () => {
    const chains = new CommitChains();
    const commits: string[] = [];
    const held = batch();
    const other = batch();
    chains.add(
      "t|0",
      1,
      held.written,
      held.outcome,
      async () => void commits.push("t|0"),
      () => 1,
    );
    const o = chains.add(
      "t|1",
      1,
      other.written,
      other.outcome,
      async () => void commits.push("t|1"),
      () => 1,
    );
    other.settle(true);
    expect(await o.upToHere).toBe(true);
    expect(commits).toEqual(["t|1"]);
  });
});
