import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CommandLog } from "../../agent/command-log.ts";
import { Journal } from "../../agent/journal.ts";

const lines = (path: string) => readFileSync(path, "utf8").split("\n").filter(Boolean).length;

describe("command log: bounded, and replays refused across restarts", () => {
  it("compacts to the ids whose commands have not expired (plus the margin); unfinished ones are kept", () => {
    const path = join(mkdtempSync(join(tmpdir(), "command-log-")), "commands.ndjson");
    let now = Date.parse("2026-12-05T10:00:00Z");
    const log = new CommandLog(path, { minLinesToCompact: 100, now: () => now });
    const at = new Date(now).toISOString();
    for (let i = 0; i < 3_000; i++) {
      now += 1_000;
      const expiresAt = new Date(now + 60_000).toISOString();
      log.append({ id: `c${i}`, state: "accepted", service: "api", action: "status", expiresAt, at });
      if (i !== 5)
        log.append({ id: `c${i}`, state: "done", service: "api", action: "status", outcome: "success", at });
    }
    // Expired for more than the margin: forgotten; recent ones and the unfinished c5: kept.
    const horizon = (60_000 + 600_000) / 1_000;
    expect(log.has("c5")).toBe(true);
    expect(log.has("c100")).toBe(false);
    expect(log.has("c2999")).toBe(true);
    expect(log.has(`c${2_999 - horizon + 10}`)).toBe(true);
    expect(log.size).toBeLessThanOrEqual(2 * horizon + 2);
    expect(lines(path)).toBeLessThanOrEqual(2 * (2 * horizon + 2));
    log.close();
    // After a restart: the same ids are known; the done record kept what the accepted one said.
    const again = new CommandLog(path, { minLinesToCompact: 100, now: () => now });
    expect(again.has("c2999")).toBe(true);
    expect(again.get("c2999")).toMatchObject({
      state: "done",
      outcome: "success",
      expiresAt: expect.any(String),
    });
    expect(again.unfinished().map((r) => r.id)).toEqual(["c5"]);
    again.close();
  });

  it("a torn last line (a crash mid-write) is ignored, the rest read", () => {
    const path = join(mkdtempSync(join(tmpdir(), "command-log-")), "commands.ndjson");
    writeFileSync(
      path,
      `${JSON.stringify({ id: "a", state: "done", service: "s", action: "stop", at: "x" })}\n{"id":"b","st`,
    );
    const log = new CommandLog(path);
    expect(log.has("a")).toBe(true);
    expect(log.has("b")).toBe(false);
    log.close();
  });
});

describe("lifecycle journal rotation", () => {
  it("renames at maxBytes, keeps `keep` generations, loses no entry that is kept", () => {
    const dir = mkdtempSync(join(tmpdir(), "journal-"));
    const path = join(dir, "journal.ndjson");
    const journal = new Journal(path, { maxBytes: 10_000, keep: 2 });
    for (let i = 0; i < 1_000; i++) journal.append({ i, pad: "x".repeat(50) });
    journal.close();
    const kept = [`${path}.2`, `${path}.1`, path].flatMap((file) =>
      readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as { i: number }).i),
    );
    // Consecutive, ending with the last entry, and bounded by (keep + 1) * maxBytes.
    expect(kept.at(-1)).toBe(999);
    expect(kept).toEqual(kept.map((_, k) => (kept[0] as number) + k));
    for (const file of [`${path}.2`, `${path}.1`, path])
      expect(statSync(file).size).toBeLessThanOrEqual(10_000);
    expect(() => statSync(`${path}.3`)).toThrow();
  });
});
