import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { canonicalJson, signedCommandSchema, verifyCommandSignature } from "../../core/commands.ts";
import { runLifeline } from "../helpers/cli.ts";

const example = fileURLToPath(new URL("../../agent/agent.example.yaml", import.meta.url));

describe("lifeline agent keygen / sign / install", () => {
  it("keygen writes a key pair whose signatures verify", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeline-keys-"));
    expect((await runLifeline(["agent", "keygen", "--out", dir])).code).toBe(0);
    const signed = await runLifeline([
      "agent",
      "sign",
      "--key",
      join(dir, "signing.key"),
      "--key-id",
      "controller",
      "--action",
      "stop",
      "--service",
      "api",
      "--host",
      "web-1",
    ]);
    expect(signed.code).toBe(0);
    const command = signedCommandSchema.parse(JSON.parse(signed.stdout));
    expect(command.command).toMatchObject({ action: "stop", service: "api", target: { hosts: ["web-1"] } });
    expect(verifyCommandSignature(command, readFileSync(join(dir, "signing.pub"), "utf8"))).toBe(true);
    expect(canonicalJson(command.command)).not.toContain("exec");

    // A second keygen never replaces the key silently.
    const key = readFileSync(join(dir, "signing.key"), "utf8");
    const again = await runLifeline(["agent", "keygen", "--out", dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("exists; --force replaces it");
    expect((await runLifeline(["agent", "keygen", "--out", dir, "--if-missing"])).code).toBe(0);
    expect(readFileSync(join(dir, "signing.key"), "utf8")).toBe(key);
    expect((await runLifeline(["agent", "keygen", "--out", dir, "--force"])).code).toBe(0);
    expect(readFileSync(join(dir, "signing.key"), "utf8")).not.toBe(key);
  });

  it("install writes a systemd unit that keeps services alive across agent restarts", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "lifeline-unit-")), "lifeline-agent.service");
    expect(
      (await runLifeline(["agent", "install", "--config", example, "--platform", "linux", "--out", out]))
        .code,
    ).toBe(0);
    const unit = readFileSync(out, "utf8");
    expect(unit).toContain("KillMode=process");
    // The lean compiled launcher once `npm run build` made it, else the TypeScript entry.
    expect(unit).toMatch(
      /ExecStart=\S+node (--max-semi-space-size=1 --lite-mode \S+dist\/bin\/lifeline\.js|\S+bin\/lifeline\.ts) agent --config \S+agent\.example\.yaml/,
    );
  });

  it("install writes a WinSW definition for Windows", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "lifeline-winsw-")), "lifeline-agent.xml");
    expect(
      (await runLifeline(["agent", "install", "--config", example, "--platform", "windows", "--out", out]))
        .code,
    ).toBe(0);
    expect(readFileSync(out, "utf8")).toContain("<id>lifeline-agent</id>");
  });
});
