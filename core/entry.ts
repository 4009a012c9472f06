import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The `lifeline` entry point of this installation: the TypeScript source, or its compiled twin under dist/. */
export const lifelineEntry = fileURLToPath(
  new URL(import.meta.url.endsWith(".js") ? "../bin/lifeline.js" : "../bin/lifeline.ts", import.meta.url),
);

/**
 * How a long-running agent is best run: compiled JavaScript (`npm run build`) with a small young generation and
 * V8's lite mode (no optimizing compiler: the agent idles, and sends a signal in milliseconds either way). Lite
 * mode needs the compiled files, because Node strips TypeScript types with WebAssembly, which lite mode lacks.
 * Without a build, the TypeScript entry and Node's defaults.
 */
export function leanAgentLauncher(): Launcher {
  const compiled = compiledEntry();
  return compiled
    ? { nodeArgs: ["--max-semi-space-size=1", "--lite-mode"], entry: compiled, compiled: true }
    : { nodeArgs: [], entry: lifelineEntry, compiled: false };
}

/**
 * How the shipper is best run: a 2 MiB young generation (V8's default grows to tens of MiB), two malloc arenas
 * instead of one per thread, a fixed threshold of 256 KiB for malloc's own mappings (its default rises to the
 * largest block freed, a Kafka batch, and the freed batches then stay in its heap, which grows through a long
 * catch-up), compiled JavaScript when built: each less memory at the same CPU (bench/tuning.md).
 * docker-compose.yml sets the same for its shipper.
 */
export function shipperLauncher(): Launcher {
  return deployed([SHIPPER_NODE_OPTIONS], MALLOC_ENV);
}

export const SHIPPER_NODE_OPTIONS = "--max-semi-space-size=2";

/**
 * How the collector is best run, as its container runs it (docker-compose.yml): compiled JavaScript (the image holds
 * the build) with a 4 MiB semi-space. V8's default young generation grows to 128 MiB under a stream of requests,
 * most of the collector's peak RSS; 4 MiB kept its peak at 125-131 MiB for about 5 % more CPU, where 1 and 2 MiB
 * cost 15-30 % (bench/README.md).
 */
export function collectorLauncher(): Launcher {
  return deployed([COLLECTOR_NODE_OPTIONS]);
}

export const COLLECTOR_NODE_OPTIONS = "--max-semi-space-size=4";

/**
 * How the indexer is best run, as its container runs it (docker-compose.yml): compiled JavaScript, a 4 MiB
 * semi-space, and malloc set as for the shipper: the thread pool decompresses Kafka's zstd batches, each thread
 * with an arena of its own by default. Peak RSS 204-211 MiB against 269-280 with the TypeScript entry and Node's
 * defaults, at the same speed within the rounds' spread (bench/README.md).
 */
export function indexerLauncher(): Launcher {
  return deployed([INDEXER_NODE_OPTIONS], MALLOC_ENV);
}

export const INDEXER_NODE_OPTIONS = "--max-semi-space-size=4";

/**
 * How `lifeline rollout` runs once installed (bin/launch.js): compiled, with Node's defaults. Its own flags were
 * measured and not kept: a 4 MiB semi-space with a heap growing by half peaked at 210-221 MiB against 205-229
 * without, at 10,000 hosts in alternated runs (bench/README.md), and a command typed by hand would need to
 * re-execute itself to get them.
 */
export function controllerLauncher(): Launcher {
  return deployed([]);
}

/** Two malloc arenas instead of one per thread, and a fixed threshold of 256 KiB for malloc's own mappings. */
export const MALLOC_ENV: Record<string, string> = {
  MALLOC_ARENA_MAX: "2",
  MALLOC_MMAP_THRESHOLD_: "262144",
};

/** The compiled entry when built (the TypeScript one otherwise), with these flags and environment. */
function deployed(nodeArgs: string[], env?: Record<string, string>): Launcher {
  const compiled = compiledEntry();
  return {
    nodeArgs,
    ...(env ? { env } : {}),
    entry: compiled ?? lifelineEntry,
    compiled: compiled !== undefined,
  };
}

export interface Launcher {
  nodeArgs: string[];
  /** Environment to add (read by the C library at process start, so it cannot be set from within). */
  env?: Record<string, string>;
  entry: string;
  compiled: boolean;
}

function compiledEntry(): string | undefined {
  return [
    lifelineEntry.endsWith(".js") ? lifelineEntry : undefined,
    fileURLToPath(new URL("../dist/bin/lifeline.js", import.meta.url)),
  ].find((file): file is string => file !== undefined && existsSync(file));
}
