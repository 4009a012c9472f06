import type { KafkaPort as Kafka } from "../core/kafka/port.ts";
import { readSince } from "../core/kafka/read-since.ts";
import { poll } from "../core/poll.ts";
import type { FleetHost } from "./plan.ts";

export interface LiveHost extends FleetHost {
  lastSeen: number;
}

interface Heartbeat {
  "@timestamp"?: string;
  host?: { name?: string };
  event?: { action?: string };
  agent?: { groups?: string[]; labels?: Record<string, string>; services?: Record<string, string> };
}

/**
 * The agents alive now: the latest heartbeat of every host on the lifecycle topic within the window. Each
 * heartbeat names the host's groups, labels and declared services, so a fleet can be resolved from presence alone.
 */
export async function readPresence(
  kafka: Kafka,
  topic: string,
  options: { windowMs: number; now?: number },
): Promise<Map<string, LiveHost>> {
  const since = (options.now ?? Date.now()) - options.windowMs;
  const live = new Map<string, LiveHost>();
  await readSince(kafka, topic, since, (text) => {
    if (!text.includes("agent.heartbeat")) return;
    let event: Heartbeat;
    try {
      event = JSON.parse(text);
    } catch {
      return;
    }
    const name = event.host?.name;
    const at = Date.parse(event["@timestamp"] ?? "");
    if (event.event?.action !== "agent.heartbeat" || !name || !(at >= since)) return;
    if ((live.get(name)?.lastSeen ?? 0) > at) return;
    live.set(name, {
      name,
      lastSeen: at,
      groups: event.agent?.groups ?? [],
      labels: event.agent?.labels ?? {},
      services: Object.keys(event.agent?.services ?? {}),
    });
  });
  return live;
}

/** Waits until every one of `hosts` has a heartbeat on `topic` (what `lifeline rollout` sees as live). */
export async function waitForPresence(
  kafka: Kafka,
  topic: string,
  hosts: string[],
  timeoutMs = 60_000,
): Promise<void> {
  const { done, value: missing } = await poll(
    async () => {
      const live = await readPresence(kafka, topic, { windowMs: 60_000 }).catch(() => new Map());
      const missing = hosts.filter((host) => !live.has(host));
      return { done: missing.length === 0, value: missing };
    },
    { timeoutMs },
  );
  if (!done) throw new Error(`no heartbeat on ${topic} from ${missing.join(", ")}`);
}
