import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { type SignedStatement, signStatement, verifyStatement } from "../core/commands.ts";
import { deterministicId, EVENT_PROVIDERS, lifecycleEvent } from "../core/events.ts";
import type { KafkaPort as Kafka } from "../core/kafka/port.ts";
import { TopicFollower } from "../core/kafka/topic-follower.ts";

export interface Approval {
  rolloutId: string;
  /** The wave it opens; absent: the next gate. */
  wave?: number;
  /** approve opens a gate; abort ends the rollout; pause holds it (in-flight steps finish); continue ends a pause. */
  decision: "approve" | "abort" | "pause" | "continue";
  by: string;
  at: string;
  reason?: string;
}

/** Why an approval is not accepted, or undefined when it is (signed by a trusted approver, for this rollout). */
export function rejectApproval(
  statement: unknown,
  rolloutId: string,
  approvers: Array<{ id: string; publicKey: string }>,
): string | undefined {
  const signed = statement as Partial<SignedStatement<Approval>> | undefined;
  if (!signed?.payload || typeof signed.signature !== "string" || typeof signed.keyId !== "string") {
    return "unsigned: an approval must be signed by a trusted approver key";
  }
  const approver = approvers.find((a) => a.id === signed.keyId);
  if (!approver) return `key "${signed.keyId}" is not among the plan's approvers`;
  if (!verifyStatement(signed as SignedStatement<unknown>, approver.publicKey))
    return "signature does not verify";
  if (signed.payload.rolloutId !== rolloutId)
    return `for rollout ${signed.payload.rolloutId}, not ${rolloutId}`;
  if (!["approve", "abort", "pause", "continue"].includes(signed.payload.decision as string))
    return "unknown decision";
  return undefined;
}

/** Publishes a signed approval (or abort) to the lifecycle topic: the running controller acts on it, and it stays as the audit trail. */
export async function publishApproval(
  kafka: Kafka,
  topic: string,
  approval: Omit<Approval, "at" | "by"> & { by?: string },
  signer: { keyId: string; privateKeyPem: string },
): Promise<SignedStatement<Approval>> {
  const payload: Approval = { ...approval, by: approval.by ?? signer.keyId, at: new Date().toISOString() };
  const statement = signStatement(payload, signer.keyId, signer.privateKeyPem);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: [
        {
          key: approval.rolloutId,
          value: JSON.stringify(
            lifecycleEvent({
              at: new Date(payload.at),
              id: deterministicId("approval", randomUUID()),
              provider: EVENT_PROVIDERS.cli,
              host: hostname(),
              action: "rollout.approval",
              outcome: "success",
              message: `rollout.approval: ${payload.decision} ${approval.rolloutId}${approval.wave !== undefined ? ` wave ${approval.wave}` : ""} by ${payload.by}`,
              lifeline: {
                rollout_id: approval.rolloutId,
                ...(approval.wave !== undefined ? { wave: approval.wave } : {}),
                approval: statement,
              },
            }),
          ),
        },
      ],
    });
  } finally {
    await producer.disconnect();
  }
  return statement;
}

/**
 * Follows the lifecycle topic for the running controller's answer to a decision published after `ready()`:
 * `rollout.aborted` / `rollout.approved` (taken), `rollout.approval_rejected` (refused, with the reason), or
 * nothing within the timeout (no controller is running that rollout). Starts following before the decision is
 * published, so the answer cannot slip in between.
 */
export async function followDecision(
  kafka: Kafka,
  topic: string,
  rolloutId: string,
  publish: () => Promise<void>,
  timeoutMs: number,
): Promise<{ answer: "taken" | "refused" | "none"; reason?: string }> {
  let settle: (value: { answer: "taken" | "refused"; reason?: string }) => void = () => {};
  const answered = new Promise<{ answer: "taken" | "refused"; reason?: string }>((resolve) => {
    settle = resolve;
  });
  let publishedAt = Number.POSITIVE_INFINITY;
  // No consumer group: positions taken before the decision is published, nothing left on the broker.
  const follower = new TopicFollower(kafka, {
    topic,
    from: "end",
    onMessage: (message) => {
      let event: {
        "@timestamp"?: string;
        event?: { action?: string; reason?: string };
        lifeline?: { rollout_id?: string };
      };
      try {
        event = JSON.parse(String(message.value));
      } catch {
        return;
      }
      if (event.lifeline?.rollout_id !== rolloutId) return;
      if (Date.parse(event["@timestamp"] ?? "") < publishedAt - 1_000) return;
      const action = event.event?.action;
      const reason = event.event?.reason;
      if (action === "rollout.approval_rejected")
        settle({ answer: "refused", ...(reason ? { reason } : {}) });
      if (
        action === "rollout.aborted" ||
        action === "rollout.approved" ||
        action === "rollout.paused" ||
        action === "rollout.continued"
      )
        settle({ answer: "taken", ...(reason ? { reason } : {}) });
    },
  });
  try {
    await follower.start();
    publishedAt = Date.now();
    await publish();
    let timer: NodeJS.Timeout | undefined;
    const none = new Promise<{ answer: "none" }>((resolve) => {
      timer = setTimeout(() => resolve({ answer: "none" }), timeoutMs);
    });
    const result = await Promise.race([answered, none]);
    clearTimeout(timer);
    return result;
  } finally {
    await follower.stop();
  }
}
