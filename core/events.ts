import { hash } from "node:crypto";
import { z } from "zod";
import { isValidSpanId, isValidTraceId } from "./trace-context.ts";

/**
 * The records that travel on Lifeline's topics, named after ECS fields (https://www.elastic.co/docs/reference/ecs)
 * so that a document in Elasticsearch is the record as it was sent. Bump SCHEMA_VERSION on any change
 * a reader would notice; readers accept every version up to their own.
 */
export const SCHEMA_VERSION = 1;

const traceId = z.string().refine(isValidTraceId, "must be 32 lowercase hex digits, not all zero");
const spanId = z.string().refine(isValidSpanId, "must be 16 lowercase hex digits, not all zero");
const timestamp = z.iso.datetime({ offset: true });

const lifelineMeta = z.looseObject({
  schema_version: z.number().int().min(1).max(SCHEMA_VERSION),
  command_id: z.string().optional(),
  rollout_id: z.string().optional(),
});

const common = {
  "@timestamp": timestamp,
  message: z.string().optional(),
  host: z.looseObject({ name: z.string().min(1) }),
  service: z.looseObject({ name: z.string().min(1), environment: z.string().optional() }).optional(),
  trace: z.object({ id: traceId }).optional(),
  span: z.object({ id: spanId }).optional(),
  labels: z.record(z.string(), z.string()).optional(),
  lifeline: lifelineMeta,
};

export const eventOutcome = z.enum(["success", "failure", "unknown"]);
export type EventOutcome = z.infer<typeof eventOutcome>;

/** A service's log line (or joined multiline record) as the shipper sends it. */
export const logRecordSchema = z.looseObject({
  ...common,
  event: z.looseObject({
    id: z.string().min(1),
    dataset: z.string().optional(),
    original: z.string().optional(),
  }),
  log: z.looseObject({
    file: z.object({ path: z.string() }),
    offset: z.number().int().nonnegative(),
    level: z.string().optional(),
    /** e.g. "truncated", "invalid_utf8", "multiline". */
    flags: z.array(z.string()).optional(),
  }),
});
export type LogRecord = z.infer<typeof logRecordSchema>;

/**
 * Who wrote a lifecycle event (ECS event.provider): an agent or a controller. Dashboards, rules and the CLI
 * tell controller events by this, not by a host name a real host could have.
 */
export const EVENT_PROVIDERS = {
  agent: "lifeline-agent",
  controller: "lifeline-controller",
  /** An operator's decision published by the command line (`lifeline rollout approve|abort`). */
  cli: "lifeline-cli",
} as const;
export type EventProvider = (typeof EVENT_PROVIDERS)[keyof typeof EVENT_PROVIDERS];

/**
 * A controller's event: its provider says so; an event written before providers existed (schema 1 without
 * event.provider) by its host name "controller", as those controllers wrote it.
 */
export function isControllerEvent(event: {
  event?: { provider?: string };
  host?: { name?: string };
}): boolean {
  const provider = event.event?.provider;
  return provider ? provider === EVENT_PROVIDERS.controller : event.host?.name === "controller";
}

/** One step of a stop/start, or a controller decision, or a heartbeat. */
export const lifecycleEventSchema = z.looseObject({
  ...common,
  event: z.looseObject({
    id: z.string().min(1),
    kind: z.literal("event"),
    provider: z.enum([EVENT_PROVIDERS.agent, EVENT_PROVIDERS.controller, EVENT_PROVIDERS.cli]).optional(),
    /** Namespaced step, e.g. "stop.signal_sent", "command.rejected", "rollout.halted". */
    action: z.string().regex(/^[a-z_]+\.[a-z_]+$/, "must look like area.step, e.g. stop.signal_sent"),
    outcome: eventOutcome,
    /** Nanoseconds, as ECS defines event.duration. */
    duration: z.number().int().nonnegative().optional(),
    reason: z.string().optional(),
  }),
  process: z
    .looseObject({ pid: z.number().int().optional(), exit_code: z.number().int().optional() })
    .optional(),
});
export type LifecycleEvent = z.infer<typeof lifecycleEventSchema>;

/** What a lifecycle event says; lifecycleEvent() gives it the envelope every writer shares. */
export interface LifecycleEventFields {
  id: string;
  provider: EventProvider;
  host: string;
  action: string;
  outcome: EventOutcome;
  message: string;
  at?: Date;
  /** Orders events of one writer within a millisecond (timelines sort by @timestamp, then this). */
  sequence?: number;
  service?: string;
  category?: string[];
  /** Nanoseconds. */
  duration?: number;
  reason?: string;
  process?: { pid?: number; exit_code?: number; signal?: string };
  /** The trace the event belongs to: the command's or the rollout's span. */
  span?: { traceId: string; spanId: string; parentId?: string | undefined };
  /** The event's `lifeline` fields besides schema_version. */
  lifeline?: Record<string, unknown>;
  /** Further top-level fields (their own `lifeline` object is not allowed: use `lifeline`). */
  extra?: Record<string, unknown>;
}

/**
 * The one builder of lifecycle events (agent steps, controller decisions, operators' approvals): the envelope
 * lifecycleEventSchema describes, with ECS's event.kind, dataset and provider, so each writer says only what
 * happened. Tests check what the writers send against that schema.
 */
export function lifecycleEvent(fields: LifecycleEventFields): Record<string, unknown> {
  const { span, process } = fields;
  const processFields = process
    ? Object.fromEntries(Object.entries(process).filter(([, value]) => value !== undefined))
    : {};
  return {
    "@timestamp": (fields.at ?? new Date()).toISOString(),
    message: fields.message,
    host: { name: fields.host },
    ...(fields.service ? { service: { name: fields.service } } : {}),
    event: {
      id: fields.id,
      ...(fields.sequence !== undefined ? { sequence: fields.sequence } : {}),
      kind: "event",
      provider: fields.provider,
      ...(fields.category ? { category: fields.category } : {}),
      dataset: "lifeline.lifecycle",
      action: fields.action,
      outcome: fields.outcome,
      ...(fields.duration !== undefined ? { duration: Math.round(fields.duration) } : {}),
      ...(fields.reason ? { reason: fields.reason } : {}),
    },
    ...(Object.keys(processFields).length > 0 ? { process: processFields } : {}),
    ...(span
      ? {
          trace: { id: span.traceId },
          span: { id: span.spanId },
          ...(span.parentId ? { parent: { id: span.parentId } } : {}),
        }
      : {}),
    lifeline: { schema_version: SCHEMA_VERSION, ...fields.lifeline },
    ...fields.extra,
  };
}

/**
 * Deterministic event id: the same inputs always give the same id, so a record sent twice
 * (after a crash or a retry) lands on the same Elasticsearch document instead of a duplicate.
 */
export function deterministicId(...parts: Array<string | number | bigint>): string {
  // One-shot hash of "part\0part\0...": the same bytes as hashing part by part, three times faster (the shipper
  // makes one id per line).
  let text = "";
  for (const part of parts) text += `${part}\u0000`;
  return hash("sha256", text, "base64url").slice(0, 27);
}

/**
 * The event id of a log record: its file's id (itself a deterministicId, new for each file and each truncation)
 * and the record's byte offset. Unique without a hash, and ids of one file share a prefix and grow with the
 * offset, which Elasticsearch's id lookups favour over random ids.
 */
export function lineEventId(fileId: string, offset: number): string {
  return `${fileId}${offset.toString(36)}`;
}
