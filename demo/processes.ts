import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { lifelineEntry } from "../core/entry.ts";
import { isAlive } from "../local-services/process.ts";

export const lifelineBin = lifelineEntry;

/** What a demo started, kept in `<dir>/demo.json` so `lifeline demo stop <dir>` can end a `--keep` run later. */
export interface DemoManifest {
  topicPrefix: string;
  namespace: string;
  /** The local Kafka and Elasticsearch were started by this demo (not reused): stop them too. */
  startedServers: boolean;
  components: Array<{ name: string; pid: number }>;
  /** Agents' state folders: the services they started are in `<stateDir>/run/*.pid`. */
  agentStateDirs: string[];
}

export const manifestPath = (dir: string) => join(dir, "demo.json");

export function writeManifest(dir: string, manifest: DemoManifest): void {
  writeFileSync(manifestPath(dir), `${JSON.stringify(manifest, null, 2)}\n`);
}

export function readManifest(dir: string): DemoManifest {
  return JSON.parse(readFileSync(manifestPath(dir), "utf8")) as DemoManifest;
}

export interface Launched {
  name: string;
  child: ChildProcess;
  /** Resolves once the component logged its ready message; rejects if it exits first. */
  ready: Promise<void>;
}

/**
 * Starts `lifeline <args>` in its own process group with its output in `logFile` (not a pipe: with `--keep` it
 * outlives the demo). Ready when the log holds pino's `"msg":"<readyMessage>"`; the file is read as it grows.
 */
export function launchComponent(
  name: string,
  args: string[],
  options: { logFile: string; readyMessage: string; env: NodeJS.ProcessEnv },
): Launched {
  const fd = openSync(options.logFile, "a");
  const child = spawn(process.execPath, [lifelineBin, ...args], {
    env: options.env,
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  closeSync(fd);
  const marker = `"msg":"${options.readyMessage}"`;
  const ready = new Promise<void>((resolve, reject) => {
    let offset = 0;
    let seen = "";
    const check = () => {
      const reader = openSync(options.logFile, "r");
      try {
        const buffer = Buffer.alloc(64 * 1024);
        for (let read = readSync(reader, buffer, 0, buffer.length, offset); read > 0; ) {
          offset += read;
          seen = (seen + buffer.subarray(0, read).toString()).slice(-(marker.length + 64 * 1024));
          read = readSync(reader, buffer, 0, buffer.length, offset);
        }
      } finally {
        closeSync(reader);
      }
      return seen.includes(marker);
    };
    const timer = setInterval(() => {
      if (!check()) return;
      clearInterval(timer);
      child.off("exit", onExit);
      resolve();
    }, 100);
    const onExit = (code: number | null) => {
      clearInterval(timer);
      const tail = readFileSync(options.logFile, "utf8").slice(-2_000);
      reject(
        new Error(`${name} exited (${code}) before it was ready; its log ${options.logFile} ends:\n${tail}`),
      );
    };
    child.once("exit", onExit);
  });
  return { name, child, ready };
}

/** The process groups the agents' services run in (the agents leave them running by design). */
export function agentServicePids(stateDirs: string[]): number[] {
  const pids: number[] = [];
  for (const stateDir of stateDirs) {
    const run = join(stateDir, "run");
    if (!existsSync(run)) continue;
    for (const file of readdirSync(run).filter((f) => f.endsWith(".pid"))) {
      try {
        pids.push((JSON.parse(readFileSync(join(run, file), "utf8")) as { pid: number }).pid);
      } catch {
        // A pid file being rewritten: the service is between runs.
      }
    }
  }
  return pids;
}

/** SIGTERM to each process group, SIGKILL to whatever is left after `graceMs`; returns the pids still alive. */
export async function stopGroups(pids: number[], graceMs: number): Promise<number[]> {
  const signal = (pid: number, name: NodeJS.Signals) => {
    try {
      process.kill(-pid, name);
    } catch {
      try {
        process.kill(pid, name);
      } catch {
        // Gone already.
      }
    }
  };
  for (const pid of pids) signal(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids.filter(isAlive)) signal(pid, "SIGKILL");
  const killedBy = Date.now() + 5_000;
  while (pids.some(isAlive) && Date.now() < killedBy) await new Promise((r) => setTimeout(r, 50));
  return pids.filter(isAlive);
}
