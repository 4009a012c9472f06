import { describe, expect, it } from "vitest";
import { CommitChains } from "../../indexer/commit-chain.ts";

/**
 * A batch read from `partition` in `generation`, whose writing the test settles by hand; its commit is recorded
 * in `commits` under `name`. `current` is the group generation at commit time.
 */
function read(
  chains: CommitChains,
  commits: string[],
  partition: string,
  generation: number,
  name: string,
  current: () => number = () => generation,
) {
  let settle: (written: boolean) => void = () => {};
  const written = new Promise<boolean>((resolve) => (settle = resolve));
  const outcome: { failure?: Error } = {};
  const chained = chains.add(
    partition,
    generation,
    written,
    outcome,
    async () => void commits.push(name),
    current,
  );
  return { ...chained, settle, outcome };
}

describe("CommitChains: never a commit past an unwritten batch", () => {
  it("commits in the order batches were read, even when a later one is written first", async () => {
    const chains = new CommitChains();
    const commits: string[] = [];
    const first = read(chains, commits, "t|0", 1, "first");
    const second = read(chains, commits, "t|0", 1, "second");
    second.settle(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(commits).toEqual([]);
    first.settle(true);
    expect(await first.upToHere).toBe(true);
    expect(await second.upToHere).toBe(true);
    expect(commits).toEqual(["first", "second"]);
    expect(await second.earlier).toBe(true);
  });

  it("after a batch that was not written, no later batch of the chain commits, and its failure is passed on", async () => {
    const chains = new CommitChains();
    const commits: string[] = [];
    const first = read(chains, commits, "t|0", 1, "first");
    const second = read(chains, commits, "t|0", 1, "second");
    first.outcome.failure = new Error("heartbeat refused: rebalancing");
    first.settle(false);
    second.settle(true);
    expect(await second.earlier).toBe(false);
    expect(await second.upToHere).toBe(false);
    expect(commits).toEqual([]);
    expect(second.earlierFailure()?.message).toBe("heartbeat refused: rebalancing");
  });

  it("a group join starts a new chain: a batch read after it commits whatever became of the ones before", async () => {
    const chains = new CommitChains();
    const commits: string[] = [];
    let generation = 1;
    const old = read(chains, commits, "t|0", 1, "old", () => generation);
    generation = 2;
    const fresh = read(chains, commits, "t|0", 2, "fresh", () => generation);
    fresh.settle(true);
    expect(await fresh.upToHere).toBe(true);
    expect(commits).toEqual(["fresh"]);
    // The batch read before the join is written later: its partition may be another member's now, so no commit.
    old.settle(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(commits).toEqual(["fresh"]);
  });

  it("keeps partitions apart: one held partition does not hold another's commits", async () => {
    const chains = new CommitChains();
    const commits: string[] = [];
    read(chains, commits, "t|0", 1, "t|0");
    const other = read(chains, commits, "t|1", 1, "t|1");
    other.settle(true);
    expect(await other.upToHere).toBe(true);
    expect(commits).toEqual(["t|1"]);
  });
});
