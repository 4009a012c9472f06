import { execFile } from "node:child_process";
import type { Observation, Step } from "../../core/outcome.ts";
import { poll } from "../../core/poll.ts";
import type { CommandRunner } from "./driver.ts";

/** The real runner: no shell, a timeout, output and exit code returned (a non-zero exit is data, not an error). */
export const runCommand: CommandRunner = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 30_000, windowsHide: true }, (error, stdout, stderr) => {
      if (error && typeof (error as NodeJS.ErrnoException).code === "string") return reject(error);
      // systemctl and sc.exe say why they failed on stderr or stdout: both are the evidence.
      resolve({
        stdout: `${stdout}${stderr}`,
        code: error ? Number((error as { code?: number }).code ?? 1) : 0,
      });
    });
  });

/**
 * Reads the service's state until the decision is no longer "wait" or the time is up. Returns the last
 * observation and the last decision (still "wait" when the time ran out).
 */
export async function settle<O extends Observation>(
  read: () => Promise<O>,
  decide: (observation: O) => Step,
  timeoutMs: number,
  periodMs = 250,
): Promise<{ observation: O; step: Step }> {
  const { value } = await poll(
    async () => {
      const observation = await read();
      const step = decide(observation);
      return { done: step.kind !== "wait", value: { observation, step } };
    },
    { timeoutMs, intervalMs: periodMs },
  );
  return value;
}
