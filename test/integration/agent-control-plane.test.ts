import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { controlPartition } from "../../core/control-plane.ts";
import { topicNames } from "../../core/topics.ts";
import {
  agentWorkspace,
  fixture,
  freePort,
  killWorkspaceServices,
  type LifecycleEvent,
  makeCommand,
  publish,
  signed,
  waitForJournal,
  writeAgentConfig,
} from "../helpers/agent.ts";
import { type ProcessUnderTest, runLifeline, startLifeline } from "../helpers/cli.ts";
import { testKafka } from "../helpers/services.ts";

const completed = (events: LifecycleEvent[], id: string) =>
  events.filter((e) => e.lifeline.command_id === id && e.event.action === "command.completed");

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`${name} not in /metrics`);
  return Number(line.split(" ")[1]);
}

// The control topic is partitioned by host; each agent reads its own partition without a consumer group
// (agent/control-feed.ts, core/control-plane.ts).
describe("agent: reads only its host's partition of the control topic, with no consumer group", () => {
  afterAll(killWorkspaceServices);
  const kafka = testKafka();
  const running: ProcessUnderTest[] = [];
  afterEach(async () => {
    for (const agent of running.splice(0)) await agent.stop("SIGKILL");
  });

  it("two hosts on different partitions: each runs its own commands, reads none of the other's, leaves no group, and a command sent while it is down runs after its restart", async () => {
    const base = agentWorkspace("control");
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: topicNames(base.prefix).control, numPartitions: 6, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    // Two host names whose commands go to different partitions.
    let other = 0;
    while (controlPartition(`${base.host}-b${other}`, 6) === controlPartition(`${base.host}-a`, 6))
      other += 1;
    const hosts = [`${base.host}-a`, `${base.host}-b${other}`] as const;
    const workspaces = await Promise.all(
      hosts.map(async (host, i) => {
        const ws = { ...agentWorkspace(`control-${i}`), prefix: base.prefix, keys: base.keys, host };
        const port = await freePort();
        const http = await freePort();
        const config = writeAgentConfig(
          ws,
          [
            {
              name: "api",
              command: [process.execPath, fixture("well-behaved.mjs")],
              env: { PORT: String(port) },
              port,
            },
          ],
          { http: { port: http } },
        );
        return { ws, config, http };
      }),
    );
    const launch = (config: string) => {
      const agent = startLifeline(["agent", "--config", config], "agent started");
      running.push(agent);
      return agent;
    };
    const [a, b] = workspaces as [(typeof workspaces)[0], (typeof workspaces)[0]];
    const agentA = launch(a.config);
    await Promise.all([agentA.started, launch(b.config).started]);

    for (const { ws } of workspaces) {
      const position = JSON.parse(readFileSync(join(ws.stateDir, "control-position.json"), "utf8"));
      expect(position).toMatchObject({
        topic: topicNames(base.prefix).control,
        partitions: 6,
        partition: controlPartition(ws.host, 6),
      });
    }

    // Twenty commands for B, one for A.
    const forB = Array.from({ length: 20 }, () => makeCommand(b.ws, "status", "api"));
    const forA = makeCommand(a.ws, "status", "api");
    await publish(
      kafka,
      topicNames(base.prefix).control,
      ...forB.map((c) => signed(b.ws, c)),
      signed(a.ws, forA),
    );
    await waitForJournal(a.ws.journal, (e) => completed(e, forA.id).length === 1);
    await waitForJournal(b.ws.journal, (e) => forB.every((c) => completed(e, c.id).length === 1));
    // A read its one command and nothing of B's; B read its twenty.
    expect(await metric(a.http, "lifeline_agent_control_records_read_total")).toBe(1);
    expect(await metric(b.http, "lifeline_agent_control_records_read_total")).toBe(20);

    // A command for a group goes to every partition: `agent sign --publish` sends it as the controller would, and
    // both hosts (group "web") run it.
    const keyFile = join(base.dir, "signing.key");
    writeFileSync(keyFile, base.keys.privateKeyPem);
    const sign = await runLifeline([
      "agent",
      "sign",
      "--key",
      keyFile,
      "--key-id",
      "test-controller",
      "--action",
      "status",
      "--service",
      "api",
      "--group",
      "web",
      "--publish",
      "--topic-prefix",
      base.prefix,
    ]);
    expect(sign.stderr).toContain("partitions 0, 1, 2, 3, 4, 5");
    expect(sign.code).toBe(0);
    const forWeb = JSON.parse(sign.stdout).command.id as string;
    await waitForJournal(a.ws.journal, (e) => completed(e, forWeb).length === 1);
    await waitForJournal(b.ws.journal, (e) => completed(e, forWeb).length === 1);

    const groups = await admin.listGroups();
    expect(groups.filter((g) => hosts.some((h) => g.includes(h)) || g.includes(base.prefix))).toEqual([]);

    // A goes down; a command for it is sent meanwhile; after its restart it runs that one, and only that one.
    await agentA.stop("SIGTERM");
    running.splice(running.indexOf(agentA), 1);
    const whileDown = makeCommand(a.ws, "status", "api");
    await publish(kafka, topicNames(base.prefix).control, signed(a.ws, whileDown));
    await launch(a.config).started;
    const events = await waitForJournal(a.ws.journal, (e) => completed(e, whileDown.id).length === 1);
    expect(completed(events, forA.id)).toHaveLength(1);
    expect(events.filter((e) => e.event.action === "command.duplicate")).toEqual([]);
    expect(existsSync(join(a.ws.stateDir, "control-position.json"))).toBe(true);
    await admin.disconnect();
  });
});
