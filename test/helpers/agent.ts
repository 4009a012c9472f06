import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { controlMessages, controlPartitionCount } from "../../core/control-plane.ts";
import type { KafkaPort as Kafka } from "../../core/kafka/port.ts";

export { waitForPresence } from "../../controller/presence.ts";

import { type Command, generateSigningKeys, type SignedCommand, signCommand } from "../../core/commands.ts";
import { formatTraceparent, newSpanId, newTraceId } from "../../core/trace-context.ts";
import { lifecycleRecord } from "./lifecycle.ts";
import { uniqueName } from "./services.ts";

export const fixture = (name: string) =>
  fileURLToPath(new URL(`../fixtures/services/${name}`, import.meta.url));

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface LifecycleEvent {
  "@timestamp": string;
  event: { action: string; outcome: string; reason?: string; duration?: number };
  service?: { name: string };
  trace?: { id: string };
  span?: { id: string };
  parent?: { id: string };
  process?: { pid?: number };
  lifeline: { command_id?: string; rollout_id?: string };
  message: string;
}

export function readJournal(path: string): LifecycleEvent[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    // Not written yet, or renamed by a rotation this instant (seen in a loaded run): nothing to read now.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  // The agent appends whole lines, but a read racing its write can see part of the last one (seen in CI:
  // "Unterminated string in JSON"): only lines the newline has closed are read; the rest is read next poll.
  const complete = text.slice(0, text.lastIndexOf("\n") + 1);
  return complete
    .split("\n")
    .filter(Boolean)
    .map((line) => lifecycleRecord<LifecycleEvent>(line));
}

/** The journal is a file the agent appends to; poll it until `done` holds (the agent announces nothing else). */
export async function waitForJournal(
  path: string,
  done: (events: LifecycleEvent[]) => boolean,
  timeoutMs = 30_000,
): Promise<LifecycleEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = readJournal(path);
    if (done(events)) return events;
    if (Date.now() > deadline) {
      throw new Error(
        `journal condition not met in ${timeoutMs} ms; last events:\n${events
          .slice(-8)
          .map((e) => `${e.event.action} ${e.event.outcome} ${e.event.reason ?? ""}`)
          .join("\n")}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const workspaces: string[] = [];

/**
 * Agents leave their services running when they stop (by design: an agent restart must not take services
 * down), so a test ends them itself: SIGKILL to the process group of every pid file its workspaces hold.
 */
export function killWorkspaceServices(): void {
  for (const stateDir of workspaces.splice(0)) {
    const run = join(stateDir, "run");
    if (!existsSync(run)) continue;
    for (const file of readdirSync(run).filter((f) => f.endsWith(".pid"))) {
      try {
        const { pid } = JSON.parse(readFileSync(join(run, file), "utf8")) as { pid: number };
        process.kill(-pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
}

export function agentWorkspace(name: string) {
  const dir = mkdtempSync(join(tmpdir(), `lifeline-agent-${name}-`));
  workspaces.push(join(dir, "state"));
  const keys = generateSigningKeys();
  const prefix = uniqueName(`test-${name}`);
  const host = uniqueName("host");
  return {
    dir,
    keys,
    prefix,
    host,
    stateDir: join(dir, "state"),
    journal: join(dir, "state", "journal.ndjson"),
  };
}

export function writeAgentConfig(
  ws: ReturnType<typeof agentWorkspace>,
  services: Record<string, unknown>[],
  settings: Record<string, unknown> = {},
): string {
  const file = join(ws.dir, "agent.yaml");
  writeFileSync(
    file,
    stringify({
      host: { name: ws.host, groups: ["web"] },
      stateDir: ws.stateDir,
      topicPrefix: ws.prefix,
      trustedKeys: [{ id: "test-controller", publicKey: ws.keys.publicKeyPem }],
      heartbeatIntervalMs: 10_000,
      services,
      ...settings,
    }),
  );
  return file;
}

export function makeCommand(
  ws: ReturnType<typeof agentWorkspace>,
  action: Command["action"],
  service: string,
  overrides: Partial<Command> = {},
): Command {
  const now = Date.now();
  return {
    id: randomUUID(),
    action,
    service,
    target: { hosts: [ws.host] },
    parameters: {},
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 60_000).toISOString(),
    deadline: new Date(now + 120_000).toISOString(),
    issuer: "test",
    traceparent: formatTraceparent({ traceId: newTraceId(), spanId: newSpanId(), flags: 1 }),
    ...overrides,
  };
}

export async function publish(
  kafka: Kafka,
  topic: string,
  ...commands: Array<SignedCommand | string>
): Promise<void> {
  const partitions = await controlPartitionCount(kafka, topic);
  const producer = kafka.producer();
  await producer.connect();
  // As the controller sends: to the partitions of the hosts a command names, anything else to every partition.
  await producer.send({ topic, acks: -1, messages: commands.flatMap((c) => controlMessages(c, partitions)) });
  await producer.disconnect();
}

export function signed(ws: ReturnType<typeof agentWorkspace>, command: Command): SignedCommand {
  return signCommand(command, "test-controller", ws.keys.privateKeyPem);
}
