import { execFile } from "node:child_process";
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
