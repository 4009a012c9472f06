import { describe, expect, it } from "vitest";
import { compileMultiline, type JoinedRecord, MultilineJoiner } from "../../shipper/tail/multiline.ts";

function join(
  preset: string | undefined,
  lines: string[],
  overrides: Record<string, unknown> = {},
): string[] {
  const records: JoinedRecord[] = [];
  const rule = compileMultiline({
    preset,
    negate: false,
    maxLines: 500,
    maxBytes: 1 << 20,
    timeoutMs: 1_000,
    ...overrides,
  });
  const joiner = new MultilineJoiner(rule, (record) => records.push(record));
  let offset = 0;
  for (const line of lines) {
    if (line === "") joiner.pushBlank(offset + 1, 0);
    else joiner.push(line, line.length, offset, offset + line.length + 1, new Set(), 0);
    offset += line.length + 1;
  }
  joiner.flush();
  return records.map((record) => record.lines.join("\n"));
}

describe("multiline presets", () => {
  it("java: exception, frames, causes, suppressed", () => {
    const trace = [
      "2026-11-27 ERROR failed",
      "java.lang.RuntimeException: outer",
      "\tat a.B.c(B.java:1)",
      "Caused by: java.io.IOException: inner",
      "\t... 5 more",
      "\tSuppressed: x.Y",
    ];
    expect(join("java", [...trace, "2026-11-27 INFO ok"])).toEqual([trace.join("\n"), "2026-11-27 INFO ok"]);
  });

  it("dotnet: inner exception markers", () => {
    const trace = [
      "fail: request",
      "System.InvalidOperationException: bad",
      " ---> System.ArgumentException: worse",
      "   at App.Run() in /src/App.cs:line 3",
      "   --- End of inner exception stack trace ---",
    ];
    expect(join("dotnet", [...trace, "info: next"])).toEqual([trace.join("\n"), "info: next"]);
  });

  it("go: a panic with its goroutine dump and blank lines", () => {
    const panic = [
      "panic: runtime error: index out of range",
      "",
      "goroutine 1 [running]:",
      "main.main()",
      "\t/src/main.go:12 +0x1d",
      "exit status 2",
    ];
    expect(join("go", [...panic, "2026/11/27 next line"])).toEqual([
      panic.join("\n"),
      "2026/11/27 next line",
    ]);
  });

  it("python: a chained traceback ending with the exception line", () => {
    const traceback = [
      "ERROR:app:crash",
      "Traceback (most recent call last):",
      '  File "app.py", line 3, in <module>',
      "    main()",
      "KeyError: 'x'",
      "",
      "During handling of the above exception, another exception occurred:",
      "Traceback (most recent call last):",
      '  File "app.py", line 5, in <module>',
      "ValueError: bad",
    ];
    expect(join("python", [...traceback, "INFO:app:next"])).toEqual([traceback.join("\n"), "INFO:app:next"]);
  });

  it("node: stack frames and a cause", () => {
    const error = [
      "Error: boom",
      "    at f (/app/a.js:1:2)",
      "  [cause]: Error: root",
      "    at g (/app/b.js:3:4)",
    ];
    expect(join("node", ["server listening", ...error, "next"])).toEqual([
      "server listening",
      error.join("\n"),
      "next",
    ]);
  });

  it("start pattern with negate=false: a line matching start begins a record", () => {
    expect(join(undefined, ["[1] a", "b", "[2] c", "d"], { start: "^\\[\\d+\\]" })).toEqual([
      "[1] a\nb",
      "[2] c\nd",
    ]);
  });

  it("maxLines caps a record and flags it", () => {
    const records: JoinedRecord[] = [];
    const rule = compileMultiline({
      preset: "java",
      negate: false,
      maxLines: 3,
      maxBytes: 1 << 20,
      timeoutMs: 1_000,
    });
    const joiner = new MultilineJoiner(rule, (record) => records.push(record));
    for (const [i, line] of ["E", "\tat 1", "\tat 2", "\tat 3", "\tat 4"].entries())
      joiner.push(line, line.length, i * 10, i * 10 + 6, new Set(), 0);
    joiner.flush();
    expect(records).toHaveLength(1);
    expect(records[0]?.lines).toEqual(["E", "\tat 1", "\tat 2"]);
    expect(records[0]?.flags.has("multiline_truncated")).toBe(true);
    expect(records[0]?.endOffset).toBe(46);
  });

  it("the timeout completes a record, but not while a line is half-written", () => {
    const records: JoinedRecord[] = [];
    const rule = compileMultiline({
      preset: "java",
      negate: false,
      maxLines: 10,
      maxBytes: 1 << 20,
      timeoutMs: 100,
    });
    const joiner = new MultilineJoiner(rule, (record) => records.push(record));
    joiner.push("E", 1, 0, 2, new Set(), 1_000);
    joiner.tick(1_500, true);
    expect(records).toHaveLength(0);
    joiner.tick(1_500, false);
    expect(records).toHaveLength(1);
  });
});
