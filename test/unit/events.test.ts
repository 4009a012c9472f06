import { describe, expect, it } from "vitest";
import {
  deterministicId,
  EVENT_PROVIDERS,
  isControllerEvent,
  lifecycleEvent,
  lifecycleEventSchema,
  logRecordSchema,
  SCHEMA_VERSION,
} from "../../core/events.ts";

const stopEvent = {
  "@timestamp": "2026-11-27T05:00:00.000Z",
  host: { name: "web-1" },
  service: { name: "api" },
  trace: { id: "4bf92f3577b34da6a3ce929d0e0e4736" },
  span: { id: "00f067aa0ba902b7" },
  event: { id: "e1", kind: "event", action: "stop.escalated", outcome: "success", duration: 30_000_000_000 },
  process: { pid: 4242, exit_code: 137 },
  lifeline: { schema_version: SCHEMA_VERSION, command_id: "c1", rollout_id: "r1" },
};

describe("event schemas", () => {
  it("accepts a lifecycle event with ECS names", () => {
    expect(lifecycleEventSchema.parse(stopEvent)).toMatchObject({ event: { action: "stop.escalated" } });
  });

  it.each([
    ["an invalid trace id", { ...stopEvent, trace: { id: "0".repeat(32) } }, "trace.id"],
    [
      "an action without an area",
      { ...stopEvent, event: { ...stopEvent.event, action: "stopped" } },
      "event.action",
    ],
    ["an unknown outcome", { ...stopEvent, event: { ...stopEvent.event, outcome: "ok" } }, "event.outcome"],
    [
      "a newer schema version",
      { ...stopEvent, lifeline: { schema_version: SCHEMA_VERSION + 1 } },
      "lifeline.schema_version",
    ],
    ["no host", { ...stopEvent, host: undefined }, "host"],
  ])("rejects %s, naming the field", (_, event, field) => {
    const result = lifecycleEventSchema.safeParse(event);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.path.join("."))).toContain(field);
  });

  it("accepts a log record with its file offset", () => {
    const record = {
      "@timestamp": "2026-11-27T05:00:00Z",
      message: "GET /health 200",
      host: { name: "web-1" },
      event: { id: deterministicId("web-1", "dev:ino:fp", 0) },
      log: { file: { path: "/var/log/api.log" }, offset: 0, flags: ["truncated"] },
      lifeline: { schema_version: 1 },
    };
    expect(logRecordSchema.safeParse(record).success).toBe(true);
  });

  it("deterministic ids are stable, distinct per input, and do not collide on joined strings", () => {
    expect(deterministicId("host", "file", 10)).toBe(deterministicId("host", "file", 10));
    expect(deterministicId("host", "file", 10)).not.toBe(deterministicId("host", "file", 11));
    expect(deterministicId("ab", "c")).not.toBe(deterministicId("a", "bc"));
    expect(deterministicId("x")).toMatch(/^[A-Za-z0-9_-]{27}$/);
    // Pinned: ids already in Elasticsearch must come out the same after an upgrade, or a replay duplicates.
    expect(deterministicId("host", "file", 10)).toBe("oyAAsbygr4y6qsqMndBJ6xqnUx1");
  });
});

describe("who wrote a lifecycle event", () => {
  it("a controller's event says so in event.provider; an agent's event from a host named controller is not one", async () => {
    const { isControllerEvent, lifecycleEventSchema } = await import("../../core/events.ts");
    expect(
      isControllerEvent({ event: { provider: "lifeline-controller" }, host: { name: "controller" } }),
    ).toBe(true);
    expect(isControllerEvent({ event: { provider: "lifeline-agent" }, host: { name: "controller" } })).toBe(
      false,
    );
    // Events written before providers existed: the controller's host name is all there is.
    expect(isControllerEvent({ event: {}, host: { name: "controller" } })).toBe(true);
    expect(isControllerEvent({ event: {}, host: { name: "web-1" } })).toBe(false);
    const base = {
      "@timestamp": "2026-12-06T07:00:00.000Z",
      host: { name: "controller" },
      lifeline: { schema_version: 1 },
    };
    const event = (provider: string) => ({
      ...base,
      event: { id: "e1", kind: "event", action: "rollout.planned", outcome: "success", provider },
    });
    expect(lifecycleEventSchema.safeParse(event("lifeline-controller")).success).toBe(true);
    expect(lifecycleEventSchema.safeParse(event("someone-else")).success).toBe(false);
  });
});

describe("lifecycleEvent: the one builder of lifecycle events", () => {
  const span = {
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: "00f067aa0ba902b7",
    parentId: "00f067aa0ba902b8",
  };

  it("every writer's event matches the schema readers rely on, with ECS's envelope", () => {
    const events = [
      lifecycleEvent({
        id: "a1",
        provider: EVENT_PROVIDERS.agent,
        host: "web-1",
        service: "api",
        category: ["process"],
        action: "stop.signal_sent",
        outcome: "success",
        message: "stop.signal_sent",
        sequence: 3,
        duration: 1_500_000.4,
        process: { pid: 42, exit_code: undefined, signal: "SIGTERM" },
        span,
        lifeline: { command_id: "c1", evidence: "pid 42 gone" },
      }),
      lifecycleEvent({
        id: "c1",
        provider: EVENT_PROVIDERS.controller,
        host: "controller",
        action: "rollout.halted",
        outcome: "failure",
        message: "rollout.halted: budget",
        reason: "budget",
        span: { traceId: span.traceId, spanId: span.spanId },
        lifeline: { rollout_id: "r1", wave: 2 },
      }),
      lifecycleEvent({
        id: "o1",
        provider: EVENT_PROVIDERS.cli,
        host: "laptop",
        action: "rollout.approval",
        outcome: "success",
        message: "rollout.approval: approve r1",
        lifeline: { rollout_id: "r1" },
      }),
    ];
    for (const event of events) expect(lifecycleEventSchema.safeParse(event).error).toBeUndefined();
    const [agent, controller, cli] = events as Array<Record<string, unknown>>;
    expect(agent?.event).toMatchObject({ kind: "event", dataset: "lifeline.lifecycle", duration: 1_500_000 });
    expect(agent?.process).toEqual({ pid: 42, signal: "SIGTERM" });
    expect(agent?.parent).toEqual({ id: span.parentId });
    expect(agent?.lifeline).toEqual({
      schema_version: SCHEMA_VERSION,
      command_id: "c1",
      evidence: "pid 42 gone",
    });
    expect(controller?.parent).toBeUndefined();
    expect(isControllerEvent(controller as never)).toBe(true);
    // An operator's approval is not the controller's event, whatever the operator's machine is called.
    expect(isControllerEvent({ ...(cli as object), host: { name: "controller" } } as never)).toBe(false);
    expect(cli?.trace).toBeUndefined();
  });

  it("an action that is not area.step is refused by the schema, so a writer's slip fails the tests that read it", () => {
    const event = lifecycleEvent({
      id: "x",
      provider: EVENT_PROVIDERS.agent,
      host: "h",
      action: "Stopped",
      outcome: "success",
      message: "",
    });
    expect(lifecycleEventSchema.safeParse(event).success).toBe(false);
  });
});
