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
 * the build) with an 8 MiB semi-space. V8's default young generation grows to 128 MiB under a stream of requests,
 * most of the collector's peak RSS. Since a request's documents no longer stay alive while it is converted, 8 MiB
 * costs 3-10 % less CPU than 4 for 7-13 MiB more peak RSS (132-141 MiB); 16 MiB reached 148-153 (bench/tuning.md).
 */
export function collectorLauncher(): Launcher {
  return deployed([COLLECTOR_NODE_OPTIONS]);
}

export const COLLECTOR_NODE_OPTIONS = "--max-semi-space-size=8";

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
 * How `lifeline rollout` is best run: a 4 MiB semi-space and a heap that grows by half, not by V8's default
 * factor. A rollout's live data is small (56 MiB two seconds into 10,000 hosts, in a heap snapshot); what V8 lets
 * the heap grow to under a wave's allocations is most of its peak: 206-232 MiB with these against 353-381 without,
 * for about 0.5 CPU s more at 10,000 hosts (bench/README.md). The CLI is started by hand, so it re-executes itself
 * with them (relaunchTuned).
 */
export function controllerLauncher(): Launcher {
  return deployed(CONTROLLER_NODE_ARGS);
}

export const CONTROLLER_NODE_ARGS = ["--max-semi-space-size=4", "--heap-growing-percent=50"];

/** LIFELINE_RELAUNCH=0: never relaunch; a relaunched process finds "done" there. */
const RELAUNCH_ENV = "LIFELINE_RELAUNCH";

/**
 * Replaces this process (same pid, arguments, standard streams and exit status) with the same entry under
 * `launcher`'s Node flags and environment, which V8 and the C library read only when a process starts. It returns,
 * and the caller runs as it is, when the flags are already there, when it already relaunched or LIFELINE_RELAUNCH=0
 * says not to, or where Node has no execve (Windows). Flags given to node by hand come after the launcher's, so
 * they win. The entry is the one running, never a build that may be older than the sources.
 */
export function relaunchTuned(launcher: Launcher): void {
  const script = process.argv[1];
  if (process.env[RELAUNCH_ENV] !== undefined || !process.execve || script === undefined) return;
  if (launcher.nodeArgs.every((flag) => process.execArgv.includes(flag))) return;
  process.execve(
    process.execPath,
    [process.execPath, ...launcher.nodeArgs, ...process.execArgv, script, ...process.argv.slice(2)],
    { ...process.env, ...launcher.env, [RELAUNCH_ENV]: "done" },
  );
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
