import { describe, expect, it } from "vitest";
import type { RolloutPlan } from "../../controller/plan.ts";
import { joinPlan, splitPlan } from "../../controller/plan-record.ts";

function plan(hosts: number, unreachable: number): RolloutPlan {
  const step = (i: number, service: string) => ({ host: `host-${i}`, service, action: "restart" as const });
  return {
    name: "big",
    action: "restart",
    order: ["db", "api"],
    waves: [
      {
        phase: 0,
        wave: 1,
        service: "db",
        steps: Array.from({ length: hosts }, (_, i) => step(i, "db")),
        gate: false,
      },
      { phase: 1, wave: 2, service: "api", steps: [step(0, "api")], gate: true, canary: true },
      {
        phase: 1,
        wave: 3,
        service: "api",
        steps: Array.from({ length: hosts }, (_, i) => step(i, "api")),
        gate: false,
      },
    ],
    unreachable: Array.from({ length: unreachable }, (_, i) => `gone-${i}`),
    hosts,
  };
}

describe("a built plan recorded in parts", () => {
  it("splits into parts each under Kafka's 1 MiB default and joins back to the same plan", () => {
    const built = plan(100_000, 4_500);
    const { head, parts } = splitPlan(built);
    expect(JSON.stringify(head).length).toBeLessThan(10_000);
    expect(parts).toHaveLength(Math.ceil(200_001 / 2_000));
    for (const part of parts) expect(JSON.stringify(part).length).toBeLessThan(512 * 1024);
    expect(joinPlan(head, parts.length, [...parts].reverse())).toEqual(built);
  });

  it("a small plan is one part; a missing part is an error, not a smaller plan", () => {
    const built = plan(3, 0);
    const { head, parts } = splitPlan(built);
    expect(parts).toHaveLength(1);
    expect(joinPlan(head, 1, parts)).toEqual(built);
    const big = splitPlan(plan(5_000, 0));
    expect(() => joinPlan(big.head, big.parts.length, big.parts.slice(1))).toThrow(/part 1 of 6/);
  });
});
