import { glob, stat } from "node:fs/promises";
import { posix } from "node:path";
import { type FSWatcher, watch } from "chokidar";

/**
 * Paths and patterns as globs see them. On Windows a backslash is a separator (not an escape) and a drive letter
 * starts a path, `C:\logs\*.log` is `C:/logs/*.log`; and NTFS names are case-insensitive, so matching compares
 * lower case. Elsewhere nothing changes.
 */
export function slashes(path: string, platform: NodeJS.Platform = process.platform): string {
  return platform === "win32" ? path.replaceAll("\\", "/") : path;
}

function globForm(path: string, platform: NodeJS.Platform): string {
  return platform === "win32" ? slashes(path, platform).toLowerCase() : path;
}

/** The folder a glob starts in: everything before its first segment with a wildcard. */
export function globBase(
  pattern: string,
  platform: NodeJS.Platform = process.platform,
): { dir: string; recursive: boolean } {
  const segments = slashes(pattern, platform).split("/");
  const firstWild = segments.findIndex((segment) => /[*?[{]/.test(segment));
  let dir = firstWild === -1 ? segments.slice(0, -1).join("/") : segments.slice(0, firstWild).join("/");
  // A drive's root is "C:/", not "C:" (the current folder on that drive).
  if (platform === "win32" && /^[A-Za-z]:$/.test(dir)) dir = `${dir}/`;
  return { dir: dir || "/", recursive: pattern.includes("**") };
}

export interface PathMatcher {
  include: string[];
  exclude: string[];
}

/** Whether a path is included and not excluded; an exclude also matches the file's name alone (`*.gz`). */
export function matches(
  path: string,
  matcher: PathMatcher,
  platform: NodeJS.Platform = process.platform,
): boolean {
  const form = globForm(path, platform);
  const name = form.split("/").pop() ?? "";
  const match = (pattern: string) => posix.matchesGlob(form, globForm(pattern, platform));
  return (
    matcher.include.some(match) &&
    !matcher.exclude.some((pattern) => match(pattern) || posix.matchesGlob(name, globForm(pattern, platform)))
  );
}

/** Lists the regular files the patterns match now. */
export async function listMatching(
  matcher: PathMatcher,
  platform: NodeJS.Platform = process.platform,
): Promise<string[]> {
  const found = new Set<string>();
  for (const pattern of matcher.include) {
    for await (const path of glob(slashes(pattern, platform))) {
      if (found.has(path) || !matches(path, matcher, platform)) continue;
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
  const bases = patterns.map((pattern) => globBase(pattern));
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
