import { describe, expect, it } from "vitest";
import { type AgentConfig, agentConfigSchema } from "../../agent/config.ts";
import { CommandVerifier } from "../../agent/verifier.ts";
import {
  type Command,
  canonicalJson,
  generateSigningKeys,
  signCommand,
  verifyCommandSignature,
} from "../../core/commands.ts";

const keys = generateSigningKeys();
const now = new Date("2026-11-27T06:00:00Z");

function config(overrides: Partial<AgentConfig> = {}): AgentConfig {
  return agentConfigSchema.parse({
    host: { name: "web-1", groups: ["web"], labels: { zone: "a" } },
    stateDir: "/tmp/x",
    trustedKeys: [{ id: "ctl", publicKey: keys.publicKeyPem }],
    services: [
      { name: "api", command: ["/bin/true"], gracePeriodMs: 10_000, allowedActions: ["stop", "start"] },
    ],
    ...overrides,
  });
}

function command(overrides: Partial<Command> = {}): Command {
  return {
    id: "cmd-00000001",
    action: "stop",
    service: "api",
    target: { hosts: ["web-1"] },
    parameters: {},
    issuedAt: "2026-11-27T05:59:00Z",
    expiresAt: "2026-11-27T06:01:00Z",
    deadline: "2026-11-27T06:05:00Z",
    issuer: "test",
    ...overrides,
  };
}

describe("signed commands", () => {
  it("canonical JSON sorts keys at every level and drops undefined", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: undefined } })).toBe(
      '{"a":{"d":[2,{"y":2,"z":1}]},"b":1}',
    );
  });

  it("canonical JSON is byte for byte what signatures were made over before (keys by code unit, escapes, gaps)", () => {
    // Made by the definition before 2026-12-08 (Object.entries, filter, sort, map, join): a signature over these
    // bytes must keep verifying.
    const value = {
      id: "cmd-\u00e9\u4e2d-0001",
      action: "restart",
      service: 'api "quoted" \\ back',
      target: {
        labels: { zone: "a", Zone: "b", "\u00e9t\u00e9": "x", "10": "ten", "9": "nine" },
        hosts: ["web-2", "web-1"],
        groups: undefined,
      },
      parameters: { gracePeriodMs: 1500 },
      issuedAt: "2026-12-08T00:00:00.000Z",
      nested: [1, undefined, null, { b: [], a: {} }, "t\n\u0001"],
      traceparent: undefined,
      n: -0.5e-7,
    };
    expect(canonicalJson(value)).toBe(
      '{"action":"restart","id":"cmd-\u00e9\u4e2d-0001","issuedAt":"2026-12-08T00:00:00.000Z","n":-5e-8,"nested":[1,,null,{"a":{},"b":[]},"t\\n\\u0001"],"parameters":{"gracePeriodMs":1500},"service":"api \\"quoted\\" \\\\ back","target":{"hosts":["web-2","web-1"],"labels":{"10":"ten","9":"nine","Zone":"b","zone":"a","\u00e9t\u00e9":"x"}}}',
    );
  });

  it("a signature verifies, and any change to the command breaks it", () => {
    const signed = signCommand(command(), "ctl", keys.privateKeyPem);
    expect(verifyCommandSignature(signed, keys.publicKeyPem)).toBe(true);
    expect(
      verifyCommandSignature({ ...signed, command: { ...signed.command, service: "db" } }, keys.publicKeyPem),
    ).toBe(false);
    expect(verifyCommandSignature({ ...signed, signature: "AAAA" }, keys.publicKeyPem)).toBe(false);
  });
});

describe("command verifier", () => {
  const verify = (raw: unknown, seen: string[] = [], cfg = config()) =>
    new CommandVerifier(cfg, (id) => seen.includes(id)).verify(raw, now);
  const sign = (c: Command, keyId = "ctl", key = keys.privateKeyPem) => signCommand(c, keyId, key);

  it("accepts a signed, current command for a declared service and allowed action", () => {
    expect(verify(sign(command())).kind).toBe("accepted");
  });

  it.each([
    ["by host", { hosts: ["web-1"] }, true],
    ["by group", { groups: ["web"] }, true],
    ["by label", { labels: { zone: "a" } }, true],
    ["another host", { hosts: ["db-1"] }, false],
    ["another group", { groups: ["db"] }, false],
    ["another label value", { labels: { zone: "b" } }, false],
    ["no target at all", {}, false],
  ])("targets %s", (_, target, ours) => {
    expect(verify(sign(command({ target }))).kind === "not_for_us").toBe(!ours);
  });

  it.each([
    [
      "a forged signature",
      () => sign(command(), "ctl", generateSigningKeys().privateKeyPem),
      "bad_signature",
    ],
    ["an unknown key id", () => sign(command(), "other"), "unknown_key"],
    ["an expired command", () => sign(command({ expiresAt: "2026-11-27T05:59:59Z" })), "expired"],
    ["an undeclared service", () => sign(command({ service: "db" })), "unknown_service"],
    ["a disallowed action", () => sign(command({ action: "restart" })), "action_not_allowed"],
    [
      "a longer grace than the host allows",
      () => sign(command({ parameters: { gracePeriodMs: 20_000 } })),
      "parameter_not_allowed",
    ],
    [
      "a shell command smuggled in",
      () => ({ ...sign(command()), command: { ...command(), exec: "rm -rf /" } }),
      "malformed",
    ],
    ["garbage", () => ({ hello: "world" }), "malformed"],
  ])("rejects %s", (_, make, reason) => {
    const verdict = verify(make());
    expect(verdict.kind).toBe("rejected");
    expect(verdict.kind === "rejected" && verdict.reason).toBe(reason);
  });

  it("a command id seen before (journaled across restarts) is a duplicate", () => {
    expect(verify(sign(command()), ["cmd-00000001"]).kind).toBe("duplicate");
  });

  it("a command seen before stays a duplicate once expired: re-delivery reports what ran, not a rejection", () => {
    const late = sign(command({ expiresAt: "2026-11-27T05:59:59Z" }));
    expect(verify(late, ["cmd-00000001"]).kind).toBe("duplicate");
  });
});
