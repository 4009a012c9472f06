import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FolderWatcher, globBase, matches, type WatchEvent } from "../../shipper/discovery.ts";

describe("shipper paths and globs", () => {
  it("POSIX: unchanged (a backslash is not a separator there)", () => {
    expect(globBase("/var/log/app/*.log", "linux")).toEqual({ dir: "/var/log/app", recursive: false });
    expect(globBase("/var/log/**/*.log", "linux")).toEqual({ dir: "/var/log", recursive: true });
    const matcher = { include: ["/var/log/*.log"], exclude: ["*.gz"] };
    expect(matches("/var/log/a.log", matcher, "linux")).toBe(true);
    expect(matches("/var/log/A.LOG", matcher, "linux")).toBe(false);
  });

  it("Windows: backslashes and drive letters, never the root of the machine", () => {
    expect(globBase("C:\\ProgramData\\App\\logs\\*.log", "win32")).toEqual({
      dir: "C:/ProgramData/App/logs",
      recursive: false,
    });
    expect(globBase("D:\\logs\\**\\*.log", "win32")).toEqual({ dir: "D:/logs", recursive: true });
    expect(globBase("C:\\*.log", "win32")).toEqual({ dir: "C:/", recursive: false });
  });

  it("Windows: include and exclude match win32 paths, case-insensitively (NTFS)", () => {
    const matcher = {
      include: ["C:\\logs\\*.log", "C:/other/**/*.txt"],
      exclude: ["*.gz", "C:\\logs\\debug-*"],
    };
    expect(matches("C:\\logs\\app.log", matcher, "win32")).toBe(true);
    expect(matches("c:\\Logs\\App.LOG", matcher, "win32")).toBe(true);
    expect(matches("C:\\other\\deep\\x.txt", matcher, "win32")).toBe(true);
    expect(matches("C:\\logs\\debug-1.log", matcher, "win32")).toBe(false);
    expect(matches("C:\\other\\old.txt.gz", { include: ["C:\\other\\*"], exclude: ["*.gz"] }, "win32")).toBe(
      false,
    );
    expect(matches("D:\\logs\\app.log", matcher, "win32")).toBe(false);
  });
});

describe("shipper folder watch (the real filesystem's events)", () => {
  /** Events as they come; `next` waits for the first one that matches. */
  function recorder() {
    const waiting: Array<{ test: (event: WatchEvent) => boolean; resolve: (event: WatchEvent) => void }> = [];
    const seen: WatchEvent[] = [];
    return {
      seen,
      onEvent: (event: WatchEvent) => {
        seen.push(event);
        for (const wait of [...waiting]) {
          if (!wait.test(event)) continue;
          waiting.splice(waiting.indexOf(wait), 1);
          wait.resolve(event);
        }
      },
      next: (test: (event: WatchEvent) => boolean) =>
        new Promise<WatchEvent>((resolve) => {
          const found = seen.find(test);
          if (found) resolve(found);
          else waiting.push({ test, resolve });
        }),
    };
  }

  it("names the file that changed and the names that came and went, one watch per folder", async () => {
    const root = mkdtempSync(join(tmpdir(), "lifeline-watch-"));
    const events = recorder();
    const errors: unknown[] = [];
    const watcher = new FolderWatcher(
      [join(root, "*.log"), `${root}//./app-*.log`], // one folder, spelled twice
      events.onEvent,
      (error) => errors.push(error),
    );
    try {
      expect(watcher.watched).toBe(1);
      const app = join(root, "app.log");
      writeFileSync(app, "");
      await events.next((event) => event.kind === "rename" && event.path === app);
      appendFileSync(app, "one line\n");
      await events.next((event) => event.kind === "change" && event.path === app);
      renameSync(app, join(root, "app.log.1"));
      await events.next((event) => event.kind === "rename" && event.path === join(root, "app.log.1"));
      expect(errors).toEqual([]);
    } finally {
      watcher.close();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("a folder missing at the start, or deleted and made again, is watched once a pass refreshes", async () => {
    const root = mkdtempSync(join(tmpdir(), "lifeline-watch-"));
    const dir = join(root, "later");
    const events = recorder();
    const watcher = new FolderWatcher([join(dir, "*.log")], events.onEvent, () => {});
    try {
      expect(watcher.watched).toBe(0);
      mkdirSync(dir);
      watcher.refresh();
      expect(watcher.watched).toBe(1);
      writeFileSync(join(dir, "a.log"), "a\n");
      await events.next((event) => event.path === join(dir, "a.log"));

      rmSync(dir, { recursive: true });
      // inotify's last word on a deleted folder: a rename naming the folder itself.
      await events.next((event) => event.kind === "rename" && event.path === join(dir, "later"));
      mkdirSync(dir);
      watcher.refresh();
      writeFileSync(join(dir, "b.log"), "b\n");
      await events.next((event) => event.path === join(dir, "b.log"));
    } finally {
      watcher.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
