import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadAgentConfig } from "../../agent/config.ts";

describe("agent config", () => {
  it("the documented example is valid", () => {
    const config = loadAgentConfig(
      fileURLToPath(new URL("../../agent/agent.example.yaml", import.meta.url)),
      {},
    );
    expect(config.services.map((s) => s.name)).toEqual(["api"]);
    expect(config.services[0]?.health?.failureThreshold).toBe(40);
    expect(config.host.groups).toEqual(["web", "eu-west"]);
  });
});

describe("agent config errors", () => {
  it("a trusted key that is not an Ed25519 public key is refused, naming the key", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const file = join(mkdtempSync(join(tmpdir(), "lifeline-agent-config-")), "agent.yaml");
    writeFileSync(
      file,
      "stateDir: /x\ntrustedKeys: [{ id: k, publicKey: 'not a key' }]\nservices: [{ name: a, command: [/bin/true] }]\n",
    );
    expect(() => loadAgentConfig(file, {})).toThrowError(
      "trustedKeys.0.publicKey: must be an Ed25519 public key",
    );
  });
});
