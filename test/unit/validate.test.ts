import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { guessKind } from "../../bin/validate.ts";
import { runLifeline } from "../helpers/cli.ts";

const examples = [
  "agent/agent.example.yaml",
  "shipper/shipper.example.yaml",
  "indexer/indexer.example.yaml",
  "collector/collector.example.yaml",
  "controller/rollout.example.yaml",
  "controller/fleet.example.yaml",
];

describe("lifeline validate", () => {
  it("every commented example config in the repository is valid for its component", async () => {
    const result = await runLifeline(["validate", ...examples]);
    expect(result.code, result.stderr).toBe(0);
    for (const [file, kind] of [
      ["agent/agent.example.yaml", "agent"],
      ["shipper/shipper.example.yaml", "shipper"],
      ["indexer/indexer.example.yaml", "indexer"],
      ["collector/collector.example.yaml", "collector"],
      ["controller/rollout.example.yaml", "plan"],
      ["controller/fleet.example.yaml", "fleet"],
    ])
      expect(result.stdout).toContain(`${file}: valid ${kind} config`);
  });

  it("a misspelt key, a dependency cycle and an unknown kind fail with what is wrong, exit 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeline-validate-"));
    const agent = join(dir, "agent.yaml");
    writeFileSync(
      agent,
      readFileSync("agent/agent.example.yaml", "utf8").replace("gracePeriodMs", "gracePeriodMS"),
    );
    const plan = join(dir, "nightly.yaml");
    writeFileSync(
      plan,
      "name: x\naction: restart\ntargets: { groups: [a] }\nservices:\n  - { name: a, dependsOn: [b] }\n  - { name: b, dependsOn: [a] }\n",
    );
    const unknown = join(dir, "other.yaml");
    writeFileSync(unknown, "foo: 1\n");
    const result = await runLifeline(["validate", agent, plan, unknown]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('services.0.gracePeriodMS: unknown key (did you mean "gracePeriodMs"?)');
    expect(result.stderr).toContain(`${plan}: invalid plan config: dependency cycle: a → b → a`);
    expect(result.stderr).toContain(`${unknown}: cannot tell which component it configures`);
  });

  it("tells the component from the file name, else from its keys", () => {
    expect(guessKind("/etc/lifeline/agent.yaml", {})).toBe("agent");
    expect(guessKind("nightly.yaml", { action: "restart", services: [] })).toBe("plan");
    expect(guessKind("x.yaml", { inputs: [] })).toBe("shipper");
    expect(guessKind("x.yaml", { hosts: [] })).toBe("fleet");
    expect(guessKind("x.yaml", { listen: {} })).toBe("collector");
    expect(guessKind("x.yaml", { namespace: "prod" })).toBe("indexer");
    expect(guessKind("x.yaml", "just text")).toBeUndefined();
  });
});
