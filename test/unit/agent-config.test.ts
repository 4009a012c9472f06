import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadAgentConfig } from "../../agent/config.ts";

describe("agent config", () => {
  it("the documented example is valid", () => {
    const config = loadAgentConfig(
      fileURLToPath(new URL("../../agent/agent.example.yaml", import.meta.url)),
      {},
    );
    expect(config.services.map((s) => s.name)).toEqual(["api", "worker", "cache", "billing"]);
    expect(config.services[1]?.minUptimeMs).toBe(2000);
    expect(config.services[2]).toMatchObject({ driver: "systemd", unit: "cache.service" });
    expect(config.services[3]).toMatchObject({
      driver: "windows-service",
      serviceName: "BillingService",
      stopDependents: false,
      suspendRecovery: true,
    });
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

  it("a grace period or probe timeout no timer can hold is refused, naming the field", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const { generateSigningKeys } = await import("../../core/commands.ts");
    const file = join(mkdtempSync(join(tmpdir(), "lifeline-agent-config-")), "agent.yaml");
    const key = JSON.stringify(generateSigningKeys().publicKeyPem);
    // 2^31 ms: Node's setTimeout would fire after 1 ms, so the stop would escalate at once, "after" its grace.
    writeFileSync(
      file,
      `stateDir: /x\ntrustedKeys: [{ id: k, publicKey: ${key} }]\nservices: [{ name: a, command: [/bin/true], gracePeriodMs: 2147483648 }]\n`,
    );
    expect(() => loadAgentConfig(file, {})).toThrowError(/services\.0\.gracePeriodMs: at most 2147483647 ms/);
    writeFileSync(
      file,
      `stateDir: /x\ntrustedKeys: [{ id: k, publicKey: ${key} }]\nservices: [{ name: a, command: [/bin/true], health: { tcp: { port: 80 }, timeoutMs: 2147483648 } }]\n`,
    );
    expect(() => loadAgentConfig(file, {})).toThrowError(
      /services\.0\.health\.timeoutMs: at most 2147483647 ms/,
    );
  });

  it("a trusted key can be a PEM file; an unreadable or non-Ed25519 file is refused, naming the field", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const { generateSigningKeys } = await import("../../core/commands.ts");
    const dir = mkdtempSync(join(tmpdir(), "lifeline-agent-config-"));
    const keys = generateSigningKeys();
    writeFileSync(join(dir, "signing.pub"), keys.publicKeyPem);
    writeFileSync(join(dir, "not-a-key.pub"), "hello");
    const config = (keyFile: string) => {
      const file = join(dir, "agent.yaml");
      writeFileSync(
        file,
        `stateDir: /x\ntrustedKeys: [{ id: k, publicKeyFile: '${keyFile}' }]\nservices: [{ name: a, command: [/bin/true] }]\n`,
      );
      return () => loadAgentConfig(file, {});
    };
    expect(config(join(dir, "signing.pub"))().trustedKeys).toEqual([
      { id: "k", publicKey: keys.publicKeyPem },
    ]);
    expect(config(join(dir, "missing.pub"))).toThrowError(
      "trustedKeys.0.publicKeyFile: cannot read it: ENOENT",
    );
    expect(config(join(dir, "not-a-key.pub"))).toThrowError(
      "trustedKeys.0.publicKeyFile: must be an Ed25519 public key",
    );
  });
});
