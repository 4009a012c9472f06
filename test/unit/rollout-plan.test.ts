import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { buildPlan, dependencyOrder, type FleetHost, type Plan, planSchema } from "../../controller/plan.ts";
import { generateSigningKeys } from "../../core/commands.ts";
import { ConfigError } from "../../core/errors.ts";
import { runLifeline } from "../helpers/cli.ts";

const fleet: FleetHost[] = [
  { name: "db-1", groups: ["shop"], labels: {}, services: ["db"] },
  { name: "app-2", groups: ["shop"], labels: {}, services: ["api", "web"] },
  { name: "app-1", groups: ["shop"], labels: {}, services: ["api", "web"] },
  { name: "app-3", groups: ["shop"], labels: { canary: "yes" }, services: ["api", "web"] },
  { name: "batch-1", groups: ["reports"], labels: {}, services: ["api"] },
  { name: "idle-1", groups: ["shop"], labels: {}, services: ["cache"] },
];

const plan = (overrides: Record<string, unknown> = {}): Plan =>
  planSchema.parse({
    name: "t",
    action: "restart",
    targets: { groups: ["shop"] },
    services: [{ name: "web", dependsOn: ["api"] }, { name: "db" }, { name: "api", dependsOn: ["db"] }],
    ...overrides,
  });

describe("rollout planning", () => {
  it("start and restart go in dependency order, stop in reverse", () => {
    expect(buildPlan(plan(), fleet).order).toEqual(["db", "api", "web"]);
    expect(buildPlan(plan({ action: "stop" }), fleet).order).toEqual(["web", "api", "db"]);
  });

  it("a cycle is rejected, naming it", () => {
    const services = [
      { name: "a", dependsOn: ["b"] },
      { name: "b", dependsOn: ["c"] },
      { name: "c", dependsOn: ["a"] },
    ];
    expect(() =>
      dependencyOrder(planSchema.parse({ name: "t", action: "stop", targets: {}, services }).services),
    ).toThrowError("dependency cycle: a → b → c → a");
  });

  it("an unknown dependency is a ConfigError naming both services", () => {
    expect(() => buildPlan(plan({ services: [{ name: "api", dependsOn: ["queue"] }] }), fleet)).toThrowError(
      ConfigError,
    );
  });

  it("waves by count or percentage (rounded up), hosts sorted, only targeted hosts that run the service", () => {
    const built = buildPlan(plan({ waves: { batchSize: "50%" } }), fleet);
    expect(built.waves.map((w) => `${w.service}:${w.steps.map((s) => s.host).join("+")}`)).toEqual([
      "db:db-1",
      "api:app-1+app-2",
      "api:app-3",
      "web:app-1+app-2",
      "web:app-3",
    ]);
    const byTwo = buildPlan(plan({ waves: { batchSize: 2 } }), fleet);
    expect(byTwo.waves.filter((w) => w.service === "api").map((w) => w.steps.length)).toEqual([2, 1]);
  });

  it("approval gates stand between waves, not before the first, and need an approver to verify with", () => {
    const approvers = [{ id: "oncall", publicKey: generateSigningKeys().publicKeyPem }];
    const built = buildPlan(plan({ waves: { batchSize: 3, pause: "approval" }, approvers }), fleet);
    expect(built.waves.map((w) => w.gate)).toEqual([false, true, true]);
    expect(() => plan({ waves: { pause: "approval" } })).toThrow(/list at least one approver/);
  });

  it("a canary goes first in each service's own wave, the next wave behind its gate and wait", () => {
    const approvers = [{ id: "oncall", publicKey: generateSigningKeys().publicKeyPem }];
    const built = buildPlan(
      plan({ waves: { batchSize: 5 }, canary: { hosts: 1, gate: "approval", waitMs: 30_000 }, approvers }),
      fleet,
    );
    expect(
      built.waves.map((w) => `${w.service}:${w.steps.map((s) => s.host).join(",")}${w.gate ? ":gate" : ""}`),
    ).toEqual(["db:db-1", "api:app-1", "api:app-2,app-3:gate", "web:app-1", "web:app-2,app-3:gate"]);
    expect(built.waves.filter((w) => w.canary).map((w) => w.soakMs)).toEqual([30_000, 30_000, 30_000]);
    expect(built.waves.filter((w) => !w.canary).every((w) => w.soakMs === undefined)).toBe(true);
    // A canary gate needs an approver, like waves.pause.
    expect(() => plan({ canary: { hosts: 1, gate: "approval" } })).toThrowError(/approver/);
    // No canary: the waves are as before.
    expect(buildPlan(plan({ waves: { batchSize: 2 } }), fleet).waves.map((w) => w.steps.length)).toEqual([
      1, 2, 1, 2, 1,
    ]);
  });

  it("a wait no timer can hold is refused: past 2^31 - 1 ms, Node's timer would fire at once", () => {
    // Measured: setTimeout(f, 2 ** 31) runs f after 1 ms. A soak, a health check or a deadline that long would end
    // at once and be recorded as waited for (a false success, or a false timed_out).
    const tooLong = 2 ** 31;
    expect(() => plan({ waves: { soakMs: tooLong } })).toThrow(/at most 2147483647 ms/);
    expect(() => plan({ waves: { minHealthyTimeMs: tooLong } })).toThrow(/at most 2147483647 ms/);
    expect(() => plan({ canary: { hosts: 1, waitMs: tooLong } })).toThrow(/at most 2147483647 ms/);
    expect(() => plan({ retries: { attempts: 1, maxBackoffMs: tooLong } })).toThrow(/at most 2147483647 ms/);
    expect(() => plan({ deadlines: { deliveryMs: 2 ** 30, executionMs: 2 ** 30 } })).toThrow(
      /deliveryMs \+ executionMs must be at most 2147483647 ms/,
    );
    expect(
      plan({ waves: { soakMs: tooLong - 1 }, deadlines: { deliveryMs: 1, executionMs: tooLong - 2 } }),
    ).toBeDefined();
  });

  it("targeted hosts that run none of the planned services are reported, not silently skipped", () => {
    expect(buildPlan(plan(), fleet).unreachable).toEqual(["idle-1"]);
  });

  it("lifeline rollout --dry-run prints the plan and changes nothing", async () => {
    const example = (name: string) => fileURLToPath(new URL(`../../controller/${name}`, import.meta.url));
    const result = await runLifeline([
      "rollout",
      "--plan",
      example("rollout.example.yaml"),
      "--fleet",
      example("fleet.example.yaml"),
      "--dry-run",
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      'rollout "nightly-restart": restart db → api → web on 4 hosts in 5 waves',
    );
    expect(result.stdout).toContain("-- approval --");
    expect(result.stdout).toContain("phase 2 wave 3: api on app-3");
  });
});
