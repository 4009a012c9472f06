/**
 * When a partition's offset may be committed, with batches written out of order: each partition's batches form a
 * chain in the order they were read, and a batch's commit is made only once it and every earlier batch of the
 * chain are written, so nothing is ever committed past an unwritten record. A group join starts new chains
 * (kafkajs then reads each partition again from its committed offset), and a batch read before the latest join
 * commits nothing: its partition may be another member's now.
 */
export interface ChainedBatch {
  /** Resolves once every earlier batch of the chain is settled: true if all of them were written. */
  earlier: Promise<boolean>;
  /** Resolves once this batch is settled and its commit made (or skipped): true if it and all before were written. */
  upToHere: Promise<boolean>;
  /** What stopped an earlier batch of the chain, once `earlier` has resolved. */
  earlierFailure(): Error | undefined;
}

interface Link {
  upToHere: Promise<boolean>;
  generation: number;
  /** A holder of its own, so that a link keeps no batch alive. */
  outcome: { failure?: Error };
}

export class CommitChains {
  private readonly tails = new Map<string, Link>();

  /**
   * Adds the batch just read from `partition` in group generation `generation`. `written` resolves to whether the
   * batch was written; `commit` is called when the commit may be made; `current` is the group generation now.
   */
  add(
    partition: string,
    generation: number,
    written: Promise<boolean>,
    outcome: { failure?: Error },
    commit: () => Promise<void>,
    current: () => number,
  ): ChainedBatch {
    const previous = this.tails.get(partition);
    const chained = previous?.generation === generation ? previous : undefined;
    const earlier = chained ? chained.upToHere : Promise.resolve(true);
    const upToHere = earlier.then(async (earlierWritten) => {
      const all = (await written) && earlierWritten;
      if (all && current() === generation) await commit();
      return all;
    });
    this.tails.set(partition, { upToHere, generation, outcome });
    return { earlier, upToHere, earlierFailure: () => chained?.outcome.failure };
  }
}
