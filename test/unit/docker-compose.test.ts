import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { DEFAULT_ELASTICSEARCH_VERSION, DEFAULT_KAFKA_VERSION } from "../../local-services/settings.ts";

const composeFile = fileURLToPath(new URL("../../docker-compose.yml", import.meta.url));
const dclint = fileURLToPath(new URL("../../node_modules/dclint/bin/dclint.cjs", import.meta.url));

// --max-warnings 0: the style rules count too, so the file stays as dclint --fix leaves it.
function lint(file: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [dclint, file, "--color", "false", "--max-warnings", "0"],
      (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr });
      },
    );
  });
}

describe("docker-compose.yml", () => {
  it("passes dclint (Compose specification schema and its rules)", async () => {
    const result = await lint(composeFile);
    expect(result.output.trim()).toBe("");
    expect(result.code).toBe(0);
  });

  it("a file that breaks the Compose schema fails the same check", async () => {
    const broken = join(mkdtempSync(join(tmpdir(), "lifeline-compose-")), "docker-compose.yml");
    writeFileSync(
      broken,
      "services:\n  web:\n    image: nginx:1.27\n    restart: sometimes\n    healthcheck: yes\n",
    );
    const result = await lint(broken);
    expect(result.code).not.toBe(0);
  });

  it("runs the same Kafka and Elasticsearch versions as the local servers the tests use", () => {
    const compose = parse(readFileSync(composeFile, "utf8")) as {
      services: Record<string, { image?: string }>;
    };
    expect(compose.services.kafka?.image).toBe(`apache/kafka:${DEFAULT_KAFKA_VERSION}`);
    expect(compose.services.elasticsearch?.image).toBe(
      `docker.elastic.co/elasticsearch/elasticsearch:${DEFAULT_ELASTICSEARCH_VERSION}`,
    );
    expect(compose.services.kibana?.image).toBe(
      `docker.elastic.co/kibana/kibana:${DEFAULT_ELASTICSEARCH_VERSION}`,
    );
  });

  it("has a health check on every long-running service", () => {
    const compose = parse(readFileSync(composeFile, "utf8"), { merge: true }) as {
      services: Record<string, { restart?: string; healthcheck?: unknown }>;
    };
    const longRunning = Object.entries(compose.services).filter(([, s]) => s.restart !== "no");
    expect(longRunning.length).toBeGreaterThan(5);
    for (const [name, service] of longRunning) expect(service.healthcheck, name).toBeDefined();
  });

  it("the demo host's configs are valid for their components and name what the image holds", async () => {
    const { loadAgentConfig } = await import("../../agent/config.ts");
    const { loadShipperConfig } = await import("../../shipper/config.ts");
    const { loadPlan } = await import("../../controller/plan.ts");
    const { generateSigningKeys } = await import("../../core/commands.ts");
    const deploy = fileURLToPath(new URL("../../deploy/demo-host/", import.meta.url));
    // The key file exists only in the container's volume: stand one in.
    const dir = mkdtempSync(join(tmpdir(), "lifeline-demo-host-"));
    writeFileSync(join(dir, "signing.pub"), generateSigningKeys().publicKeyPem);
    const agentFile = join(dir, "agent.yaml");
    writeFileSync(
      agentFile,
      readFileSync(join(deploy, "agent.yaml"), "utf8").replace("/var/lib/lifeline/keys", dir),
    );
    const agent = loadAgentConfig(agentFile, {});
    expect(agent.services.map((s) => s.name)).toEqual(["ledger", "api", "worker"]);
    const dockerfile = readFileSync(fileURLToPath(new URL("../../Dockerfile", import.meta.url)), "utf8");
    // The image installs the packed package globally (node:24's prefix /usr/local); the build copies the demo
    // services into dist/demo/services.
    expect(dockerfile).toMatch(/^RUN npm install -g .*\/tmp\/lifeline\.tgz/m);
    expect(readFileSync(fileURLToPath(new URL("../../bin/build.ts", import.meta.url)), "utf8")).toContain(
      "demo/services`, `$" + "{dist}/demo/services`",
    );
    for (const service of agent.services)
      expect(service.command).toEqual([
        "node",
        "/usr/local/lib/node_modules/lifeline/dist/demo/services/demo-service.mjs",
      ]);
    const shipper = loadShipperConfig(join(deploy, "shipper.yaml"), {});
    expect(shipper.inputs.flatMap((i) => i.paths)).toEqual([
      "/var/lib/lifeline/agent/journal.ndjson",
      ...agent.services.map((s) => s.logFile),
    ]);
    for (const action of ["start", "restart"])
      expect(loadPlan(join(deploy, `${action}.yaml`)).services.map((s) => s.name)).toEqual([
        "ledger",
        "api",
        "worker",
      ]);
  });
});
