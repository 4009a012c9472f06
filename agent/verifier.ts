import { createPublicKey, type KeyObject } from "node:crypto";
import {
  type Command,
  type SignedCommand,
  signedCommandSchema,
  verifyCommandSignature,
} from "../core/commands.ts";
import type { AgentConfig, ServiceConfig } from "./config.ts";

export type Verdict =
  | { kind: "accepted"; command: Command; service: ServiceConfig }
  | { kind: "not_for_us" }
  | { kind: "duplicate"; command: Command }
  | { kind: "rejected"; reason: RejectReason; detail: string; command?: Command };

export type RejectReason =
  | "malformed"
  | "unknown_key"
  | "bad_signature"
  | "expired"
  | "unknown_service"
  | "action_not_allowed"
  | "parameter_not_allowed";

/**
 * Everything a command must pass before anything runs. Target first (other hosts' commands are none of our
 * business), then the signature, expiry, replay, and what the host's own config allows.
 */
export class CommandVerifier {
  private readonly config: AgentConfig;
  private readonly keys: Map<string, KeyObject>;
  private readonly seen: (id: string) => boolean;

  /** `seen`: whether a command id was accepted before (the command log, which outlives restarts). */
  constructor(config: AgentConfig, seen: (id: string) => boolean) {
    this.config = config;
    this.keys = new Map(config.trustedKeys.map((key) => [key.id, createPublicKey(key.publicKey)]));
    this.seen = seen;
  }

  verify(raw: unknown, now = new Date()): Verdict {
    const parsed = signedCommandSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return {
        kind: "rejected",
        reason: "malformed",
        detail: `${issue?.path.join(".") || "command"}: ${issue?.message}`,
      };
    }
    const signed: SignedCommand = parsed.data;
    const { command } = signed;
    if (!this.targetsUs(command)) return { kind: "not_for_us" };
    const key = this.keys.get(signed.keyId);
    if (!key)
      return {
        kind: "rejected",
        reason: "unknown_key",
        detail: `key id "${signed.keyId}" is not trusted here`,
        command,
      };
    if (!verifyCommandSignature(signed, key)) {
      return {
        kind: "rejected",
        reason: "bad_signature",
        detail: `signature does not verify with key "${signed.keyId}"`,
        command,
      };
    }
    // A command seen before is a duplicate even once expired: its first delivery is what ran.
    if (this.seen(command.id)) return { kind: "duplicate", command };
    if (Date.parse(command.expiresAt) <= now.getTime()) {
      return { kind: "rejected", reason: "expired", detail: `expired at ${command.expiresAt}`, command };
    }
    const service = this.config.services.find((s) => s.name === command.service);
    if (!service) {
      return {
        kind: "rejected",
        reason: "unknown_service",
        detail: `"${command.service}" is not declared on this host`,
        command,
      };
    }
    if (!service.allowedActions.includes(command.action)) {
      return {
        kind: "rejected",
        reason: "action_not_allowed",
        detail: `"${command.action}" is not allowed on "${service.name}"`,
        command,
      };
    }
    const grace = command.parameters.gracePeriodMs;
    if (grace !== undefined && grace > service.gracePeriodMs) {
      return {
        kind: "rejected",
        reason: "parameter_not_allowed",
        detail: `gracePeriodMs ${grace} exceeds this host's ${service.gracePeriodMs}`,
        command,
      };
    }
    return { kind: "accepted", command, service };
  }

  private targetsUs(command: Command): boolean {
    const { host } = this.config;
    const { hosts, groups, labels } = command.target;
    if (hosts && hosts.length > 0 && !hosts.includes(host.name)) return false;
    if (groups && groups.length > 0 && !groups.some((group) => host.groups.includes(group))) return false;
    if (labels && !Object.entries(labels).every(([k, v]) => host.labels[k] === v)) return false;
    return Boolean(
      (hosts && hosts.length > 0) ||
        (groups && groups.length > 0) ||
        (labels && Object.keys(labels).length > 0),
    );
  }
}
