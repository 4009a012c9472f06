import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { canonicalJson, signedCommandSchema, verifyCommandSignature } from "../../core/commands.ts";
import { systemdUnit, winswDefinition } from "../../core/install.ts";
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

  it("install's systemd unit: the installed copy's own node, the lean agent, credentials from the env file, services kept alive", () => {
    const unit = systemdUnit({
      component: "agent",
      prefix: "/opt/lifeline",
      etc: "/etc/lifeline",
      user: "lifeline",
    });
    expect(unit).toContain(
      "ExecStart=/opt/lifeline/node/bin/node --max-semi-space-size=1 --lite-mode /opt/lifeline/app/bin/lifeline.js agent --config /etc/lifeline/agent.yaml",
    );
    expect(unit).toContain("EnvironmentFile=-/etc/lifeline/agent.env");
    expect(unit).toContain("User=lifeline");
    expect(unit).toContain("KillMode=process");
    const shipper = systemdUnit({
      component: "shipper",
      prefix: "/opt/lifeline",
      etc: "/etc/lifeline",
      user: "lifeline",
    });
    expect(shipper).not.toContain("KillMode=process");
    expect(shipper).toContain("Environment=MALLOC_ARENA_MAX=2");
    expect(shipper).toContain("--max-semi-space-size=2 /opt/lifeline/app/bin/lifeline.js shipper");
  });

  it("install's WinSW definition names files relative to its folder", () => {
    const xml = winswDefinition("agent");
    expect(xml).toContain("<id>lifeline-agent</id>");
    expect(xml).toContain("<executable>%BASE%\\node.exe</executable>");
    expect(xml).toContain('"%BASE%\\app\\bin\\lifeline.js" agent --config "%BASE%\\agent.yaml"');
  });

  it("install without --config says so and exits 2; --install is refused for Windows", async () => {
    const bare = await runLifeline(["agent", "install"]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain("required option '--config <file>' not specified");
    const windows = await runLifeline([
      "agent",
      "install",
      "--config",
      example,
      "--platform",
      "windows",
      "--install",
    ]);
    expect(windows.code).toBe(2);
    expect(windows.stderr).toContain("--install writes into a Linux system");
  });
});
