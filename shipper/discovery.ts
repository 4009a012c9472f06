import { type FSWatcher, statSync, watch } from "node:fs";
import { glob } from "node:fs/promises";
import { basename, join, normalize, posix } from "node:path";
import { type FileStat, statFileSync } from "./tail/file-identity.ts";

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

/** Lists the regular files the patterns match now, each with what a stat of it said. */
export async function listMatching(
  matcher: PathMatcher,
  platform: NodeJS.Platform = process.platform,
): Promise<Map<string, FileStat>> {
  const found = new Map<string, FileStat>();
  for (const pattern of matcher.include) {
    for await (const path of glob(slashes(pattern, platform))) {
      if (found.has(path) || !matches(path, matcher, platform)) continue;
      const info = statFileSync(path, platform);
      if (info?.isFile()) found.set(path, info);
    }
  }
  return found;
}

/** What a folder's watch said: a file's content changed, or a name appeared or went (`path` unknown: anything). */
export type WatchEvent = { kind: "change" | "rename"; path: string | undefined; dir: string };

/**
 * One watch per folder a pattern starts in (inotify on Linux, ReadDirectoryChangesW on Windows), recursive for
 * `**`. An event costs a path join and the caller's lookup: no stat, no per-file watch (a thousand files written
 * ten times a second are ten thousand events a second). Events make new lines and files show up at once; the
 * caller's periodic reconcile pass makes sure a missed event (overflowing inotify queue, network filesystem,
 * a folder made after the start) never strands a file, and calls `refresh` to watch folders that appeared.
 */
export class FolderWatcher {
  private readonly watching = new Map<string, { watcher: FSWatcher; identity: string }>();
  /** Folders whose watch reported the folder itself renamed or deleted: watched afresh by the next refresh. */
  private readonly stale = new Set<string>();
  private readonly folders: Array<{ dir: string; recursive: boolean }>;
  private readonly onEvent: (event: WatchEvent) => void;
  private readonly onError: (error: unknown, dir: string) => void;
  private closed = false;

  constructor(
    patterns: string[],
    onEvent: (event: WatchEvent) => void,
    onError: (error: unknown, dir: string) => void,
  ) {
    this.onEvent = onEvent;
    this.onError = onError;
    const byDir = new Map<string, boolean>();
    for (const pattern of patterns) {
      const base = globBase(pattern);
      // As paths are listed: `./logs` is `logs`, `/var//log/` is `/var/log/` (one watch for both spellings).
      const dir = normalize(base.dir);
      byDir.set(dir, (byDir.get(dir) ?? false) || base.recursive);
    }
    this.folders = [...byDir].map(([dir, recursive]) => ({ dir, recursive }));
    this.refresh();
  }

  /** Folders watched now (one missing at the start is watched once it exists). */
  get watched(): number {
    return this.watching.size;
  }

  /**
   * Watches the folders not watched yet: missing before, or lost (an error; deleted or replaced, which inotify
   * reports once as a rename of the folder itself and then never again).
   */
  refresh(): void {
    if (this.closed) return;
    for (const { dir, recursive } of this.folders) {
      const info = statSync(dir, { throwIfNoEntry: false });
      // A folder made again may get the same inode number; its birth time tells it apart where there is one.
      const identity = info ? `${info.ino}:${info.birthtimeMs}` : undefined;
      const current = this.watching.get(dir);
      if (current && current.identity === identity && !this.stale.has(dir)) continue;
      current?.watcher.close();
      this.watching.delete(dir);
      this.stale.delete(dir);
      if (identity === undefined) continue;
      let watcher: FSWatcher;
      try {
        watcher = watch(dir, { persistent: true, recursive, encoding: "utf8" });
      } catch (error) {
        // Not there yet (ENOENT) is ordinary: the reconcile pass asks again.
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") this.onError(error, dir);
        continue;
      }
      const name = basename(dir);
      // The path as the glob lists it: on POSIX the folder, a slash and the name the kernel gave (an event per write
      // per file: no normalising join); on Windows a join turns the folder's slashes into backslashes.
      const prefix = process.platform === "win32" ? undefined : dir.endsWith("/") ? dir : `${dir}/`;
      watcher.on("change", (eventType: string, filename: string | null) => {
        // inotify names the folder itself when it goes (a file of the same name inside costs a new watch, no more).
        if (eventType === "rename" && filename === name) this.stale.add(dir);
        this.onEvent({
          kind: eventType === "change" ? "change" : "rename",
          path: filename ? (prefix === undefined ? join(dir, filename) : prefix + filename) : undefined,
          dir,
        });
      });
      watcher.on("error", (error) => {
        watcher.close();
        if (this.watching.get(dir)?.watcher === watcher) this.watching.delete(dir);
        this.onError(error, dir);
      });
      this.watching.set(dir, { watcher, identity });
    }
  }

  close(): void {
    this.closed = true;
    for (const { watcher } of this.watching.values()) watcher.close();
    this.watching.clear();
  }
}
