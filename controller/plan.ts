import { z } from "zod";
import { loadConfigFile, MAX_TIMER_MS, timerMs } from "../core/config.ts";
import { ConfigError } from "../core/errors.ts";
import { criticalPath, executionOrder } from "./schedule.ts";

const selectorSchema = z.strictObject({
  hosts: z.array(z.string()).optional(),
  groups: z.array(z.string()).optional(),
  labels: z.record(z.string(), z.string()).optional(),
});
export type HostSelector = z.infer<typeof selectorSchema>;

const batchSize = z.union([
  z.number().int().positive(),
  z.string().regex(/^\d{1,3}%$/, 'a number or a percentage like "25%"'),
]);

export const planSchema = z
  .strictObject({
    name: z.string().min(1),
    action: z.enum(["stop", "start", "restart"]),
    /** Which hosts of the fleet take part. */
    targets: selectorSchema,
    /** The services, where they run (a subset of the targets), and what each needs running first. */
    services: z
      .array(
        z.strictObject({
          name: z.string().min(1),
          on: selectorSchema.optional(),
          dependsOn: z.array(z.string()).default([]),
        }),
      )
      .min(1),
    waves: z
      .strictObject({
        batchSize: batchSize.default(1),
        /** At most this many commands in flight at once within a wave (one wave of a service runs at a time). */
        maxInFlight: z.number().int().positive().default(1),
        /** At most this many commands in flight over the whole rollout (independent services run side by side). */
        maxInFlightTotal: z.number().int().positive().optional(),
        /** Wait after each host finished, before the next one. */
        soakMs: timerMs().default(0),
        /**
         * A start or restart succeeds only if, this long after, its agent still reports the service running, the
         * same process, and its health probe passing (a status command); its slot stays taken meanwhile.
         */
        minHealthyTimeMs: timerMs().default(0),
        /**
         * At most this many of a service's instances down at once by this rollout (stops and restarts in
         * progress, stops done, restarts that failed); a step past it waits, or is cancelled when nothing can
         * come back. Counts only this rollout's steps, not instances already down for other reasons.
         */
        maxUnavailable: z.number().int().positive().optional(),
        /** "approval": wait for `lifeline rollout approve` between waves. */
        pause: z.enum(["none", "approval"]).default("none"),
      })
      .default({ batchSize: 1, maxInFlight: 1, soakMs: 0, minHealthyTimeMs: 0, pause: "none" }),
    /**
     * Each service's first `hosts` go first, in a wave of their own; the service's next wave waits for an approval
     * (`gate: approval`) and/or `waitMs` after each canary step settled (a soak for the canary alone).
     */
    canary: z
      .strictObject({
        hosts: z.number().int().nonnegative().default(0),
        gate: z.enum(["none", "approval"]).default("none"),
        waitMs: timerMs().default(0),
      })
      .default({ hosts: 0, gate: "none", waitMs: 0 }),
    /**
     * A failure the agent marks retryable (the service verified stopped after a failed start, running after a
     * failed stop) is tried again up to `attempts` times, after backoffMs doubled per attempt up to maxBackoffMs,
     * with jitter. Only the last attempt counts against the failure budget; each retry is a step.retry_scheduled event.
     */
    retries: z
      .strictObject({
        attempts: z.number().int().nonnegative().default(0),
        backoffMs: timerMs().positive().default(1_000),
        maxBackoffMs: timerMs().positive().default(30_000),
      })
      .optional(),
    failureBudget: z
      .strictObject({
        maxFailures: z.number().int().nonnegative().default(0),
        maxFailurePercent: z.number().min(0).max(100).optional(),
      })
      .default({ maxFailures: 0 }),
    deadlines: z
      .strictObject({
        deliveryMs: timerMs().positive().default(30_000),
        executionMs: timerMs().positive().default(120_000),
      })
      // The controller waits for a command's outcome until both have passed: one timer for the sum.
      .refine((d) => d.deliveryMs + d.executionMs <= MAX_TIMER_MS, {
        message: `deliveryMs + executionMs must be at most ${MAX_TIMER_MS} ms (24.8 days): a longer wait cannot be timed`,
      })
      .default({ deliveryMs: 30_000, executionMs: 120_000 }),
    rollback: z.enum(["none", "start-stopped"]).default("none"),
    /**
     * Past the failure budget: halt (nothing new is sent; rollback as `rollback` says), pause (nothing new is sent
     * until \`lifeline rollout continue\`; every failure past the budget pauses again), or rollback (halt, then
     * start again what this rollout stopped).
     */
    onFailure: z.enum(["halt", "pause", "rollback"]).default("halt"),
    /** A plan whose targets match no host is an error, unless it says it may be empty. */
    allowEmpty: z.boolean().default(false),
    /** Who may open an approval gate: Ed25519 public keys (PEM) under an id, used by `lifeline rollout approve`. */
    approvers: z
      .array(z.strictObject({ id: z.string().min(1), publicKey: z.string().includes("PUBLIC KEY") }))
      .default([]),
  })
  .refine(
    (plan) =>
      (plan.waves.pause !== "approval" && plan.canary.gate !== "approval") || plan.approvers.length > 0,
    {
      message:
        "waves.pause or canary.gate is approval: list at least one approver (id and publicKey) to verify approvals with",
      path: ["approvers"],
    },
  );
export type Plan = z.output<typeof planSchema>;

export interface FleetHost {
  name: string;
  groups: string[];
  labels: Record<string, string>;
  /** Services the host's agent declares (from its heartbeat). */
  services: string[];
}

export interface PlannedStep {
  host: string;
  service: string;
  /** status: the controller's own check of a started service (waves.minHealthyTimeMs), never a planned step. */
  action: "stop" | "start" | "restart" | "status";
}

export interface PlannedWave {
  phase: number;
  wave: number;
  service: string;
  steps: PlannedStep[];
  /** Wait for approval before this wave. */
  gate: boolean;
  /** The service's canary wave (its first hosts). */
  canary?: boolean;
  /** Each step's slot stays taken this long after it settled (instead of waves.soakMs). */
  soakMs?: number;
}

export interface RolloutPlan {
  name: string;
  action: Plan["action"];
  order: string[];
  waves: PlannedWave[];
  /** Targeted hosts that run none of the plan's services, or have no live agent. */
  unreachable: string[];
  hosts: number;
}

export function loadPlan(file: string): Plan {
  return loadConfigFile(file, planSchema);
}

/** A fleet file: the hosts a rollout may target, when it is not taken from the agents' heartbeats. */
export const fleetSchema = z.strictObject({
  hosts: z.array(
    z.strictObject({
      name: z.string().min(1),
      groups: z.array(z.string()).default([]),
      labels: z.record(z.string(), z.string()).default({}),
      services: z.array(z.string()).default([]),
    }),
  ),
});

export function loadFleet(file: string): z.output<typeof fleetSchema> {
  return loadConfigFile(file, fleetSchema);
}

export function matches(host: FleetHost, selector: HostSelector | undefined): boolean {
  if (!selector) return true;
  if (selector.hosts?.length && !selector.hosts.includes(host.name)) return false;
  if (selector.groups?.length && !selector.groups.some((g) => host.groups.includes(g))) return false;
  if (selector.labels && !Object.entries(selector.labels).every(([k, v]) => host.labels[k] === v))
    return false;
  return true;
}

/**
 * Services in dependency order (dependencies first). A cycle is an error that names it, e.g. "api → web → api".
 */
export function dependencyOrder(services: Plan["services"]): string[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  for (const service of services) {
    for (const dependency of service.dependsOn) {
      if (!byName.has(dependency)) {
        throw new ConfigError(
          "plan.unknown_dependency",
          `service "${service.name}" depends on "${dependency}", which the plan does not list`,
        );
      }
    }
  }
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string, path: string[]) => {
    if (state.get(name) === "done") return;
    if (state.get(name) === "visiting") {
      const cycle = [...path.slice(path.indexOf(name)), name];
      throw new ConfigError("plan.cycle", `dependency cycle: ${cycle.join(" → ")}`);
    }
    state.set(name, "visiting");
    for (const dependency of byName.get(name)?.dependsOn ?? []) visit(dependency, [...path, name]);
    state.set(name, "done");
    order.push(name);
  };
  for (const service of services) visit(service.name, []);
  return order;
}

function batchOf(size: number | string, total: number): number {
  if (typeof size === "number") return size;
  return Math.max(1, Math.ceil((total * Number(size.slice(0, -1))) / 100));
}

/**
 * The exact ordered plan: phases per service (start and restart in dependency order, stop in reverse), each
 * phase's hosts in waves of batchSize. Hosts are sorted by name so the same inputs always give the same plan.
 */
export function buildPlan(plan: Plan, fleet: FleetHost[]): RolloutPlan {
  const order = dependencyOrder(plan.services);
  const serviceOrder = plan.action === "stop" ? [...order].reverse() : order;
  const targeted = fleet
    .filter((host) => matches(host, plan.targets))
    .sort((a, b) => a.name.localeCompare(b.name));
  const byName = new Map(plan.services.map((s) => [s.name, s]));
  const waves: PlannedWave[] = [];
  const involved = new Set<string>();
  serviceOrder.forEach((service, phaseIndex) => {
    const hosts = targeted.filter(
      (host) => matches(host, byName.get(service)?.on) && host.services.includes(service),
    );
    const canary = Math.min(plan.canary.hosts, hosts.length);
    const rest = hosts.slice(canary);
    const size = batchOf(plan.waves.batchSize, rest.length);
    const batches = canary > 0 ? [hosts.slice(0, canary)] : [];
    for (let i = 0; i < rest.length; i += size) batches.push(rest.slice(i, i + size));
    batches.forEach((batch, index) => {
      for (const host of batch) involved.add(host.name);
      const isCanary = canary > 0 && index === 0;
      const afterCanary = canary > 0 && index === 1;
      waves.push({
        phase: phaseIndex + 1,
        wave: waves.length + 1,
        service,
        steps: batch.map((host) => ({ host: host.name, service, action: plan.action })),
        gate:
          (plan.waves.pause === "approval" && waves.length > 0) ||
          (afterCanary && plan.canary.gate === "approval"),
        ...(isCanary ? { canary: true, soakMs: Math.max(plan.canary.waitMs, plan.waves.soakMs) } : {}),
      });
    });
  });
  const unreachable = targeted.filter((host) => !involved.has(host.name)).map((host) => host.name);
  return {
    name: plan.name,
    action: plan.action,
    order: serviceOrder,
    waves,
    unreachable,
    hosts: involved.size,
  };
}

/** The --dry-run text: exact order, waves, hosts, deadlines. */
export function describePlan(plan: Plan, built: RolloutPlan): string {
  const lines = [
    `rollout "${built.name}": ${built.action} ${built.order.join(built.action === "stop" ? " ← " : " → ")} on ${built.hosts} hosts in ${built.waves.length} waves`,
    `  waves of ${plan.waves.batchSize}, at most ${plan.waves.maxInFlight} in flight per service${plan.waves.maxInFlightTotal !== undefined ? `, ${plan.waves.maxInFlightTotal} in all` : ""}${plan.waves.maxUnavailable !== undefined ? `, at most ${plan.waves.maxUnavailable} of a service down` : ""}, soak ${plan.waves.soakMs} ms${plan.waves.minHealthyTimeMs > 0 ? `, healthy ${plan.waves.minHealthyTimeMs} ms after start` : ""}${plan.waves.pause === "approval" ? ", approval between waves" : ""}`,
    `  failure budget: ${plan.onFailure} after more than ${plan.failureBudget.maxFailures} failures${plan.failureBudget.maxFailurePercent !== undefined ? ` or ${plan.failureBudget.maxFailurePercent} %` : ""}; rollback: ${plan.onFailure === "rollback" ? "start-stopped" : plan.rollback}`,
    `  deadlines: delivery ${plan.deadlines.deliveryMs} ms, execution ${plan.deadlines.executionMs} ms`,
  ];
  const after = executionOrder(plan.services, plan.action);
  const inPlan = new Set(built.waves.map((w) => w.service));
  lines.push(
    "  graph (arrows in the direction of execution; services that wait for nothing in common run side by side):",
  );
  for (const service of built.order.filter((s) => inPlan.has(s))) {
    const before = (after.get(service) ?? []).filter((s) => inPlan.has(s));
    const count = built.waves.filter((w) => w.service === service).length;
    lines.push(
      `    ${before.length > 0 ? `${before.join(", ")} → ` : ""}${service} (${count} wave${count === 1 ? "" : "s"})`,
    );
  }
  const critical = criticalPath(built.waves, after);
  lines.push(`  critical path: ${critical.join(" → ")}`);
  for (const wave of built.waves) {
    lines.push(
      `${wave.gate ? "  -- approval --\n" : ""}  phase ${wave.phase} wave ${wave.wave}: ${wave.service} on ${wave.steps.map((s) => s.host).join(", ")}${wave.canary ? ` (canary${wave.soakMs ? `, then ${wave.soakMs} ms` : ""})` : ""}`,
    );
  }
  if (built.unreachable.length > 0)
    lines.push(`  not included (no live agent running a planned service): ${built.unreachable.join(", ")}`);
  return `${lines.join("\n")}\n`;
}

/**
 * Why a built plan must not run: it matches no host (a misspelt group or host, an empty fleet) and the plan does
 * not allow that. Undefined when it may run. A rollout of nothing must never report success.
 */
export function emptyPlanError(
  plan: Plan,
  built: RolloutPlan,
  fleetSize: number,
  fleetSource: string,
): string | undefined {
  if (plan.allowEmpty || built.waves.some((w) => w.steps.length > 0)) return undefined;
  return `plan "${plan.name}" matches no host: targets ${JSON.stringify(plan.targets)} and services ${plan.services
    .map((s) => s.name)
    .join(", ")} against ${fleetSize} hosts from ${fleetSource}${
    built.unreachable.length > 0
      ? ` (targeted but running none of the services: ${built.unreachable.join(", ")})`
      : ""
  }. Check the selectors, or set allowEmpty: true if an empty rollout is expected.`;
}
