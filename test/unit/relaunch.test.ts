import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CONTROLLER_NODE_ARGS } from "../../core/entry.ts";

const entry = new URL("../../core/entry.ts", import.meta.url).href;
const dir = mkdtempSync(join(tmpdir(), "relaunch-"));
const script = join(dir, "probe.ts");
// A real process that relaunches itself as the controller's CLI does, then says what it runs with and exits 3.
writeFileSync(
  script,
  `import { controllerLauncher, relaunchTuned } from ${JSON.stringify(entry)};
relaunchTuned(controllerLauncher());
console.log(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, args: process.argv.slice(2), marker: process.env.LIFELINE_RELAUNCH ?? null }));
process.exitCode = 3;
`,
);

interface Probe {
  childPid: number | undefined;
  code: number | null;
  seen: { pid: number; execArgv: string[]; args: string[]; marker: string | null };
}

function probe(nodeArgs: string[], env: NodeJS.ProcessEnv = {}): Promise<Probe> {
  const { LIFELINE_RELAUNCH: _, ...clean } = process.env;
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [...nodeArgs, script, "rollout", "--plan", "a plan.yaml"],
      { env: { ...clean, ...env } },
      (error, stdout) => {
        const line = stdout.trim();
        if (!line) return reject(error ?? new Error("no output"));
        resolve({ childPid: child.pid, code: child.exitCode, seen: JSON.parse(line) });
      },
    );
  });
}

describe.skipIf(process.platform === "win32")("relaunchTuned (the controller CLI's Node flags)", () => {
  it("replaces the process once with the controller's flags, keeping its pid, arguments and exit status", async () => {
    const { childPid, code, seen } = await probe([]);
    expect(seen.pid).toBe(childPid);
    expect(seen.execArgv).toEqual(CONTROLLER_NODE_ARGS);
    expect(CONTROLLER_NODE_ARGS.length).toBeGreaterThan(0);
    expect(seen.args).toEqual(["rollout", "--plan", "a plan.yaml"]);
    expect(seen.marker).toBe("done");
    expect(code).toBe(3);
  });

  it("puts flags given by hand after its own, so they win", async () => {
    const { seen } = await probe(["--max-semi-space-size=8"]);
    expect(seen.execArgv).toEqual([...CONTROLLER_NODE_ARGS, "--max-semi-space-size=8"]);
  });

  it("does not relaunch when the flags are already there, or when LIFELINE_RELAUNCH=0 says not to", async () => {
    const given = await probe([...CONTROLLER_NODE_ARGS].reverse());
    expect(given.seen.marker).toBeNull();
    expect(given.seen.execArgv).toEqual([...CONTROLLER_NODE_ARGS].reverse());
    const refused = await probe([], { LIFELINE_RELAUNCH: "0" });
    expect(refused.seen.execArgv).toEqual([]);
    expect(refused.seen.marker).toBe("0");
  });
});
