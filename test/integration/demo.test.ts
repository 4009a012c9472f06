import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runLifeline } from "../helpers/cli.ts";
import { testKafka } from "../helpers/services.ts";

const serviceScript = fileURLToPath(new URL("../../demo/services/demo-service.mjs", import.meta.url));

/** Processes whose command line mentions `text`. */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmdline.includes(text)) found.push(`${pid}: ${cmdline}`);
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

describe("lifeline demo", { timeout: 300_000 }, () => {
  it("runs a rolling restart across three hosts, prints its timeline from Elasticsearch under one trace, and leaves nothing running", async () => {
    const result = await runLifeline(["demo"]);
    const out = result.stdout;
    expect(result.code, `${out}\n${result.stderr}`).toBe(0);
    const dir = /^Lifeline demo: workspace (\S+)$/m.exec(out)?.[1] as string;
    const prefix = /topics (lifeline-demo-\w+)\.\*/.exec(out)?.[1] as string;
    expect(dir).toBeTruthy();

    // The rollout: every step succeeded; the worker's stop needed the escalation.
    const [, rolloutId, traceId] =
      /rollout (demo-restart-\w+): success, trace ([0-9a-f]{32})/.exec(out) ?? [];
    expect(rolloutId).toBeTruthy();
    for (const service of ["ledger", "api"])
      expect(out).toMatch(new RegExp(`demo-\\S+ +${service} +success \\(restarted: started\\)`));
    // The worker's restart succeeded, and its escalation is said, not hidden in the summary.
    expect(out).toMatch(/demo-\S+ +worker +success \[escalated\] \(restarted: started\)/);
    expect(out).toMatch(/: success, trace [0-9a-f]{32}; 3 steps: 3 succeeded \(1 escalated\)/);

    // The timeline read back from Elasticsearch: one trace, waves in order, each host's steps in order.
    expect(out).toMatch(new RegExp(`rollout ${rolloutId}  trace ${traceId}  \\d+ events`));
    expect(out).toMatch(new RegExp(`all \\d+ events carry trace ${traceId}`));
    const timeline = out.slice(out.indexOf(`rollout ${rolloutId}  trace`), out.indexOf("events carry trace"));
    const rows = timeline
      .split("\n")
      .map((line) => line.trim().split(/\s{2,}/))
      .filter((cells) => /^\+\d/.test(cells[0] ?? ""));
    const steps = rows.map((cells) => `${cells[1]} ${cells.find((c) => /^[a-z]+\.[a-z_]+$/.test(c))}`);
    const expected = [
      "controller rollout.planned",
      ...(
        [
          ["demo-db-1", false],
          ["demo-app-1", false],
          ["demo-worker-1", true],
        ] as const
      ).flatMap(([host, escalated]) => [
        "controller wave.started",
        "controller command.sent",
        `${host} command.received`,
        `${host} stop.requested`,
        `${host} stop.signal_sent`,
        ...(escalated ? [`${host} stop.escalated`] : []),
        `${host} stop.completed`,
        `${host} start.spawned`,
        `${host} start.healthy`,
        `${host} command.completed`,
        "controller step.completed",
      ]),
      "controller rollout.completed",
    ];
    expect(steps).toEqual(expected);
    expect(out).toMatch(/escalation: worker on demo-worker-1: grace period of 2000 ms exceeded: SIGKILL/);
    // Every step has exactly one final outcome, under the rollout's trace: the timeline counts them.
    expect(out).toMatch(/3 steps: 3 succeeded \(1 escalated\), 0 failed, 0 unknown, 0 cancelled/);

    // Spans from the controller and every agent under that trace, and each service's log around its restart.
    expect(out).toMatch(/spans of trace [0-9a-f]{32} in traces-lifeline-demo \(controller and agents\): 19/);
    for (const service of ["ledger", "api", "worker"])
      expect(out).toMatch(
        new RegExp(`${service} listening on 127\\.0\\.0\\.1:\\d+ pid \\d+ +← the rollout's trace`),
      );
    expect(out).toMatch(/worker ignores SIGTERM/);
    const page = readFileSync(join(dir, "timeline.html"), "utf8");
    expect(page).toContain(rolloutId);
    expect(page).toContain(
      '<span id="succeeded">3</span> succeeded (<span id="escalated">1</span> escalated)',
    );

    // Nothing left behind: no process, no topic.
    expect(out).toMatch(/nothing left running/);
    expect(processesMentioning(dir)).toEqual([]);
    expect(processesMentioning(serviceScript)).toEqual([]);
    const admin = testKafka().admin();
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
    await admin.disconnect();
    expect(topics).toEqual([]);
  });
});
