import { spawn } from "node:child_process";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import type { ProbeConfig } from "./config.ts";

/**
 * An HTTP request's status, the body discarded. node:http rather than fetch: fetch's parser is WebAssembly,
 * which the agent's lean mode (V8 lite mode) does not have, and it is lighter to load.
 */
function httpStatus(
  url: string,
  options: { method?: string; headers?: Record<string, string>; signal: AbortSignal },
): Promise<number> {
  const request = url.startsWith("https:") ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const outgoing = request(
      url,
      { method: options.method ?? "GET", headers: options.headers ?? {}, signal: options.signal },
      (response) => {
        response.resume();
        response.once("end", () => resolve(response.statusCode ?? 0));
        response.once("error", reject);
      },
    );
    outgoing.once("error", reject);
    outgoing.end();
  });
}

/** One probe attempt: true when healthy. */
export async function probeOnce(probe: ProbeConfig): Promise<boolean> {
  const timeout = AbortSignal.timeout(probe.timeoutMs);
  if (probe.http) {
    try {
      const status = await httpStatus(probe.http.url, { signal: timeout });
      return probe.http.expectStatus ? status === probe.http.expectStatus : status >= 200 && status < 400;
    } catch {
      return false;
    }
  }
  if (probe.tcp) {
    const { host, port } = probe.tcp;
    return new Promise((resolve) => {
      const socket = connect({ host, port });
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.once("connect", () => done(true));
      socket.once("error", () => done(false));
      timeout.addEventListener("abort", () => done(false), { once: true });
    });
  }
  if (probe.exec) {
    const [file, ...args] = probe.exec.command as [string, ...string[]];
    return new Promise((resolve) => {
      const child = spawn(file, args, { stdio: "ignore", signal: timeout });
      child.once("error", () => resolve(false));
      child.once("exit", (code) => resolve(code === 0));
    });
  }
  return true;
}

/**
 * Kubernetes semantics: wait initialDelay, probe every period; healthy after successThreshold successes in a row,
 * failed after failureThreshold failures in a row, or when `gaveUp` says so (deadline passed, process exited).
 */
export async function waitHealthy(
  probe: ProbeConfig,
  gaveUp: () => string | undefined | Promise<string | undefined>,
): Promise<{ healthy: true } | { healthy: false; reason: string }> {
  await delay(probe.initialDelayMs);
  let successes = 0;
  let failures = 0;
  for (;;) {
    const stop = await gaveUp();
    if (stop) return { healthy: false, reason: stop };
    if (await probeOnce(probe)) {
      failures = 0;
      if (++successes >= probe.successThreshold) return { healthy: true };
    } else {
      successes = 0;
      if (++failures >= probe.failureThreshold)
        return { healthy: false, reason: `probe failed ${failures} times in a row` };
    }
    await delay(probe.periodMs);
  }
}

/** Runs a lifecycle hook; resolves with what went wrong, or undefined when it succeeded. */
export async function runHook(
  hook: {
    exec?: string[] | undefined;
    http?: { url: string; method: string } | undefined;
    timeoutMs: number;
  },
  env: Record<string, string>,
): Promise<string | undefined> {
  const timeout = AbortSignal.timeout(hook.timeoutMs);
  if (hook.http) {
    try {
      const status = await httpStatus(hook.http.url, {
        method: hook.http.method,
        signal: timeout,
        headers: env.TRACEPARENT ? { traceparent: env.TRACEPARENT } : {},
      });
      return status >= 200 && status < 300 ? undefined : `HTTP ${status} from ${hook.http.url}`;
    } catch (error) {
      return `${hook.http.url}: ${(error as Error).message}`;
    }
  }
  const [file, ...args] = (hook.exec ?? []) as [string, ...string[]];
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: "ignore", signal: timeout, env: { ...process.env, ...env } });
    child.once("error", (error) => resolve(`${file}: ${error.message}`));
    child.once("exit", (code, signal) =>
      resolve(code === 0 ? undefined : `${file} exited with ${code ?? signal}`),
    );
  });
}
