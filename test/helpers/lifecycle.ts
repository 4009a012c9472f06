import { lifecycleEventSchema } from "../../core/events.ts";

/**
 * A lifecycle record as a writer sent it (agent journal, lifecycle topic), checked against the schema readers
 * rely on (core/events.ts): a test reading events fails on an event no reader should have to take.
 */
export function lifecycleRecord<T = unknown>(text: string): T {
  const value: unknown = JSON.parse(text);
  const checked = lifecycleEventSchema.safeParse(value);
  if (!checked.success) {
    throw new Error(
      `lifecycle event does not match lifecycleEventSchema: ${checked.error.message}\n${text.slice(0, 2000)}`,
    );
  }
  return value as T;
}

/**
 * A record from a lifecycle topic that tests also write forged or hand-made records to (an unsigned approval, a
 * crashed controller's history): records that name a Lifeline writer in event.provider are checked against the
 * schema, as lifecycleRecord does; the tests' own records, which name none, are returned as they are.
 */
export function topicLifecycleRecord<T = unknown>(text: string): T {
  const value = JSON.parse(text) as { event?: { provider?: unknown } };
  return value.event?.provider === undefined ? (value as T) : lifecycleRecord<T>(text);
}
