import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import {
  agentWorkspace,
  fixture,
  freePort,
  type LifecycleEvent,
  readJournal,
  writeAgentConfig,
} from "../helpers/agent.ts";
import { runLifeline } from "../helpers/cli.ts";
import { type ProcessUnderTest, startLifeline } from "../helpers/indexer.ts";
import { uniqueName } from "../helpers/services.ts";

interface RolloutJson {
  status: string;
  traceId: string;
  steps: Array<{
    host: string;
    service: string;
    action: string;
    status: string;
    commandId: string;
    reason?: string;
  }>;
  rollback: Array<{ host: string; service: string; status: string }>;
  haltReason?: string;
}

describe("rollout across three agents: db ← api ← web", { timeout: 240_000 }, () => {
  const running: ProcessUnderTest[] = [];
  afterAll(async () => {
    for (const process of running) await process.stop("SIGKILL");
  });

  async function fleet(options: { blockApiPort?: number } = {}) {
    const base = agentWorkspace("rollout");
    const prefix = base.prefix;
    const tiers = ["db", "api", "web"] as const;
    const hosts: Record<string, { host: string; journal: string; port: number }> = {};
    for (const tier of tiers) {
      const ws = { ...agentWorkspace(`rollout-${tier}`), keys: base.keys, prefix };
      const port = await freePort();
      writeAgentConfig(ws, [
        {
          name: tier,
          command: [process.execPath, fixture("well-behaved.mjs")],
          env: { PORT: String(port) },
          // A port someone else holds never closes: the stop cannot be verified, so it fails.
          port: tier === "api" && options.blockApiPort ? options.blockApiPort : port,
          gracePeriodMs: 3_000,
          health: { tcp: { port }, periodMs: 100 },
        },
      ]);
      const agent = startLifeline(["agent", "--config", join(ws.dir, "agent.yaml")], "agent started");
      running.push(agent);
      await agent.started;
      hosts[tier] = { host: ws.host, journal: ws.journal, port };
    }
    const shipperConfig = join(base.dir, "shipper.yaml");
    writeFileSync(
      shipperConfig,
      stringify({
        host: { name: "shipper" },
        checkpointDir: join(base.dir, "shipper-state"),
        topicPrefix: prefix,
        reconcileIntervalMs: 200,
        limits: { lingerMs: 5 },
        inputs: [
          { name: "journals", kind: "lifecycle", paths: tiers.map((t) => hosts[t]?.journal as string) },
        ],
      }),
    );
    const shipper = startLifeline(["shipper", "--config", shipperConfig], "shipper started");
    running.push(shipper);
    await shipper.started;
    const keyFile = join(base.dir, "controller.key");
    writeFileSync(keyFile, base.keys.privateKeyPem);
    const fleetFile = join(base.dir, "fleet.yaml");
    writeFileSync(
      fleetFile,
      stringify({ hosts: tiers.map((t) => ({ name: hosts[t]?.host, groups: ["shop"], services: [t] })) }),
    );
    const rollout = async (action: string, extra: Record<string, unknown> = {}) => {
      const planFile = join(base.dir, `${action}-${uniqueName("plan")}.yaml`);
      writeFileSync(
        planFile,
        stringify({
          name: `shop-${action}`,
          action,
          targets: { groups: ["shop"] },
          services: [{ name: "db" }, { name: "api", dependsOn: ["db"] }, { name: "web", dependsOn: ["api"] }],
          deadlines: { deliveryMs: 10_000, executionMs: 15_000 },
          ...extra,
        }),
      );
      const result = await runLifeline(
        [
          "rollout",
          "--plan",
          planFile,
          "--fleet",
          fleetFile,
          "--key",
          keyFile,
          "--key-id",
          "test-controller",
          "--json",
        ],
        { ...process.env, LIFELINE_TOPIC_PREFIX: prefix },
        200_000,
      );
      if (!result.stdout.trim())
        throw new Error(`rollout printed nothing (exit ${result.code}):\n${result.stderr.slice(-3000)}`);
      return { code: result.code, json: JSON.parse(result.stdout) as RolloutJson, stderr: result.stderr };
    };
    return { hosts, rollout };
  }

  const completedAt = (journal: string, commandId: string) =>
    Date.parse(
      readJournal(journal).find(
        (e: LifecycleEvent) => e.lifeline.command_id === commandId && e.event.action === "command.completed",
      )?.["@timestamp"] ?? "0",
    );
  const receivedAt = (journal: string, commandId: string) =>
    Date.parse(
      readJournal(journal).find(
        (e: LifecycleEvent) => e.lifeline.command_id === commandId && e.event.action === "command.received",
      )?.["@timestamp"] ?? "0",
    );

  it("starts in dependency order gated on health, stops in reverse, every command under the rollout's trace", async () => {
    const { hosts, rollout } = await fleet();
    const start = await rollout("start");
    expect(start.code).toBe(0);
    expect(start.json.status).toBe("success");
    expect(start.json.steps.map((s) => `${s.service}:${s.status}`)).toEqual([
      "db:success",
      "api:success",
      "web:success",
    ]);
    const [db, api, web] = start.json.steps;
    // api was not even asked before db was healthy; web not before api.
    expect(receivedAt(hosts.api?.journal as string, api?.commandId as string)).toBeGreaterThanOrEqual(
      completedAt(hosts.db?.journal as string, db?.commandId as string),
    );
    expect(receivedAt(hosts.web?.journal as string, web?.commandId as string)).toBeGreaterThanOrEqual(
      completedAt(hosts.api?.journal as string, api?.commandId as string),
    );
    for (const tier of ["db", "api", "web"] as const) {
      const events = readJournal(hosts[tier]?.journal as string).filter((e) => e.lifeline.command_id);
      expect(events.every((e) => e.trace?.id === start.json.traceId)).toBe(true);
    }

    const stop = await rollout("stop");
    expect(stop.json.status).toBe("success");
    expect(stop.json.steps.map((s) => s.service)).toEqual(["web", "api", "db"]);
    for (const tier of ["db", "api", "web"] as const)
      await expect(fetch(`http://127.0.0.1:${hosts[tier]?.port}/`)).rejects.toThrow();
  });

  it("a failing stop in wave 2 halts the rollout and the rollback starts again what was stopped", async () => {
    const blocker = createServer();
    const blocked = await freePort();
    await new Promise<void>((resolve) => blocker.listen(blocked, "127.0.0.1", resolve));
    try {
      const { hosts, rollout } = await fleet({ blockApiPort: blocked });
      expect((await rollout("start")).json.status).toBe("success");
      const stop = await rollout("stop", { rollback: "start-stopped" });
      expect(stop.code).toBe(1);
      expect(stop.json.status).toBe("halted");
      expect(stop.json.steps.map((s) => `${s.service}:${s.status}`)).toEqual([
        "web:success",
        "api:failed",
        "db:cancelled",
      ]);
      expect(stop.json.steps[1]?.reason).toContain(`port ${blocked} still open`);
      expect(stop.json.rollback.map((s) => `${s.service}:${s.status}`)).toEqual(["web:success"]);
      // db was never touched, web is serving again.
      expect((await fetch(`http://127.0.0.1:${hosts.db?.port}/`)).ok).toBe(true);
      expect((await fetch(`http://127.0.0.1:${hosts.web?.port}/`)).ok).toBe(true);
    } finally {
      blocker.close();
    }
  });
});
