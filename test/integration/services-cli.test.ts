import { chmodSync, mkdtempSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isAlive, processesMentioning } from "../../local-services/process.ts";
import { runLifeline } from "../helpers/cli.ts";

/**
 * Environment for a second, private pair of servers: own folder and ports, never the shared test servers.
 * Base ports stay below Linux's ephemeral range (32768-60999): a port there can be taken at any moment by
 * the local end of some other test's connection, which once made "port already in use" the answer here.
 */
function privateEnv(dir: string, basePort: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.LIFELINE_KAFKA_BROKERS;
  delete env.LIFELINE_ES_URL;
  return {
    ...env,
    LIFELINE_SERVICES_DIR: dir,
    LIFELINE_SERVICES_KAFKA_PORT: String(basePort),
    LIFELINE_SERVICES_KAFKA_CONTROLLER_PORT: String(basePort + 1),
    LIFELINE_SERVICES_KAFKA_SASL_PORT: String(basePort + 2),
    LIFELINE_SERVICES_ES_PORT: String(basePort + 100),
    LIFELINE_SERVICES_ES_TRANSPORT_PORT: String(basePort + 101),
    LIFELINE_SERVICES_KAFKA_HEAP_MB: "256",
    LIFELINE_SERVICES_ES_HEAP_MB: "512",
    ...extra,
  };
}

function servicesDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-services-"));
  chmodSync(dir, 0o755); // Elasticsearch's own user must be able to enter it
  return dir;
}

interface Report {
  name: string;
  healthy: boolean;
  version: string;
  pid: number;
  reused: boolean;
  startMs?: number;
}

const external = Boolean(process.env.LIFELINE_KAFKA_BROKERS || process.env.LIFELINE_ES_URL);

describe.skipIf(external)("lifeline services: up, status, up again, down", () => {
  const dir = servicesDir();
  const env = privateEnv(dir, 29092);
  afterAll(async () => {
    await runLifeline(["services", "down"], env);
  });

  it("starts both servers, reports them healthy with versions, reuses them, and leaves nothing after down", async () => {
    const up = await runLifeline(["services", "up", "--json"], env);
    expect(up.stderr).toContain("ready in");
    expect(up.code).toBe(0);
    const started = JSON.parse(up.stdout) as Report[];
    expect(started.map((r) => [r.name, r.healthy, r.reused])).toEqual([
      ["kafka", true, false],
      ["elasticsearch", true, false],
    ]);
    expect(started.every((r) => typeof r.startMs === "number")).toBe(true);

    const status = await runLifeline(["services", "status"], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/kafka\s+healthy\s+4\.\d+\.\d+/);
    expect(status.stdout).toMatch(/elasticsearch\s+healthy\s+9\.\d+\.\d+/);

    const again = JSON.parse((await runLifeline(["services", "up", "--json"], env)).stdout) as Report[];
    expect(again.map((r) => [r.name, r.reused, r.pid])).toEqual(started.map((r) => [r.name, true, r.pid]));

    const down = await runLifeline(["services", "down"], env);
    expect(down.code).toBe(0);
    expect(down.stdout).toContain("stopped elasticsearch and kafka");
    for (const report of started) expect(isAlive(report.pid)).toBe(false);
    expect(processesMentioning(dir)).toEqual([]);

    const after = await runLifeline(["services", "status"], env);
    expect(after.code).toBe(1);
    expect(after.stdout).toMatch(/kafka\s+DOWN/);
  });
});

describe.skipIf(external)("lifeline services up explains what is wrong", () => {
  const blockers: Server[] = [];
  afterAll(() => {
    for (const server of blockers) server.close();
  });

  it("a port already taken names the port and the variable to change", async () => {
    const server = createServer();
    blockers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    const result = await runLifeline(
      ["services", "up"],
      privateEnv(servicesDir(), 28092, { LIFELINE_SERVICES_KAFKA_PORT: String(port) }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`port ${port} is already in use`);
    expect(result.stderr).toContain("LIFELINE_SERVICES_KAFKA_PORT");
  });

  it("a missing Java names the setting and how to install one", async () => {
    const result = await runLifeline(
      ["services", "up"],
      privateEnv(servicesDir(), 28292, { LIFELINE_JAVA_HOME: "/nonexistent/jdk" }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("LIFELINE_JAVA_HOME=/nonexistent/jdk has no bin/java");
    expect(result.stderr).toContain("apt-get install openjdk-17");
  });

  it("an unreachable Maven repository says so and names the mirror setting", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as { port: number };
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    const result = await runLifeline(
      ["services", "up"],
      privateEnv(servicesDir(), 28492, {
        LIFELINE_MAVEN_REPO_URL: `http://127.0.0.1:${port}/maven2`,
        // A version not in the cache, so Maven has to ask the (unreachable) repository.
        LIFELINE_KAFKA_VERSION: "4.0.0",
      }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`Maven could not reach http://127.0.0.1:${port}/maven2`);
    expect(result.stderr).toContain("LIFELINE_MAVEN_REPO_URL");
  });
});
