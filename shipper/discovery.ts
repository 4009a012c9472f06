import { glob, stat } from "node:fs/promises";
import { matchesGlob } from "node:path";
import { type FSWatcher, watch } from "chokidar";

/** The folder a glob starts in: everything before its first segment with a wildcard. */
export function globBase(pattern: string): { dir: string; recursive: boolean } {
  const segments = pattern.split("/");
  const firstWild = segments.findIndex((segment) => /[*?[{]/.test(segment));
  const dir = firstWild === -1 ? segments.slice(0, -1).join("/") : segments.slice(0, firstWild).join("/");
  return { dir: dir || "/", recursive: pattern.includes("**") };
}

export interface PathMatcher {
  include: string[];
  exclude: string[];
}

export function matches(path: string, matcher: PathMatcher): boolean {
  return (
    matcher.include.some((pattern) => matchesGlob(path, pattern)) &&
    !matcher.exclude.some(
      (pattern) => matchesGlob(path, pattern) || matchesGlob(path.split("/").pop() ?? "", pattern),
    )
  );
}

/** Lists the regular files the patterns match now. */
export async function listMatching(matcher: PathMatcher): Promise<string[]> {
  const found = new Set<string>();
  for (const pattern of matcher.include) {
    for await (const path of glob(pattern)) {
      if (found.has(path) || !matches(path, matcher)) continue;
      const info = await stat(path).catch(() => undefined);
      if (info?.isFile()) found.add(path);
    }
  }
  return [...found];
}

/**
 * Watch events make new files and new lines show up at once; the caller's periodic reconcile pass makes sure
 * a missed event (overflowing inotify queue, network filesystem) never strands a file.
 */
export function watchPatterns(
  patterns: string[],
  onEvent: (kind: "add" | "change" | "unlink", path: string) => void,
  onError: (error: unknown) => void,
): FSWatcher {
  const bases = patterns.map(globBase);
  const watcher = watch(
    bases.map((base) => base.dir),
    {
      ignoreInitial: true,
      persistent: true,
      depth: bases.some((base) => base.recursive) ? 32 : 0,
      alwaysStat: false,
      atomic: false,
    },
  );
  watcher.on("add", (path) => onEvent("add", path));
  watcher.on("change", (path) => onEvent("change", path));
  watcher.on("unlink", (path) => onEvent("unlink", path));
  watcher.on("error", onError);
  return watcher;
}
