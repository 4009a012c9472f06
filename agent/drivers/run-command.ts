import { execFile } from "node:child_process";
import type { CommandRunner } from "./driver.ts";

/** The real runner: no shell, a timeout, output and exit code returned (a non-zero exit is data, not an error). */
export const runCommand: CommandRunner = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 30_000, windowsHide: true }, (error, stdout) => {
      if (error && typeof (error as NodeJS.ErrnoException).code === "string") return reject(error);
      resolve({ stdout, code: error ? Number((error as { code?: number }).code ?? 1) : 0 });
    });
  });

export async function pollUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs: number,
  periodMs = 250,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() >= deadline) return { value, done: done(value) };
    await new Promise((resolve) => setTimeout(resolve, periodMs));
  }
}
