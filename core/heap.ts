import { setFlagsFromString } from "node:v8";

/**
 * Lets V8's old space grow to 1.5 times what survives a full collection, not its default of up to four times: the
 * shipper and the collector hold little for long, and the difference is peak memory (bench/tuning.md). Not the
 * indexer: there it cost throughput. A --heap-growing-percent given to node wins.
 */
export function limitHeapGrowth(): void {
  if (process.execArgv.some((arg) => arg.startsWith("--heap-growing-percent"))) return;
  setFlagsFromString("--heap-growing-percent=50");
}
