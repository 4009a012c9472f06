import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../bin/cli.ts";
import { runLifeline } from "../helpers/cli.ts";

/** Every command and sub-command path the program declares, e.g. ["rollout", "approve"]. */
function commandPaths(command: Command, prefix: string[] = []): string[][] {
  return command.commands.flatMap((sub) => {
    const path = [...prefix, sub.name()];
    return [path, ...commandPaths(sub, path)];
  });
}

const paths = commandPaths(buildProgram({ exitCode: 0 }, "0.0.0"));
const TOP = [
  "services",
  "shipper",
  "agent",
  "collector",
  "indexer",
  "rollout",
  "timeline",
  "validate",
  "doctor",
  "demo",
  "dashboards",
];

describe("lifeline command line", () => {
  it("declares every command and the sub-commands users type", () => {
    const names = paths.map((path) => path.join(" "));
    for (const name of [
      ...TOP,
      "shipper install",
      "agent keygen",
      "agent sign",
      "agent install",
      "indexer setup",
      "rollout approve",
      "rollout abort",
      "rollout pause",
      "rollout continue",
      "rollout resume",
      "rollout list",
      "rollout status",
      "demo stop",
      "dashboards export",
      "dashboards check",
      "dashboards install",
    ])
      expect(names).toContain(name);
  });

  it("--help lists every command, exit 0; no command prints it to stderr with exit 2", async () => {
    const result = await runLifeline(["--help"]);
    expect(result.code).toBe(0);
    for (const command of TOP) expect(result.stdout).toMatch(new RegExp(`^  ${command}\\b`, "m"));
    expect(result.stdout).toContain("Exit status: 0 success; 1 failure");
    const bare = await runLifeline([]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain("Usage: lifeline");
  });

  it("--version prints the package's version", async () => {
    const result = await runLifeline(["--version"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^lifeline \d+\.\d+\.\d+\n$/);
  });

  // Every command and sub-command, both ways of asking.
  it.each(paths.map((path) => [path.join(" "), path] as const))(
    "lifeline %s --help and lifeline help %s print its usage, exit 0",
    async (_name, path) => {
      for (const args of [
        [...path, "--help"],
        [...path.slice(0, -1), "help", path.at(-1) as string],
      ]) {
        const result = await runLifeline(args);
        expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(0);
        expect(result.stdout).toMatch(new RegExp(`^Usage: lifeline ${path.join(" ")}\\b`));
        expect(result.stdout).toContain("-h, --help");
      }
    },
  );

  it.each(paths.filter((path) => path[0] !== "help").map((path) => [path.join(" "), path] as const))(
    "lifeline %s with an unknown option exits 2 and says which",
    async (_name, path) => {
      const result = await runLifeline([...path, "--no-such-option"]);
      expect(result.code).toBe(2);
      // commander reports a missing required option first, where the command has one.
      expect(result.stderr).toMatch(/^error: (unknown option '--no-such-option'|required option)/);
    },
  );

  it("usage errors exit 2 and name what is wrong", async () => {
    const cases: Array<[string[], string]> = [
      [["frobnicate"], "unknown command 'frobnicate'"],
      [["services", "sideways"], "must be up, status or down"],
      [["dashboards", "nosuch"], "unknown command 'nosuch'"],
      [["agent", "keygen"], "required option '--out <dir>' not specified"],
      [
        [
          "agent",
          "sign",
          "--key",
          "k",
          "--key-id",
          "c",
          "--service",
          "api",
          "--host",
          "h",
          "--action",
          "reboot",
        ],
        "argument 'reboot' is invalid. Allowed choices are stop, start, restart, status",
      ],
      [
        ["agent", "sign", "--key", "k", "--key-id", "c", "--service", "api", "--action", "stop"],
        "--host <name> or --group <name> is needed",
      ],
      [["shipper"], "--config <file> is needed"],
      [["rollout"], "--plan <file> is needed"],
      [["rollout", "approve", "r-1"], "required option '--key <file>' not specified"],
      [["rollout", "list", "--since-hours", "-3"], "must be a positive number"],
      [["timeline"], "--rollout <id> or --trace <id> is needed"],
      [["validate"], "missing required argument 'file'"],
      [["dashboards", "install"], "required option '--kibana <url>' not specified"],
      [["agent", "keygen", "--out", "x", "--force", "--if-missing"], "cannot be used with option '--force'"],
    ];
    for (const [args, message] of cases) {
      const { LIFELINE_KIBANA_URL: _url, ...env } = process.env;
      const result = await runLifeline(args, env);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr, args.join(" ")).toContain(message);
    }
  });

  it("a failure exits 1 with the reason: an existing key kept, a missing file, a demo folder that is not one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeline-cli-"));
    expect((await runLifeline(["agent", "keygen", "--out", dir])).code).toBe(0);
    const again = await runLifeline(["agent", "keygen", "--out", dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("exists; --force replaces it");
    const stop = await runLifeline(["demo", "stop", join(dir, "not-a-demo")]);
    expect(stop.code).toBe(1);
    expect(stop.stderr).toMatch(/^lifeline demo stop: /m);
  });

  it("secrets and the topic prefix come from the environment or a file as well as the command line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeline-cli-"));
    expect((await runLifeline(["agent", "keygen", "--out", dir])).code).toBe(0);
    const signed = await runLifeline(
      ["agent", "sign", "--action", "stop", "--service", "api", "--host", "h1"],
      {
        ...process.env,
        LIFELINE_CONTROLLER_KEY_FILE: join(dir, "signing.key"),
        LIFELINE_CONTROLLER_KEY_ID: "from-env",
      },
    );
    expect(signed.code, signed.stderr).toBe(0);
    expect(JSON.parse(signed.stdout).keyId).toBe("from-env");
    const help = await runLifeline(["dashboards", "install", "--help"]);
    expect(help.stdout).toContain("--password-file <file>");
    expect(help.stdout).toContain("LIFELINE_KIBANA_PASSWORD");
    const rollout = await runLifeline(["rollout", "list", "--help"]);
    expect(rollout.stdout).toMatch(/--topic-prefix <prefix>[\s\S]*env: LIFELINE_TOPIC_PREFIX/);
  });
});
