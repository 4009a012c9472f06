/**
 * Makes docs/timeline.png from a real run: three agents (db ← api ← web; web ignores SIGTERM), a shipper and an
 * indexer on the local servers, a start then a restart rollout, `lifeline timeline --html` rendered in headless
 * Chromium.   node docs/timeline-picture.ts
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import {
  agentWorkspace,
  fixture,
  freePort,
  killWorkspaceServices,
  writeAgentConfig,
} from "../test/helpers/agent.ts";
import { launchChromium } from "../test/helpers/chromium.ts";
import { runLifeline, startLifeline } from "../test/helpers/cli.ts";
import { uniqueName } from "../test/helpers/services.ts";

const base = agentWorkspace("picture");
const namespace = uniqueName("picture").replaceAll("-", "_");
const running: Array<{ stop: (signal?: NodeJS.Signals) => Promise<number | null> }> = [];
const journals: string[] = [];
const tiers = ["db", "api", "web"];
const hostNames: Record<string, string> = { db: "db-1", api: "app-1", web: "web-1" };
for (const tier of tiers) {
  const ws = {
    ...agentWorkspace(`picture-${tier}`),
    keys: base.keys,
    prefix: base.prefix,
    host: hostNames[tier] as string,
  };
  const port = await freePort();
  writeAgentConfig(ws, [
    {
      name: tier,
      command: [process.execPath, fixture(tier === "web" ? "stubborn.mjs" : "well-behaved.mjs")],
      env: { PORT: String(port) },
      port,
      gracePeriodMs: 2_000,
      health: { tcp: { port }, periodMs: 100 },
    },
  ]);
  const agent = startLifeline(["agent", "--config", join(ws.dir, "agent.yaml")], "agent started");
  running.push(agent);
  await agent.started;
  journals.push(ws.journal);
}
writeFileSync(
  join(base.dir, "shipper.yaml"),
  stringify({
    host: { name: "shipper" },
    checkpointDir: join(base.dir, "ss"),
    topicPrefix: base.prefix,
    reconcileIntervalMs: 200,
    inputs: [{ name: "journals", kind: "lifecycle", paths: journals }],
  }),
);
writeFileSync(
  join(base.dir, "indexer.yaml"),
  stringify({ topicPrefix: base.prefix, groupId: uniqueName("pic"), namespace, indices: { replicas: 0 } }),
);
const shipper = startLifeline(["shipper", "--config", join(base.dir, "shipper.yaml")], "shipper started");
const indexer = startLifeline(["indexer", "--config", join(base.dir, "indexer.yaml")], "indexer started");
running.push(shipper, indexer);
await Promise.all([shipper.started, indexer.started]);
writeFileSync(join(base.dir, "key"), base.keys.privateKeyPem);
writeFileSync(
  join(base.dir, "fleet.yaml"),
  stringify({ hosts: tiers.map((t) => ({ name: hostNames[t], groups: ["shop"], services: [t] })) }),
);
const rollout = async (action: string) => {
  writeFileSync(
    join(base.dir, `${action}.yaml`),
    stringify({
      name: `shop-${action}`,
      action,
      targets: { groups: ["shop"] },
      services: [{ name: "db" }, { name: "api", dependsOn: ["db"] }, { name: "web", dependsOn: ["api"] }],
      deadlines: { deliveryMs: 10_000, executionMs: 20_000 },
    }),
  );
  const result = await runLifeline(
    [
      "rollout",
      "--plan",
      join(base.dir, `${action}.yaml`),
      "--fleet",
      join(base.dir, "fleet.yaml"),
      "--key",
      join(base.dir, "key"),
      "--key-id",
      "test-controller",
      "--json",
    ],
    { ...process.env, LIFELINE_TOPIC_PREFIX: base.prefix },
  );
  console.error(result.stderr.slice(-2000));
  return JSON.parse(result.stdout);
};
await rollout("start");
const restart = await rollout("restart");
console.log(restart.status, restart.rolloutId);
await new Promise((r) => setTimeout(r, 8000));
const html = join(base.dir, "timeline.html");
const t = await runLifeline([
  "timeline",
  "--rollout",
  restart.rolloutId,
  "--namespace",
  namespace,
  "--html",
  html,
]);
console.log(t.stdout, t.stderr);
const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1060, height: 260 } });
await page.goto(`file://${html}`);
await page.addStyleTag({ content: "table{display:none}" });
await page.screenshot({ path: new URL("./timeline.png", import.meta.url).pathname, fullPage: true });
await browser.close();
for (const p of running) await p.stop("SIGKILL");
killWorkspaceServices();
process.exit(0);
