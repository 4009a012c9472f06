import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { z } from "zod";

/**
 * A control command, as the controller publishes it and the agents verify it. It names an action on a service the
 * host declares; it never carries a command line. Signed with Ed25519 over its canonical JSON (keys sorted).
 */
export const commandSchema = z.strictObject({
  id: z.string().min(8).max(128),
  action: z.enum(["stop", "start", "restart", "status"]),
  service: z.string().min(1).max(128),
  target: z.strictObject({
    hosts: z.array(z.string()).optional(),
    groups: z.array(z.string()).optional(),
    labels: z.record(z.string(), z.string()).optional(),
  }),
  /** Within what the host's config allows: a shorter grace, never a longer one. */
  parameters: z.strictObject({ gracePeriodMs: z.number().int().positive().optional() }).default({}),
  issuedAt: z.iso.datetime(),
  /** Not delivered by then: rejected as expired. */
  expiresAt: z.iso.datetime(),
  /** Not finished by then: reported as failed (timed out). */
  deadline: z.iso.datetime(),
  issuer: z.string().min(1),
  rolloutId: z.string().optional(),
  traceparent: z.string().optional(),
});
export type Command = z.infer<typeof commandSchema>;

export const signedCommandSchema = z.strictObject({
  command: commandSchema,
  keyId: z.string().min(1),
  /** base64 Ed25519 signature of canonicalJson(command). */
  signature: z.string().min(1),
});
export type SignedCommand = z.infer<typeof signedCommandSchema>;

/**
 * JSON with object keys sorted at every level: the same bytes on every machine, so a signature can be checked.
 * Keys whose value is undefined are left out, as JSON.stringify leaves them out. Written with one sorted key list
 * per object and no intermediate arrays: the controller makes one per command and every agent one per command it
 * verifies (entries, filter, sort, map and join were a seventh of a 10,000-step rollout's allocations).
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) {
    let json = "[";
    for (let i = 0; i < value.length; i++) {
      if (i > 0) json += ",";
      // What Array#join writes for an element JSON has no text for (undefined, a function): nothing.
      json += canonicalJson(value[i]) ?? "";
    }
    return `${json}]`;
  }
  if (value && typeof value === "object") {
    const object = value as Record<string, unknown>;
    const keys = Object.keys(object).sort(byCodeUnits);
    let json = "{";
    let first = true;
    for (const key of keys) {
      const member = object[key];
      if (member === undefined) continue;
      json += `${first ? "" : ","}${JSON.stringify(key)}:${canonicalJson(member)}`;
      first = false;
    }
    return `${json}}`;
  }
  return JSON.stringify(value);
}

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function generateSigningKeys(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

export function signCommand(
  command: Command,
  keyId: string,
  privateKeyPem: string | KeyObject,
): SignedCommand {
  const key = typeof privateKeyPem === "string" ? createPrivateKey(privateKeyPem) : privateKeyPem;
  const signature = sign(null, Buffer.from(canonicalJson(command)), key).toString("base64");
  return { command, keyId, signature };
}

export function verifyCommandSignature(signed: SignedCommand, publicKeyPem: string | KeyObject): boolean {
  const key = typeof publicKeyPem === "string" ? createPublicKey(publicKeyPem) : publicKeyPem;
  try {
    return verify(
      null,
      Buffer.from(canonicalJson(signed.command)),
      key,
      Buffer.from(signed.signature, "base64"),
    );
  } catch {
    return false;
  }
}

/** Any other signed statement (a rollout approval): the payload, who signed, and the signature over its canonical JSON. */
export interface SignedStatement<T> {
  payload: T;
  keyId: string;
  signature: string;
}

export function signStatement<T>(payload: T, keyId: string, privateKeyPem: string): SignedStatement<T> {
  const signature = sign(null, Buffer.from(canonicalJson(payload)), createPrivateKey(privateKeyPem)).toString(
    "base64",
  );
  return { payload, keyId, signature };
}

export function verifyStatement(statement: SignedStatement<unknown>, publicKeyPem: string): boolean {
  try {
    return verify(
      null,
      Buffer.from(canonicalJson(statement.payload)),
      createPublicKey(publicKeyPem),
      Buffer.from(statement.signature, "base64"),
    );
  } catch {
    return false;
  }
}
