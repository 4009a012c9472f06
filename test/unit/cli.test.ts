import { describe, expect, it } from "vitest";
import { runLifeline } from "../helpers/cli.ts";

const COMMANDS = [
  "services",
  "shipper",
  "agent",
  "collector",
  "indexer",
  "rollout",
  "timeline",
  "dashboards",
  "validate",
  "demo",
];

describe("lifeline command line", () => {
  it("--help lists every command", async () => {
    const result = await runLifeline(["--help"]);
    expect(result.code).toBe(0);
    for (const command of COMMANDS) expect(result.stdout).toMatch(new RegExp(`^  ${command}\\s`, "m"));
  });

  it.each(COMMANDS)("lifeline %s --help prints its usage and options, exit 0", async (command) => {
    const result = await runLifeline([command, "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Usage: lifeline ${command}`));
  });

  it("an unknown command exits 2 and shows the help", async () => {
    const result = await runLifeline(["frobnicate"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown command "frobnicate"');
    expect(result.stderr).toContain("Usage: lifeline");
  });

  it("services --help documents the actions and the environment with defaults", async () => {
    const result = await runLifeline(["services", "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("up      fetch");
    expect(result.stdout).toMatch(/LIFELINE_KAFKA_VERSION\s+\[4\.4\.0\]/);
  });

  it("services with an unknown action exits 2", async () => {
    const result = await runLifeline(["services", "sideways"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown action "sideways"');
  });
});
