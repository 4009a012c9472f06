import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { leanAgentLauncher } from "../../core/entry.ts";
import { topicNames } from "../../core/topics.ts";
import { parseTraceparent } from "../../core/trace-context.ts";
import {
  agentWorkspace,
  fixture,
  freePort,
  killWorkspaceServices,
  makeCommand,
  publish,
  signed,
  waitForJournal,
  writeAgentConfig,
} from "../helpers/agent.ts";
import { runLifeline } from "../helpers/cli.ts";
import { type ProcessUnderTest, startLifeline } from "../helpers/indexer.ts";
import { testKafka } from "../helpers/services.ts";

const build = fileURLToPath(new URL("../../dist/bin/lifeline.js", import.meta.url));

describe("the agent as installed: compiled JavaScript in V8's lite mode", { timeout: 120_000 }, () => {
  const running: ProcessUnderTest[] = [];
  afterAll(async () => {
    for (const agent of running) await agent.stop("SIGKILL");
    killWorkspaceServices();
  });

  it("npm run build makes the lean launcher that agent install writes, and that agent runs commands with their trace", async () => {
    // The global setup ran `npm run build` (bin/build.ts) once for every test file.
    expect(existsSync(build)).toBe(true);
    const launcher = leanAgentLauncher();
    expect(launcher.compiled).toBe(true);
    expect(launcher.nodeArgs).toContain("--lite-mode");

    const ws = agentWorkspace("compiled");
    const port = await freePort();
    const config = writeAgentConfig(ws, [
      {
        name: "api",
        command: [process.execPath, fixture("well-behaved.mjs")],
        env: { PORT: String(port) },
        port,
        // A node process takes a few hundred ms to listen on a busy machine: allow it 5 s.
        health: { http: { url: `http://127.0.0.1:${port}/` }, periodMs: 100, failureThreshold: 50 },
      },
    ]);
    // The unit `agent install` writes runs exactly this command line.
    // `agent install`: an installed copy (build, production dependencies, Node) and its unit, here in one folder
    // that is also the unit's prefix and config folder, so the unit names real files.
    const dir = mkdtempSync(join(tmpdir(), "lifeline-install-"));
    const installed = await runLifeline([
      "agent",
      "install",
      "--config",
      config,
      "--out",
      dir,
      "--prefix",
      dir,
      "--etc",
      dir,
      "--user",
      "root",
    ]);
    expect(installed.code, installed.stderr).toBe(0);
    const unit = readFileSync(join(dir, "lifeline-agent.service"), "utf8");
    const exec = `${dir}/node/bin/node ${launcher.nodeArgs.join(" ")} ${dir}/app/bin/lifeline.js agent --config ${dir}/agent.yaml`;
    expect(unit).toContain(`ExecStart=${exec}`);
    expect(unit).toContain(`EnvironmentFile=-${dir}/agent.env`);
    expect(unit).toContain("KillMode=process");
    expect(statSync(join(dir, "agent.env")).mode & 0o777).toBe(0o600);
    // systemd's own check of the unit (it fails on a command that is not there), where systemd-analyze is.
    const verified = await new Promise<{ code: number; output: string } | undefined>((resolve) =>
      execFile("systemd-analyze", ["verify", join(dir, "lifeline-agent.service")], (error, stdout, stderr) =>
        resolve(
          (error as NodeJS.ErrnoException | null)?.code === "ENOENT"
            ? undefined
            : { code: error ? 1 : 0, output: stdout + stderr },
        ),
      ),
    );
    if (verified) expect(verified.code, verified.output).toBe(0);
    else
      process.stderr.write(
        "[agent-compiled] systemd-analyze not installed: the unit was not verified by systemd\n",
      );

    // The agent runs from the installed copy alone: its own node, from /, exactly the unit's command line.
    const agent = startLifeline(
      ["agent", "--config", join(dir, "agent.yaml")],
      "agent started",
      process.env,
      {
        node: join(dir, "node", "bin", "node"),
        nodeArgs: launcher.nodeArgs,
        entry: join(dir, "app", "bin", "lifeline.js"),
        cwd: "/",
      },
    );
    running.push(agent);
    await agent.started;
    const kafka = testKafka();
    const topic = topicNames(ws.prefix).control;
    for (const action of ["start", "stop"] as const) {
      const command = makeCommand(ws, action, "api");
      await publish(kafka, topic, signed(ws, command));
      const events = await waitForJournal(ws.journal, (all) =>
        all.some((e) => e.lifeline.command_id === command.id && e.event.action === "command.completed"),
      );
      const mine = events.filter((e) => e.lifeline.command_id === command.id);
      // A probe before the service listens fails (start.probe_failed) and is retried: not a step of its own.
      const steps = mine.filter((e) => e.event.action !== "start.probe_failed");
      expect(steps.map((e) => `${e.event.action}:${e.event.outcome}`)).toEqual(
        action === "start"
          ? [
              "command.received:success",
              "start.spawned:success",
              "start.healthy:success",
              "command.completed:success",
            ]
          : [
              "command.received:success",
              "stop.requested:success",
              "stop.signal_sent:success",
              "stop.completed:success",
              "command.completed:success",
            ],
      );
      for (const event of mine) expect(event.trace?.id).toBe(parseTraceparent(command.traceparent)?.traceId);
    }
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });
});
