import { describe, expect, it } from "vitest";
import { globBase, matches } from "../../shipper/discovery.ts";

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
