import { type ChildProcess, execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const lifelineBin = fileURLToPath(new URL("../../bin/lifeline.ts", import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `lifeline` command line with the Node that runs the tests (Node 24). */
export function runLifeline(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 300_000,
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [lifelineBin, ...args],
      { env, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export interface ProcessUnderTest {
  process: ChildProcess;
  output: () => string;
  started: Promise<void>;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves once the output holds `text` (or a match of it) `times` times (awaited on the output, no polling). */
  waitForOutput(text: string | RegExp, times?: number, timeoutMs?: number): Promise<void>;
}

/** Runs a real `lifeline <command>` child process (the TypeScript entry unless `launcher` says otherwise); `started` resolves when it logs `readyMessage`. */
export function startLifeline(
  args: string[],
  readyMessage: string,
  env: NodeJS.ProcessEnv = process.env,
  launcher: { nodeArgs: string[]; entry: string; node?: string; cwd?: string } = {
    nodeArgs: [],
    entry: lifelineBin,
  },
): ProcessUnderTest {
  const child = spawn(launcher.node ?? process.execPath, [...launcher.nodeArgs, launcher.entry, ...args], {
    ...(launcher.cwd ? { cwd: launcher.cwd } : {}),
    env: { LIFELINE_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const outputWaiters = new Set<() => void>();
  let onStarted: () => void = () => {};
  let onFailed: (error: Error) => void = () => {};
  const started = new Promise<void>((resolve, reject) => {
    onStarted = resolve;
    onFailed = reject;
  });
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.includes(`"msg":"${readyMessage}"`)) onStarted();
    for (const check of outputWaiters) check();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      onFailed(new Error(`lifeline ${args[0]} exited (${code}) before starting:\n${output.slice(-3000)}`));
      resolve(code);
    });
  });
  return {
    process: child,
    output: () => output,
    started,
    exited,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    waitForOutput(text: string | RegExp, times = 1, timeoutMs = 60_000) {
      const count = () =>
        typeof text === "string"
          ? output.split(text).length - 1
          : [...output.matchAll(new RegExp(text.source, `${text.flags.replace("g", "")}g`))].length;
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (count() < times) return;
          finish();
          resolve();
        };
        const timer = setTimeout(() => {
          finish();
          reject(
            new Error(
              `lifeline ${args[0]} did not print ${String(text)} ${times} times:\n${output.slice(-3000)}`,
            ),
          );
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          outputWaiters.delete(check);
        };
        outputWaiters.add(check);
        check();
      });
    },
  };
}
