import type { PlannedStep, RolloutPlan } from "./plan.ts";

/**
 * A built plan as the lifecycle topic records it: `rollout.planned` carries the plan without its steps and
 * unreachable hosts, and as many `rollout.plan_part` events as it takes to carry them, each well under Kafka's
 * default message.max.bytes (1 MiB): 100,000 hosts' steps in one event were several megabytes, and the broker
 * refused it. Resume (history.ts) joins them back, and refuses a plan with a part missing.
 */
export interface PlanPart {
  index: number;
  /** Steps in plan order, each with its wave. */
  steps: Array<[number, PlannedStep]>;
  unreachable: string[];
}

/** At most this many steps or unreachable hosts per part (a step is about 100 bytes of JSON). */
export const PART_ITEMS = 2_000;

export function splitPlan(built: RolloutPlan, size = PART_ITEMS): { head: RolloutPlan; parts: PlanPart[] } {
  const steps = built.waves.flatMap((wave) =>
    wave.steps.map((step) => [wave.wave, step] as [number, PlannedStep]),
  );
  const count = Math.max(Math.ceil(steps.length / size), Math.ceil(built.unreachable.length / size));
  const parts = Array.from({ length: count }, (_, index) => ({
    index,
    steps: steps.slice(index * size, (index + 1) * size),
    unreachable: built.unreachable.slice(index * size, (index + 1) * size),
  }));
  return {
    head: { ...built, waves: built.waves.map((wave) => ({ ...wave, steps: [] })), unreachable: [] },
    parts,
  };
}

/** The plan back from its head and parts; throws when a part is missing. */
export function joinPlan(head: RolloutPlan, expected: number, parts: PlanPart[]): RolloutPlan {
  const byIndex = new Map(parts.map((part) => [part.index, part]));
  const waves = new Map(head.waves.map((wave) => [wave.wave, { ...wave, steps: [] as PlannedStep[] }]));
  const unreachable: string[] = [];
  for (let index = 0; index < expected; index += 1) {
    const part = byIndex.get(index);
    if (!part)
      throw new Error(`part ${index + 1} of ${expected} of the plan is missing from the lifecycle topic`);
    for (const [wave, step] of part.steps) {
      const into = waves.get(wave);
      if (!into) throw new Error(`plan part ${index + 1} names wave ${wave}, which the plan does not have`);
      into.steps.push(step);
    }
    unreachable.push(...part.unreachable);
  }
  return { ...head, waves: [...waves.values()], unreachable };
}
