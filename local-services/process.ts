import { readdirSync, readFileSync } from "node:fs";
import { isPortOpen, waitUntil } from "../core/poll.ts";

export { isPortOpen, waitUntil };

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function readPidFile(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** True when `pid` is alive and its command line mentions `marker`: guards against a reused pid. */
export function isOurProcess(pid: number | undefined, marker: string): pid is number {
  if (pid === undefined || !isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker);
  } catch {
    return process.platform !== "linux";
  }
}

/** Pids of every process whose command line mentions `marker` (Linux), to leave nothing behind. */
export function processesMentioning(marker: string): number[] {
  if (process.platform !== "linux") return [];
  const pids: number[] = [];
  for (const entry of readdirSafe("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker)) pids.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** SIGTERM, wait up to graceMs for the exit, then SIGKILL. Resolves true if it had to kill. */
export async function stopProcess(pid: number, graceMs: number): Promise<boolean> {
  if (!isAlive(pid)) return false;
  process.kill(pid, "SIGTERM");
  const exited = await waitUntil(async () => (isAlive(pid) ? undefined : true), {
    timeoutMs: graceMs,
    intervalMs: 100,
  });
  if (exited) return false;
  process.kill(pid, "SIGKILL");
  await waitUntil(async () => (isAlive(pid) ? undefined : true), { timeoutMs: 10_000, intervalMs: 100 });
  return true;
}
