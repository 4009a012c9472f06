import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { readRolloutHistory } from "../../controller/history.ts";
import type { PlannedStep } from "../../controller/plan.ts";
import { generateSigningKeys, signCommand } from "../../core/commands.ts";
import { isControllerEvent } from "../../core/events.ts";
import { readSince } from "../../core/kafka/read-since.ts";
import { topicNames } from "../../core/topics.ts";
import {
  agentWorkspace,
  fixture,
  freePort,
  killWorkspaceServices,
  type LifecycleEvent,
  readJournal,
  waitForPresence,
  writeAgentConfig,
} from "../helpers/agent.ts";
import { lifelineBin, runLifeline } from "../helpers/cli.ts";
import { type ProcessUnderTest, startLifeline } from "../helpers/indexer.ts";
import { topicLifecycleRecord } from "../helpers/lifecycle.ts";
import { testKafka, uniqueName } from "../helpers/services.ts";

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

const running: ProcessUnderTest[] = [];

describe("rollout across three agents: db ← api ← web", { timeout: 240_000 }, () => {
  afterAll(async () => {
    for (const process of running) await process.stop("SIGKILL");
    killWorkspaceServices();
  });

  async function fleet(
    options: {
      blockApiPort?: number;
      indexer?: boolean;
      stubbornWeb?: boolean;
      secondApi?: boolean;
      /** api fails its first start (exits at once), then starts. */
      flakyApi?: boolean;
      /** web becomes healthy, then dies 1.5 s later. */
      dyingWeb?: boolean;
    } = {},
  ) {
    const base = agentWorkspace("rollout");
    const prefix = base.prefix;
    // api2: a second host running api (for a canary), when asked.
    const tiers = (options.secondApi ? ["db", "api", "api2", "web"] : ["db", "api", "web"]) as Array<
      "db" | "api" | "api2" | "web"
    >;
    const serviceOf = (tier: string) => (tier === "api2" ? "api" : tier);
    const fixtureFor = (tier: string) => {
      if (tier === "web" && options.stubbornWeb) return "stubborn.mjs";
      if (tier === "web" && options.dyingWeb) return "dies-after.mjs";
      if (tier === "api" && options.flakyApi) return "flaky-start.mjs";
      return "well-behaved.mjs";
    };
    const hosts: Record<string, { host: string; journal: string; port: number }> = {};
    const agents: Record<string, ProcessUnderTest> = {};
    for (const tier of tiers) {
      const ws = { ...agentWorkspace(`rollout-${tier}`), keys: base.keys, prefix };
      const port = await freePort();
      const stubborn = tier === "web" && options.stubbornWeb;
      writeAgentConfig(ws, [
        {
          name: serviceOf(tier),
          // web may ignore SIGTERM: its stop then needs the escalation.
          command: [process.execPath, fixture(fixtureFor(tier))],
          env: { PORT: String(port), MARKER: join(ws.dir, "first-start") },
          // A port someone else holds never closes: the stop cannot be verified, so it fails.
          port: tier === "api" && options.blockApiPort ? options.blockApiPort : port,
          gracePeriodMs: stubborn ? 1_000 : 3_000,
          // Up to 3 s to listen: on two cores busy with other test files, the fixture's node took over 300 ms.
          health: { tcp: { port }, periodMs: 100, failureThreshold: 30 },
        },
      ]);
      const agent = startLifeline(["agent", "--config", join(ws.dir, "agent.yaml")], "agent started");
      running.push(agent);
      await agent.started;
      hosts[tier] = { host: ws.host, journal: ws.journal, port };
      agents[tier] = agent;
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
    const namespace = uniqueName("rollout").replaceAll("-", "_");
    if (options.indexer) {
      const indexerConfig = join(base.dir, "indexer.yaml");
      writeFileSync(
        indexerConfig,
        stringify({
          topicPrefix: prefix,
          groupId: uniqueName("rollout-indexer"),
          namespace,
          indices: { replicas: 0, mode: "indices" },
        }),
      );
      const indexer = startLifeline(["indexer", "--config", indexerConfig], "indexer started");
      running.push(indexer);
      await indexer.started;
    }
    await waitForPresence(
      testKafka(),
      topicNames(prefix).lifecycle,
      tiers.map((t) => hosts[t]?.host as string),
    );
    const keyFile = join(base.dir, "controller.key");
    writeFileSync(keyFile, base.keys.privateKeyPem);
    const fleetFile = join(base.dir, "fleet.yaml");
    writeFileSync(
      fleetFile,
      stringify({
        hosts: tiers.map((t) => ({ name: hosts[t]?.host, groups: ["shop"], services: [serviceOf(t)] })),
      }),
    );
    const env = { ...process.env, LIFELINE_TOPIC_PREFIX: prefix };
    const rolloutArgs = (action: string, extra: Record<string, unknown> = {}) => {
      const planFile = join(base.dir, `${action}-${uniqueName("plan")}.yaml`);
      writeFileSync(
        planFile,
        stringify({
          name: `shop-${action}`,
          action,
          targets: { groups: ["shop"] },
          services: [{ name: "db" }, { name: "api", dependsOn: ["db"] }, { name: "web", dependsOn: ["api"] }],
          // Generous: the suite runs files in parallel on two cores next to Kafka and Elasticsearch.
          deadlines: { deliveryMs: 20_000, executionMs: 30_000 },
          ...extra,
        }),
      );
      return [
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
      ];
    };
    const rollout = async (action: string, extra: Record<string, unknown> = {}) => {
      const result = await runLifeline(rolloutArgs(action, extra), env, 200_000);
      if (!result.stdout.trim())
        throw new Error(`rollout printed nothing (exit ${result.code}):\n${result.stderr.slice(-3000)}`);
      return { code: result.code, json: JSON.parse(result.stdout) as RolloutJson, stderr: result.stderr };
    };
    return { hosts, agents, rollout, rolloutArgs, env, prefix, dir: base.dir, keyFile, namespace };
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
    const { hosts, rollout, namespace } = await fleet({ indexer: true });
    // Groups a controller or a CLI reader would make (others' tests run meanwhile and make their own).
    const cliGroups = async () => {
      const admin = testKafka().admin();
      await admin.connect();
      const groups = await admin.listGroups();
      await admin.disconnect();
      return groups.filter((g) => /^lifeline-(controller|decision|reader)-/.test(g));
    };
    const groupsBefore = new Set(await cliGroups());
    const start = await rollout("start");
    expect(start.code, `${start.stderr}\n${JSON.stringify(start.json.steps)}`).toBe(0);
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

    // The stop's timeline read back from Elasticsearch: what happened, in order, all under its trace id.
    const rolloutId = (stop.json as RolloutJson & { rolloutId: string }).rolloutId;
    // Neither run, nor its presence and history reads, left a consumer group (or committed offsets) on the broker.
    expect((await cliGroups()).filter((g) => !groupsBefore.has(g))).toEqual([]);
    const timeline = await readTimeline(
      rolloutId,
      namespace,
      (entries) =>
        entries.some((e) => e.action === "rollout.completed") &&
        entries.filter((e) => e.action === "step.completed").length === 3,
    );
    expect(timeline.entries.every((e) => e.traceId === stop.json.traceId)).toBe(true);
    // Every step has exactly one final outcome in Elasticsearch, under the rollout's trace, with its evidence.
    const finals = (
      timeline.entries as Array<{ action: string; stepStatus?: string; evidence?: string }>
    ).filter((e) => e.action === "step.completed");
    expect(finals.map((e) => e.stepStatus)).toEqual(["success", "success", "success"]);
    for (const final of finals)
      expect(final.evidence).toMatch(/^command\.completed from \S+: process group \d+ gone/);
    const completions = timeline.entries.filter((e) => e.action === "command.completed").map((e) => e.host);
    expect(completions).toEqual([hosts.web?.host, hosts.api?.host, hosts.db?.host]);
    const order = timeline.entries.map((e) => e.action);
    expect(order[0]).toBe("rollout.planned");
    expect(order.at(-1)).toBe("rollout.completed");
    for (const tier of ["web", "api", "db"] as const) {
      const steps = timeline.entries.filter((e) => e.host === hosts[tier]?.host).map((e) => e.action);
      expect(steps).toEqual([
        "command.received",
        "stop.requested",
        "stop.signal_sent",
        "stop.completed",
        "command.completed",
      ]);
    }
  });

  it("a failing stop in wave 2 halts the rollout and the rollback starts again what was stopped", async () => {
    const blocker = createServer();
    const blocked = await freePort();
    await new Promise<void>((resolve) => blocker.listen(blocked, "127.0.0.1", resolve));
    try {
      const { hosts, rollout, prefix, namespace, env } = await fleet({
        blockApiPort: blocked,
        indexer: true,
      });
      const started = await rollout("start");
      expect(started.json.status).toBe("success");
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
      // The step that will not run has its own final event, with the reason.
      const finals = await stepEvents(prefix, (stop.json as RolloutJson & { rolloutId: string }).rolloutId);
      expect(finals.map((e) => `${e.lifeline.step?.service}:${e.lifeline.step_status}`)).toEqual([
        "web:success",
        "api:failed",
        "db:cancelled",
        "web:success",
      ]);
      expect(finals[2]?.event.reason).toMatch(/db on .*: cancelled \(1 of 3 steps failed/);
      // And in Elasticsearch, on the timeline: the cancelled step with its reason, under the rollout's trace.
      const stopId = (stop.json as RolloutJson & { rolloutId: string }).rolloutId;
      let entries: Array<{ action: string; stepStatus?: string; reason?: string; traceId?: string }> = [];
      const until = Date.now() + 60_000;
      while (Date.now() < until && entries.filter((e) => e.action === "step.completed").length < 4) {
        const read = await runLifeline(["timeline", "--rollout", stopId, "--namespace", namespace, "--json"]);
        if (read.code === 0) entries = JSON.parse(read.stdout).entries;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      const cancelled = entries.filter((e) => e.action === "step.completed" && e.stepStatus === "cancelled");
      expect(cancelled).toHaveLength(1);
      expect(cancelled[0]?.reason).toMatch(/cancelled \(1 of 3 steps failed, timed out or unknown/);
      expect(cancelled[0]?.traceId).toBe(stop.json.traceId);
      // rollout list and status: the finished start and the halted stop, step by step with their evidence.
      const startId = (started.json as RolloutJson & { rolloutId: string }).rolloutId;
      const listed = await runLifeline(["rollout", "list", "--json"], env);
      expect(listed.code, listed.stderr).toBe(0);
      const rows = JSON.parse(listed.stdout).rollouts as Array<{ rolloutId: string; status: string }>;
      expect(rows.filter((r) => [startId, stopId].includes(r.rolloutId)).map((r) => r.status)).toEqual([
        "halted",
        "success",
      ]);
      const status = await runLifeline(["rollout", "status", stopId], env);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(new RegExp(`^${stopId} {2}stop shop-stop {2}halted `));
      expect(status.stdout).toContain(
        `: failed  (command.completed from ${hosts.api?.host}: connect to 127.0.0.1:${blocked} succeeds)`,
      );
      expect(status.stdout).toContain(`wave 3  stop db on ${hosts.db?.host}: cancelled  (not sent`);
      // db was never touched, web is serving again.
      expect((await fetch(`http://127.0.0.1:${hosts.db?.port}/`)).ok).toBe(true);
      expect((await fetch(`http://127.0.0.1:${hosts.web?.port}/`)).ok).toBe(true);
    } finally {
      blocker.close();
    }
  });

  it("past the failure budget mid-wave, nothing more of the wave is sent", async () => {
    const { hosts, env, dir, keyFile } = await fleet();
    // All three hosts are said to run api; only one does: the others refuse its commands (unknown_service).
    const claims = join(dir, "claims.yaml");
    writeFileSync(
      claims,
      stringify({
        hosts: Object.values(hosts).map((h) => ({ name: h.host, groups: ["shop"], services: ["api"] })),
      }),
    );
    const planFile = join(dir, "one-wave.yaml");
    writeFileSync(
      planFile,
      stringify({
        name: "one-wave",
        action: "stop",
        targets: { groups: ["shop"] },
        services: [{ name: "api" }],
        waves: { batchSize: 3, maxInFlight: 1 },
        deadlines: { deliveryMs: 20_000, executionMs: 30_000 },
      }),
    );
    const run = await runLifeline(
      [
        "rollout",
        "--plan",
        planFile,
        "--fleet",
        claims,
        "--key",
        keyFile,
        "--key-id",
        "test-controller",
        "--json",
      ],
      env,
      200_000,
    );
    const result = JSON.parse(run.stdout) as RolloutJson & { rolloutId: string };
    expect(result.status).toBe("halted");
    const statuses = result.steps.map((step) => step.status);
    // One wave of three: the first failure halts it (budget 0); what comes after it is cancelled, never sent.
    const failedAt = statuses.indexOf("failed");
    expect(failedAt).toBeGreaterThanOrEqual(0);
    expect(failedAt).toBeLessThan(2);
    expect(statuses.slice(failedAt + 1)).toEqual(Array(2 - failedAt).fill("cancelled"));
    const status = await runLifeline(["rollout", "status", result.rolloutId, "--json"], env);
    const recorded = JSON.parse(status.stdout) as { halted?: string; stepStates: Array<{ status: string }> };
    expect(recorded.halted).toMatch(/^1 of 3 steps failed/);
    // What was sent: the steps up to the failure, and no more.
    expect(recorded.stepStates.filter((step) => step.status !== "cancelled")).toHaveLength(failedAt + 1);
  });

  it("the record says only what happened: no hosts is an error, a forged rejection changes nothing, escalations are counted, an abort stops what is not yet sent", async () => {
    const { hosts, rollout, rolloutArgs, env, prefix, keyFile } = await fleet({ stubbornWeb: true });
    const kafka = testKafka();

    // A plan that matches no host (misspelt group): an error, dry run or not, never a success of nothing.
    for (const dry of [false, true]) {
      const args = rolloutArgs("restart", { targets: { groups: ["shpo"] } });
      const empty = await runLifeline(dry ? [...args, "--dry-run"] : args, env);
      expect(empty.code, empty.stderr).toBe(2);
      expect(empty.stderr).toContain(`matches no host: targets {"groups":["shpo"]}`);
    }
    expect((await rollout("start")).json.status).toBe("success");

    // Whoever can write to the control topic republishes a tampered copy of each in-flight command.
    const control = kafka.consumer({ groupId: uniqueName("tamperer") });
    const tampered: string[] = [];
    await control.connect();
    await control.subscribe({ topic: topicNames(prefix).control, fromBeginning: false });
    const forger = kafka.producer();
    await forger.connect();
    const following = control.firstFetch();
    await control.run({
      eachMessage: async ({ message }) => {
        const copy = JSON.parse(String(message.value));
        if (copy.command.issuer === "mallory") return;
        copy.command.issuer = "mallory";
        tampered.push(copy.command.id);
        await forger.send({
          topic: topicNames(prefix).control,
          messages: [{ key: message.key, value: JSON.stringify(copy) }],
        });
      },
    });
    await following;
    const restart = await rollout("restart");
    await control.disconnect();
    await forger.disconnect();
    expect(restart.code, restart.stderr).toBe(0);
    expect(restart.json.steps.map((s) => `${s.service}:${s.status}`)).toEqual([
      "db:success",
      "api:success",
      "web:success",
    ]);
    expect(tampered).toHaveLength(3);
    const forged = readJournal(hosts.db?.journal as string).find(
      (e) => e.event.action === "command.rejected" && e.event.reason === "bad_signature",
    ) as LifecycleEvent & { lifeline: { claimed?: { command_id?: string } } };
    expect(forged.lifeline.claimed?.command_id).toBe(restart.json.steps[0]?.commandId);
    expect(forged.lifeline.command_id).toBeUndefined();
    // web ignored SIGTERM: its step succeeded, and the escalation is counted, not hidden.
    const json = restart.json as RolloutJson & { summary: { escalated: number; success: number } };
    expect(json.steps.map((s) => (s as { escalated?: boolean }).escalated)).toEqual([false, false, true]);
    expect(json.summary).toMatchObject({ success: 3, escalated: 1 });
    expect(restart.stderr).toMatch(/web: success \(escalated\)/);

    // Abort with the controller's own key while wave 1 is under way. The abort CLI takes a few seconds to reach the
    // controller (it reads the rollout's history and joins the topic), so which steps were sent by then depends on
    // the machine: what must hold is that steps sent before the abort finish, and none is sent after it. A soak of
    // 8 s per step keeps the last wave out of reach.
    const aborting = controllerProcess(rolloutArgs("restart", { waves: { soakMs: 8_000 } }), env);
    const rolloutId = (await aborting.waitFor(/rollout (\S+) started/))[1] as string;
    await aborting.waitFor(/wave 1\/3/);
    const abort = await runLifeline(
      [
        "rollout",
        "abort",
        rolloutId,
        "--key",
        keyFile,
        "--key-id",
        "test-controller",
        "--reason",
        "window over",
      ],
      env,
    );
    expect(abort.code, abort.stderr).toBe(0);
    expect(abort.stdout).toMatch(/taken by the controller/);
    expect(await aborting.exited).toBe(1);
    const aborted = JSON.parse(aborting.stdout()) as RolloutJson;
    expect(aborted.status).toBe("cancelled");
    const statuses = aborted.steps.map((s) => s.status);
    // db was sent before the abort and finished; web, two soaks later, was never sent; in between, either.
    expect(statuses[0]).toBe("success");
    expect(statuses[2]).toBe("cancelled");
    expect(statuses.join(",")).toMatch(/^success,(success|cancelled),cancelled$/);
    const cancelled = aborted.steps.filter((s) => s.status === "cancelled");
    for (const step of cancelled) {
      expect(step.reason).toBe("aborted by test-controller: window over");
      // A cancelled step's agent never received anything of this rollout.
      const tier = step.service as "db" | "api" | "web";
      expect(
        readJournal(hosts[tier]?.journal as string).some((e) => e.lifeline.rollout_id === rolloutId),
      ).toBe(false);
    }
    // On the topic: every command.sent comes before rollout.aborted, and every step has its one final record.
    const events: Array<{ event: { action: string }; lifeline: { rollout_id?: string } }> = [];
    await readSince(testKafka(), topicNames(prefix).lifecycle, Date.now() - 600_000, (text) => {
      const event = topicLifecycleRecord<ControllerRecord>(text);
      if (event.lifeline?.rollout_id === rolloutId) events.push(event);
    });
    const order = events.map((e) => e.event.action);
    expect(order.lastIndexOf("command.sent")).toBeLessThan(order.indexOf("rollout.aborted"));
    const finals = await stepEvents(prefix, rolloutId);
    expect(finals.map((e) => `${e.lifeline.step?.service}:${e.lifeline.step_status}`).sort()).toEqual(
      aborted.steps.map((s) => `${s.service}:${s.status}`).sort(),
    );
    // An ended rollout cannot be aborted: said so, exit 1.
    const late = await runLifeline(
      ["rollout", "abort", rolloutId, "--key", keyFile, "--key-id", "test-controller"],
      env,
    );
    expect(late.code).toBe(1);
    expect(late.stderr).toContain(`rollout ${rolloutId} already completed (cancelled)`);
  });

  it("independent services run side by side while a dependant waits; a pause holds the rollout at any moment until continued", async () => {
    const { hosts, rollout, rolloutArgs, env, prefix, keyFile } = await fleet();
    // db and api depend on nothing: sent together. web waits for api.
    const start = await rollout("start", {
      services: [{ name: "db" }, { name: "api" }, { name: "web", dependsOn: ["api"] }],
    });
    expect(start.code, start.stderr).toBe(0);
    const startId = (start.json as RolloutJson & { rolloutId: string }).rolloutId;
    const byService: Record<string, string> = Object.fromEntries(
      start.json.steps.map((s) => [s.service, s.commandId]),
    );
    const id = (service: string) => byService[service] ?? "";
    const events = await rolloutEvents(prefix, startId);
    const at = (action: string, service: string) =>
      events.findIndex((e) => e.event.action === action && e.lifeline.step?.service === service);
    // The controller sent both before either settled...
    expect(at("command.sent", "api")).toBeLessThan(at("step.completed", "db"));
    expect(at("command.sent", "db")).toBeLessThan(at("step.completed", "api"));
    // ...their agents' timelines overlap...
    const dbJournal = hosts.db?.journal as string;
    const apiJournal = hosts.api?.journal as string;
    expect(receivedAt(dbJournal, id("db"))).toBeLessThan(completedAt(apiJournal, id("api")));
    expect(receivedAt(apiJournal, id("api"))).toBeLessThan(completedAt(dbJournal, id("db")));
    // ...and web was not asked before api was healthy.
    expect(receivedAt(hosts.web?.journal as string, id("web"))).toBeGreaterThanOrEqual(
      completedAt(apiJournal, id("api")),
    );

    // A stop (web, then api, then db) with a soak after each step: paused during web's soak, it begins api's
    // wave when the soak ends and sends nothing until continued.
    const stopping = controllerProcess(rolloutArgs("stop", { waves: { soakMs: 8_000 } }), env);
    const stopId = (await stopping.waitFor(/rollout (\S+) started/))[1] as string;
    await stopping.waitFor(/ web: success/);
    const signer = ["--key", keyFile, "--key-id", "test-controller"];
    const paused = await runLifeline(["rollout", "pause", stopId, ...signer, "--reason", "look first"], env);
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toContain("taken by the controller");
    await stopping.waitFor(/paused: paused by test-controller: look first/);
    await stopping.waitFor(/wave 2\/3: stop api/);
    const continued = await runLifeline(["rollout", "continue", stopId, ...signer], env);
    expect(continued.code, continued.stderr).toBe(0);
    expect(await stopping.exited).toBe(0);
    const stopEvents = await rolloutEvents(prefix, stopId);
    const actions = stopEvents.map(
      (e) => `${e.event.action}${e.lifeline.step ? `:${e.lifeline.step.service}` : ""}`,
    );
    expect(actions.indexOf("rollout.paused")).toBeGreaterThan(actions.indexOf("step.completed:web"));
    expect(actions.indexOf("command.sent:api")).toBeGreaterThan(actions.indexOf("rollout.continued"));
    expect(actions.filter((a) => a.startsWith("step.completed"))).toEqual([
      "step.completed:web",
      "step.completed:api",
      "step.completed:db",
    ]);
    expect(await listed(env)).toEqual({ [startId]: "success", [stopId]: "success" });
    // Continuing what is not paused is refused, and said so.
    const again = await runLifeline(["rollout", "continue", stopId, ...signer], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("already completed");
  });

  it("a canary goes first and the rest of its service waits at the canary's gate until approved", async () => {
    const { hosts, rolloutArgs, env, dir } = await fleet({ secondApi: true });
    const approver = generateSigningKeys();
    const approverKey = join(dir, "approver.key");
    writeFileSync(approverKey, approver.privateKeyPem);
    const [canaryTier, restTier] = [hosts.api, hosts.api2].sort((a, b) =>
      (a?.host ?? "").localeCompare(b?.host ?? ""),
    );
    const controller = controllerProcess(
      rolloutArgs("start", {
        canary: { hosts: 1, gate: "approval" },
        approvers: [{ id: "oncall", publicKey: approver.publicKeyPem }],
      }),
      env,
    );
    const rolloutId = (await controller.waitFor(/rollout (\S+) started/))[1] as string;
    await controller.waitFor(/waiting for approval before wave 3\/4/);
    // The canary ran and is healthy; the other api host was not asked.
    expect(controller.stderr()).toContain(`${canaryTier?.host} api: success`);
    expect(await (await fetch(`http://127.0.0.1:${canaryTier?.port}/`)).status).toBe(200);
    const status = JSON.parse((await runLifeline(["rollout", "status", rolloutId, "--json"], env)).stdout);
    expect(
      status.stepStates.map(
        (s: { host: string; service: string; status: string }) => `${s.service}:${s.status}`,
      ),
    ).toEqual(["db:success", "api:success", "api:not sent", "web:not sent"]);
    expect(readJournal(restTier?.journal as string).some((e) => e.lifeline.rollout_id === rolloutId)).toBe(
      false,
    );
    expect(await listed(env)).toEqual({ [rolloutId]: "open" });
    const approved = await runLifeline(
      ["rollout", "approve", rolloutId, "--wave", "3", "--key", approverKey, "--key-id", "oncall"],
      env,
    );
    expect(approved.code, approved.stderr).toBe(0);
    expect(await controller.exited).toBe(0);
    const result = JSON.parse(controller.stdout()) as RolloutJson;
    expect(result.status).toBe("success");
    expect(result.steps.map((s) => `${s.host === canaryTier?.host ? "canary " : ""}${s.service}`)).toEqual([
      "db",
      "canary api",
      "api",
      "web",
    ]);
  });

  it("availability floor: with maxUnavailable 1, two api restarts run one after the other, and a stop takes down one api and leaves the other running, saying why", async () => {
    const { hosts, rollout, prefix } = await fleet({ secondApi: true });
    const start = await rollout("start");
    expect(start.code, start.stderr).toBe(0);
    const apiOnly = { services: [{ name: "api" }], waves: { maxInFlight: 2, maxUnavailable: 1 } };

    // maxInFlight alone would send both at once; the floor holds the second until the first is up again.
    const restart = await rollout("restart", apiOnly);
    expect(restart.code, restart.stderr).toBe(0);
    expect(restart.json.steps.map((s) => `${s.service}:${s.status}`)).toEqual(["api:success", "api:success"]);
    const restartId = (restart.json as RolloutJson & { rolloutId: string }).rolloutId;
    const restartEvents = (await rolloutEvents(prefix, restartId)).filter((e) =>
      ["command.sent", "step.completed"].includes(e.event.action),
    );
    expect(restartEvents.map((e) => e.event.action)).toEqual([
      "command.sent",
      "step.completed",
      "command.sent",
      "step.completed",
    ]);
    expect(restartEvents[0]?.lifeline.step?.host).toBe(restartEvents[1]?.lifeline.step?.host);
    expect(restartEvents[2]?.lifeline.step?.host).not.toBe(restartEvents[0]?.lifeline.step?.host);

    // A stop may take down one api: the other is never sent a command, is recorded as cancelled with the reason,
    // and still answers.
    const stop = await rollout("stop", apiOnly);
    expect(stop.code).not.toBe(0);
    const statuses = stop.json.steps.map((s) => s.status).sort();
    expect(statuses).toEqual(["cancelled", "success"]);
    const kept = stop.json.steps.find((s) => s.status === "cancelled");
    const stopped = stop.json.steps.find((s) => s.status === "success");
    expect(kept?.reason).toBe(
      "availability floor: 1 of api's instances down by this rollout (maxUnavailable 1)",
    );
    expect(kept?.commandId ?? "").toBe("");
    const portOf = (host: string | undefined) =>
      [hosts.api, hosts.api2].find((h) => h?.host === host)?.port as number;
    await expect(fetch(`http://127.0.0.1:${portOf(kept?.host)}/`)).resolves.toBeDefined();
    await expect(fetch(`http://127.0.0.1:${portOf(stopped?.host)}/`)).rejects.toThrow();
    const stopId = (stop.json as RolloutJson & { rolloutId: string }).rolloutId;
    expect(
      (await rolloutEvents(prefix, stopId)).filter((e) => e.event.action === "command.sent").length,
    ).toBe(1);
  });

  it("a start that fails retryably is tried again after a backoff and succeeds on the second attempt; the timeline shows it", async () => {
    const { hosts, rollout, namespace, prefix } = await fleet({ flakyApi: true, indexer: true });
    const start = await rollout("start", { retries: { attempts: 2, backoffMs: 600, maxBackoffMs: 5_000 } });
    expect(start.code, start.stderr).toBe(0);
    expect(start.json.status).toBe("success");
    expect(start.json.steps.map((s) => `${s.service}:${s.status}`)).toEqual([
      "db:success",
      "api:success",
      "web:success",
    ]);
    expect(start.stderr).toMatch(
      /api: failed \(process exited with exit code 1 while starting\); retrying, attempt 2 of 3 in \d+ ms/,
    );
    // The agent: two commands for api, the first a failure it marked retryable (stopped afterwards), then success.
    const completions = readJournal(hosts.api?.journal as string).filter(
      (e) => e.event.action === "command.completed",
    );
    expect(completions.map((e) => e.event.outcome)).toEqual(["failure", "success"]);
    expect((completions[0]?.lifeline as { retryable?: boolean } | undefined)?.retryable).toBe(true);
    const rolloutId = (start.json as RolloutJson & { rolloutId: string }).rolloutId;
    const events = await rolloutEvents(prefix, rolloutId);
    const retry = events.filter((e) => e.event.action === "step.retry_scheduled");
    expect(retry).toHaveLength(1);
    const backoff = (retry[0]?.lifeline as { backoff_ms?: number } | undefined)?.backoff_ms ?? 0;
    expect(backoff).toBeGreaterThanOrEqual(300);
    expect(backoff).toBeLessThanOrEqual(600);
    // One final record per step, the retried one included.
    expect(events.filter((e) => e.event.action === "step.completed")).toHaveLength(3);
    // The timeline (Elasticsearch) shows the retry and its backoff between the two attempts.
    const { entries } = await readTimeline(rolloutId, namespace, (read) =>
      read.some((e) => e.action === "rollout.completed"),
    );
    const actions = entries.map((e) => e.action);
    const retryAt = actions.indexOf("step.retry_scheduled");
    expect(retryAt).toBeGreaterThan(-1);
    expect(entries[retryAt]?.reason).toMatch(/attempt 2 of 3 in \d+ ms after failed/);
    expect(actions.filter((a) => a === "command.received").length).toBe(4);
  });

  it("a host whose agent went silent after its heartbeat: its step times out at the deadline, never a success", async () => {
    const { hosts, agents, rollout, prefix } = await fleet();
    // Seen alive (its heartbeat is in the presence window), then gone: the command is sent and nobody answers.
    await agents.web?.stop("SIGKILL");
    const deadlines = { deliveryMs: 1_500, executionMs: 2_500 };
    const started = await rollout("start", { services: [{ name: "web" }], deadlines });
    expect(started.code).not.toBe(0);
    // The one step counts against the failure budget (0 by default): the rollout halts, it does not succeed.
    expect(started.json.status).toBe("halted");
    expect(started.json.haltReason).toMatch(/budget/);
    const [step] = started.json.steps as Array<RolloutJson["steps"][number] & { evidence?: string }>;
    expect(started.json.steps).toHaveLength(1);
    expect(step).toMatchObject({
      host: hosts.web?.host,
      service: "web",
      status: "timed_out",
      reason: "no verified outcome before the deadline",
      evidence: `no command.completed from ${hosts.web?.host} within 4000 ms`,
    });
    expect(step?.commandId).not.toBe("");
    // On the topic: the command was recorded as sent, and its one final record came no earlier than the deadline.
    const rolloutId = (started.json as RolloutJson & { rolloutId: string }).rolloutId;
    const events = (await rolloutEvents(prefix, rolloutId)).filter((e) =>
      ["command.sent", "step.completed"].includes(e.event.action),
    ) as Array<ControllerRecord & { "@timestamp": string }>;
    expect(events.map((e) => `${e.event.action}:${e.lifeline.step_status ?? ""}`)).toEqual([
      "command.sent:",
      "step.completed:timed_out",
    ]);
    const waited = Date.parse(events[1]?.["@timestamp"] ?? "") - Date.parse(events[0]?.["@timestamp"] ?? "");
    expect(waited).toBeGreaterThanOrEqual(4_000);
  });

  it("minHealthyTime: a service that dies after passing its health check is a failed step, not a success", async () => {
    const { rollout, env } = await fleet({ dyingWeb: true });
    const start = await rollout("start", { waves: { minHealthyTimeMs: 3_000 } });
    expect(start.code, `${start.stderr}\n${JSON.stringify(start.json.steps, null, 1)}`).not.toBe(0);
    const [db, api, web] = start.json.steps;
    // db and api stayed up: observed running, same process, probe passing, 3 s later.
    for (const step of [db, api]) {
      expect(step?.status).toBe("success");
      expect((step as { evidence?: string }).evidence).toMatch(/3000 ms later: .*tcp.* passed/);
    }
    // web started healthy (the agent's start succeeded) and was gone or replaced 3 s later.
    expect(web?.status).toBe("failed");
    expect(web?.reason).toMatch(
      /^started, then (stopped 3000 ms after it started|restarted within 3000 ms of its start)/,
    );
    // Past the budget (0 failures): halted, with the reason; so says rollout list.
    expect(start.json.status).toBe("halted");
    const rolloutId = (start.json as RolloutJson & { rolloutId: string }).rolloutId;
    expect(await listed(env)).toEqual({ [rolloutId]: "halted" });
  });

  it("gates wait for a signed approval, reject unsigned and untrusted ones; a controller killed mid-rollout resumes without repeating a command", async () => {
    const { hosts, rolloutArgs, env, prefix, dir, keyFile } = await fleet();
    const approver = generateSigningKeys();
    const approverKey = join(dir, "approver.key");
    writeFileSync(approverKey, approver.privateKeyPem);
    const kafka = testKafka();

    const gated = controllerProcess(
      rolloutArgs("start", {
        waves: { pause: "approval" },
        approvers: [{ id: "oncall", publicKey: approver.publicKeyPem }],
      }),
      env,
    );
    const rolloutId = (await gated.waitFor(/rollout (\S+) started/))[1] as string;
    await gated.waitFor(/waiting for approval before wave 2\/3/);
    // Unsigned: a bare approval event on the topic.
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: topicNames(prefix).lifecycle,
      messages: [
        {
          key: rolloutId,
          value: JSON.stringify({
            event: { action: "rollout.approval" },
            lifeline: {
              rollout_id: rolloutId,
              approval: {
                payload: { rolloutId, decision: "approve", by: "mallory", at: new Date().toISOString() },
              },
            },
          }),
        },
      ],
    });
    await producer.disconnect();
    await gated.waitFor(/approval rejected: unsigned/);
    // Signed, but by a key that is not an approver's (the controller's own).
    const untrusted = await runLifeline(
      ["rollout", "approve", rolloutId, "--key", keyFile, "--key-id", "test-controller"],
      env,
    );
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toContain(
      `refused by the controller: key "test-controller" is not among the plan's approvers`,
    );
    await gated.waitFor(/approval rejected: key "test-controller" is not among the plan's approvers/);
    // While it waits: open, at its gate, wave 1 done and the rest not sent.
    const waiting = await runLifeline(["rollout", "status", rolloutId, "--json"], env);
    expect(waiting.code, waiting.stderr).toBe(0);
    const open = JSON.parse(waiting.stdout);
    expect(open).toMatchObject({ rolloutId, status: "open", waiting: expect.stringContaining("wave 2") });
    expect(
      open.stepStates.map((s: { service: string; status: string }) => `${s.service}:${s.status}`),
    ).toEqual(["db:success", "api:not sent", "web:not sent"]);
    expect(gated.stderr()).not.toMatch(/^wave 2\/3:/m);
    for (const wave of ["2", "3"]) {
      const approved = await runLifeline(
        [
          "rollout",
          "approve",
          rolloutId,
          "--wave",
          wave,
          "--key",
          approverKey,
          "--key-id",
          "oncall",
          "--by",
          "alice",
        ],
        env,
      );
      expect(approved.code, approved.stderr).toBe(0);
      await gated.waitFor(new RegExp(`approved by alice[\\s\\S]*wave ${wave}/3`));
    }
    expect(await gated.exited).toBe(0);
    const started = JSON.parse(gated.stdout()) as RolloutJson;
    expect(started.steps.map((s) => `${s.service}:${s.status}`)).toEqual([
      "db:success",
      "api:success",
      "web:success",
    ]);

    // Killed while wave 2 is under way, then resumed from the topic.
    const doomed = controllerProcess(rolloutArgs("stop", { waves: { soakMs: 1_000 } }), env);
    const stopId = (await doomed.waitFor(/rollout (\S+) started/))[1] as string;
    await doomed.waitFor(/wave 2\/3/);
    doomed.process.kill("SIGKILL");
    await doomed.exited;
    const resumed = await runLifeline(
      ["rollout", "resume", stopId, "--key", keyFile, "--key-id", "test-controller", "--json"],
      env,
    );
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming .*: [12] steps settled/);
    const result = JSON.parse(resumed.stdout) as RolloutJson;
    expect(result.steps.map((s) => `${s.service}:${s.status}`)).toEqual([
      "web:success",
      "api:success",
      "db:success",
    ]);
    // One final record per step across the two controllers: none missing, none twice.
    expect((await stepEvents(prefix, stopId)).map((e) => e.lifeline.step?.service).sort()).toEqual([
      "api",
      "db",
      "web",
    ]);
    for (const tier of ["db", "api", "web"] as const) {
      const received = readJournal(hosts[tier]?.journal as string).filter(
        (e) => e.lifeline.rollout_id === stopId && e.event.action === "command.received",
      );
      expect(received, `${tier} received its stop once`).toHaveLength(1);
      await expect(fetch(`http://127.0.0.1:${hosts[tier]?.port}/`)).rejects.toThrow();
    }

    // Killed after recording db's start command and before publishing it: the topic holds what that controller
    // wrote, the control topic nothing. Resume sends that very command, once.
    const { plan, built } = await readRolloutHistory(kafka, topicNames(prefix).lifecycle, rolloutId);
    const crashedId = `shop-start-${Date.now().toString(36)}`;
    const first = built.waves[0]?.steps[0] as PlannedStep;
    const now = Date.now();
    const signed = signCommand(
      {
        id: randomUUID(),
        action: first.action,
        service: first.service,
        target: { hosts: [first.host] },
        parameters: {},
        issuedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + plan.deadlines.deliveryMs).toISOString(),
        deadline: new Date(now + plan.deadlines.executionMs).toISOString(),
        issuer: `controller:${plan.name}`,
        rolloutId: crashedId,
      },
      "test-controller",
      readFileSync(keyFile, "utf8"),
    );
    const trace = { trace: { id: "4bf92f3577b34da6a3ce929d0e0e4736" }, span: { id: "00f067aa0ba902b7" } };
    const written = [
      { event: { action: "rollout.planned" }, lifeline: { plan, built } },
      ...built.waves.map((w) => ({ event: { action: "wave.started" }, lifeline: { wave: w.wave } })),
      {
        event: { action: "command.sent" },
        lifeline: { wave: 1, command_id: signed.command.id, step: first, command: signed },
      },
    ];
    const recorder = kafka.producer();
    await recorder.connect();
    await recorder.send({
      topic: topicNames(prefix).lifecycle,
      acks: -1,
      messages: written.map((e) => ({
        key: crashedId,
        value: JSON.stringify({ ...e, ...trace, lifeline: { ...e.lifeline, rollout_id: crashedId } }),
      })),
    });
    await recorder.disconnect();
    const recovered = await runLifeline(
      ["rollout", "resume", crashedId, "--key", keyFile, "--key-id", "test-controller", "--json"],
      env,
    );
    expect(recovered.code, recovered.stderr).toBe(0);
    expect(recovered.stderr).toMatch(/resuming .*: 0 steps settled, 1 awaiting their outcome/);
    const restarted = JSON.parse(recovered.stdout) as RolloutJson;
    expect(restarted.steps.map((s) => `${s.service}:${s.status}`)).toEqual([
      "db:success",
      "api:success",
      "web:success",
    ]);
    expect(restarted.steps[0]?.commandId).toBe(signed.command.id);
    expect((await stepEvents(prefix, crashedId)).map((e) => e.lifeline.step?.service)).toEqual([
      "db",
      "api",
      "web",
    ]);
    for (const tier of ["db", "api", "web"] as const) {
      const received = readJournal(hosts[tier]?.journal as string).filter(
        (e) => e.lifeline.rollout_id === crashedId && e.event.action === "command.received",
      );
      expect(received, `${tier} received its start once`).toHaveLength(1);
      expect(await (await fetch(`http://127.0.0.1:${hosts[tier]?.port}/`)).status).toBe(200);
    }
  });
});

interface TimelineJson {
  traceId?: string;
  entries: Array<{
    host: string;
    action: string;
    traceId?: string;
    reason?: string;
    stepStatus?: string;
    evidence?: string;
  }>;
}

/** `lifeline timeline --rollout <id> --json` from Elasticsearch, read again until `complete` says so (60 s). */
async function readTimeline(
  rolloutId: string,
  namespace: string,
  complete: (entries: TimelineJson["entries"]) => boolean,
): Promise<TimelineJson> {
  let timeline: TimelineJson = { entries: [] };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const read = await runLifeline(["timeline", "--rollout", rolloutId, "--namespace", namespace, "--json"]);
    if (read.code === 0) timeline = JSON.parse(read.stdout);
    if (complete(timeline.entries)) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return timeline;
}

/** `lifeline rollout list --json`: each rollout's id and status (this fleet's topic prefix is in env). */
async function listed(env: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  const list = await runLifeline(["rollout", "list", "--json"], env);
  expect(list.code, list.stderr).toBe(0);
  const { rollouts } = JSON.parse(list.stdout) as { rollouts: Array<{ rolloutId: string; status: string }> };
  return Object.fromEntries(rollouts.map((r) => [r.rolloutId, r.status]));
}

/** A lifecycle record as these tests read it (validated against lifecycleEventSchema by lifecycleRecord). */
type ControllerRecord = {
  event: { action: string; reason?: string; provider?: string };
  host?: { name?: string };
  lifeline: { rollout_id?: string; step_status?: string; step?: PlannedStep };
};

/** A rollout's controller events on the lifecycle topic, in order. */
async function rolloutEvents(prefix: string, rolloutId: string) {
  const events: Array<{
    event: { action: string; reason?: string };
    lifeline: { rollout_id?: string; step?: PlannedStep };
  }> = [];
  await readSince(testKafka(), topicNames(prefix).lifecycle, Date.now() - 600_000, (text) => {
    const event = topicLifecycleRecord<ControllerRecord>(text);
    if (event.lifeline?.rollout_id === rolloutId && isControllerEvent(event)) events.push(event);
  });
  return events;
}

/** The step.completed events of a rollout on the lifecycle topic, in order: one per step. */
async function stepEvents(prefix: string, rolloutId: string) {
  const events: Array<{
    event: { action: string; reason?: string };
    lifeline: { rollout_id?: string; step_status?: string; step?: PlannedStep };
  }> = [];
  await readSince(testKafka(), topicNames(prefix).lifecycle, Date.now() - 600_000, (text) => {
    const event = topicLifecycleRecord<ControllerRecord>(text);
    if (event.lifeline?.rollout_id === rolloutId && event.event?.action === "step.completed")
      events.push(event);
  });
  return events;
}

/** A `lifeline rollout` child process whose stderr (progress) and stdout can be awaited line by line. */
function controllerProcess(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [lifelineBin, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  const listeners = new Set<() => void>();
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const listener of listeners) listener();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  running.push({
    stop: () => {
      if (child.exitCode === null) child.kill("SIGKILL");
      return exited;
    },
  } as ProcessUnderTest);
  return {
    process: child,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(stderr);
          if (!match) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(match);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no ${pattern} in the controller's output:\n${stderr.slice(-3000)}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
  };
}
