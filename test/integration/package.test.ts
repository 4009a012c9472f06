import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));

function run(file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(file, args, { ...options, maxBuffer: 64 << 20, timeout: 600_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

describe("the npm package", () => {
  it("npm pack gives a package that installs into an empty prefix on plain Node 24 and runs compiled", async () => {
    const work = mkdtempSync(join(tmpdir(), "lifeline-pack-"));
    // Node 24 (this test's) first on PATH, as on a host with Node 24 installed; npm from this checkout's Node.
    const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
    // The global setup built dist/ (bin/build.ts, what prepack runs); --ignore-scripts packs that build instead
    // of rebuilding it under tests that read it.
    const packed = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], {
      cwd: root,
      env,
    });
    expect(packed.code, packed.stderr).toBe(0);
    const [report] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const paths = report?.files.map((file) => file.path) ?? [];
    expect(paths).toContain("dist/bin/lifeline.js");
    expect(paths).toContain("bin/launch.js");
    // Lifeline's patched kafkajs travels in the package (bundled): an install gets the patched copy.
    expect(paths).toContain("node_modules/kafkajs/src/lifeline/partitionReader.js");
    // So does the patched grpc-js (its server reads grpc-node.flow_control_window: the collector's gRPC window).
    expect(paths).toContain("node_modules/@grpc/grpc-js/build/src/server.js");
    // Lifeline's own code compiled (bundled packages ship as published: grpc-js carries its TypeScript sources).
    const ours = paths.filter((path) => !path.startsWith("node_modules/"));
    expect(ours.filter((path) => path.endsWith(".ts") && !path.endsWith(".d.ts"))).toEqual([]);
    expect(paths.some((path) => path.startsWith("test/") || path.startsWith("bench/"))).toBe(false);

    const prefix = join(work, "prefix");
    const installed = await run(
      "npm",
      ["install", "-g", "--prefix", prefix, "--no-audit", "--no-fund", join(work, report?.filename ?? "")],
      { env },
    );
    expect(installed.code, installed.stderr).toBe(0);
    const lifeline = join(prefix, "bin", "lifeline");
    const version = await run(lifeline, ["--version"], { env });
    expect(version.code, version.stderr).toBe(0);
    const { version: expected } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    expect(version.stdout).toBe(`lifeline ${expected}\n`);

    const home = join(prefix, "lib", "node_modules", "lifeline");
    const validated = await run(
      lifeline,
      [
        "validate",
        join(home, "agent", "agent.example.yaml"),
        join(home, "controller", "rollout.example.yaml"),
      ],
      { env },
    );
    expect(validated.code, validated.stderr).toBe(0);
    expect(validated.stdout).toContain("valid agent config");
    expect(validated.stdout).toContain("valid plan config");

    // Compiled JavaScript only (no TypeScript in the installed package), and no dev dependency installed.
    expect(filesUnder(join(home, "dist")).filter((file) => file.endsWith(".ts"))).toEqual([]);
    // (Some devDependencies are also production dependencies' own: OpenTelemetry's, and protobufjs needs
    // @types/node. Those may be there.)
    const present = [
      "typescript",
      "vitest",
      "@biomejs/biome",
      "patch-package",
      "playwright-core",
      "dclint",
      "node",
      "@platformatic/kafka",
    ].filter((name) => existsSync(join(home, "node_modules", name)));
    expect(present).toEqual([]);
    expect(existsSync(join(home, "node_modules", "kafkajs", "src", "lifeline", "partitionReader.js"))).toBe(
      true,
    );
    const grpcServer = join(home, "node_modules", "@grpc", "grpc-js", "build", "src", "server.js");
    expect(readFileSync(grpcServer, "utf8")).toContain("this.options['grpc-node.flow_control_window']");
    rmSync(work, { recursive: true, force: true });
  });
});
