import { createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { z } from "zod";
import { loadConfigFile, timerMs } from "../core/config.ts";
import { kafkaConnectionSchema, kafkaEnvOverrides } from "../core/kafka/client.ts";

/** A key whose signatures the agent accepts: inline PEM, or a PEM file (a mounted secret, `agent keygen` output). */
const trustedKeySchema = z
  .strictObject({
    id: z.string().min(1),
    publicKey: z.string().optional(),
    publicKeyFile: z.string().optional(),
  })
  .transform((key, ctx) => {
    const field = key.publicKeyFile ? "publicKeyFile" : "publicKey";
    if (key.publicKey && key.publicKeyFile) {
      ctx.addIssue({ code: "custom", path: [field], message: "set publicKey or publicKeyFile, not both" });
      return z.NEVER;
    }
    let pem = key.publicKey;
    if (key.publicKeyFile) {
      try {
        pem = readFileSync(key.publicKeyFile, "utf8");
      } catch (error) {
        ctx.addIssue({
          code: "custom",
          path: [field],
          message: `cannot read it: ${(error as Error).message}`,
        });
        return z.NEVER;
      }
    }
    if (!pem || !isEd25519PublicKey(pem)) {
      ctx.addIssue({
        code: "custom",
        path: [field],
        message: "must be an Ed25519 public key in PEM (lifeline agent keygen)",
      });
      return z.NEVER;
    }
    return { id: key.id, publicKey: pem };
  });

const probeSchema = z.strictObject({
  http: z.strictObject({ url: z.url(), expectStatus: z.number().int().optional() }).optional(),
  tcp: z
    .strictObject({ host: z.string().default("127.0.0.1"), port: z.number().int().min(1).max(65535) })
    .optional(),
  exec: z.strictObject({ command: z.array(z.string()).min(1) }).optional(),
  /** Kubernetes probe semantics. */
  initialDelayMs: timerMs().default(0),
  periodMs: timerMs().positive().default(500),
  timeoutMs: timerMs().positive().default(1_000),
  successThreshold: z.number().int().positive().default(1),
  failureThreshold: z.number().int().positive().default(3),
});
export type ProbeConfig = z.output<typeof probeSchema>;

const actions = z.enum(["stop", "start", "restart", "status"]);

/** A hook runs a declared argument vector or calls a URL; like the service, it is config, never a command's payload. */
const hookSchema = z
  .strictObject({
    exec: z.array(z.string()).min(1).optional(),
    http: z.strictObject({ url: z.url(), method: z.enum(["GET", "POST"]).default("POST") }).optional(),
    timeoutMs: timerMs().positive().default(10_000),
  })
  .refine((h) => Boolean(h.exec) !== Boolean(h.http), { message: "a hook is either exec or http" });
export type HookConfig = z.output<typeof hookSchema>;

/**
 * What the agent does when a service it keeps running exits without a command, or fails its liveness probe.
 * never: the event is recorded, nothing else; on-failure: restarted unless it exited with code 0; always: restarted.
 * Restarts wait an exponential backoff with jitter (each delay between half and all of initialDelayMs * 2^n, at most
 * maxDelayMs); maxRestarts within windowMs is a crash loop: no more restarts until a start or restart command, or
 * until quietPeriodMs has passed. A service that stayed up for resetAfterMs starts again from the first delay.
 */
const restartSchema = z.strictObject({
  policy: z.enum(["never", "on-failure", "always"]).default("never"),
  initialDelayMs: timerMs().positive().default(1_000),
  maxDelayMs: timerMs().positive().default(60_000),
  maxRestarts: z.number().int().positive().default(5),
  windowMs: z.number().int().positive().default(300_000),
  quietPeriodMs: timerMs().positive().default(600_000),
  resetAfterMs: timerMs().positive().default(60_000),
});
export type RestartConfig = z.output<typeof restartSchema>;

export const serviceSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9_.-]+$/, "lowercase letters, digits, . _ -"),
    /** process: the agent spawns it; systemd: a unit; windows-service: a service the SCM runs. */
    driver: z.enum(["process", "systemd", "windows-service"]).default("process"),
    /** process driver: what the agent runs, an argument vector, never a shell string. */
    command: z.array(z.string()).min(1).optional(),
    /** systemd driver: the unit, e.g. api.service. */
    unit: z.string().optional(),
    /** windows-service driver: the service's name in the Service Control Manager. */
    serviceName: z.string().optional(),
    /**
     * windows-service driver: running services that depend on this one are stopped first (each within the grace
     * period, in the order the SCM gives: the reverse of their start order) and started again after this one's
     * next start. Off: a stop with running dependents fails with their names, so the rollout plan orders them.
     */
    stopDependents: z.boolean().default(false),
    /**
     * windows-service driver: when the agent has to end a service's process after the grace period, the SCM's
     * recovery actions (restart after N ms) would undo the stop. true: they are suspended around the kill and
     * restored right after; false: left alone, and the evidence says what the SCM will do.
     */
    suspendRecovery: z.boolean().default(true),
    cwd: z.string().optional(),
    env: z.record(z.string(), z.string()).default({}),
    /** Where stdout and stderr go (the shipper tails them). Default: <stateDir>/logs/<name>.log */
    logFile: z.string().optional(),
    stopSignal: z.enum(["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2"]).default("SIGTERM"),
    gracePeriodMs: timerMs().positive().default(10_000),
    startTimeoutMs: timerMs().positive().default(30_000),
    /**
     * Without a health probe, a start succeeds only once the service has stayed up this long: a process that
     * crashes on start is reported with its exit code and last output, never as started.
     */
    minUptimeMs: timerMs().default(2_000),
    /** A port the service listens on: after a stop it must be closed. */
    port: z.number().int().min(1).max(65535).optional(),
    health: probeSchema.optional(),
    /** Before the stop signal (e.g. deregister from a load balancer); a failure is recorded and the stop goes on. */
    preStop: hookSchema.optional(),
    /** After the service is healthy; a failure makes the start a failure (as in Kubernetes). */
    postStart: hookSchema.optional(),
    /** Before the service is started (after its local dependencies are healthy); a failure fails the start. */
    preStart: hookSchema.optional(),
    /** After the stop is verified; a failure is recorded and the stop stands (the service is down). */
    postStop: hookSchema.optional(),
    /**
     * A probe run all the while the service is kept running (Kubernetes liveness semantics: failureThreshold
     * failures in a row make it unhealthy), separate from `health`, which gates a start.
     */
    liveness: probeSchema.optional(),
    restart: restartSchema.default(restartSchema.parse({})),
    /**
     * How often a service the agent keeps running is checked for an exit nobody commanded.
     * Default: 1 s for the process driver (a /proc read), 5 s for systemd and Windows services (a query each).
     */
    watchIntervalMs: timerMs().positive().optional(),
    /**
     * Services on this host that must be healthy (their `health` probe passes, or running without one) before
     * this one starts; the agent waits for them with backoff up to the start's deadline.
     */
    dependsOn: z.array(z.string()).default([]),
    allowedActions: z.array(actions).default(["stop", "start", "restart", "status"]),
  })
  .refine((s) => s.driver !== "process" || s.command, {
    message: "the process driver needs command",
    path: ["command"],
  })
  .refine((s) => s.driver !== "systemd" || s.unit, {
    message: "the systemd driver needs unit",
    path: ["unit"],
  })
  .refine((s) => s.driver !== "windows-service" || s.serviceName, {
    message: "the windows-service driver needs serviceName",
    path: ["serviceName"],
  });
export type ServiceConfig = z.output<typeof serviceSchema>;

export const agentConfigSchema = z
  .strictObject({
    host: z
      .strictObject({
        name: z.string().min(1).default(hostname()),
        groups: z.array(z.string()).default([]),
        labels: z.record(z.string(), z.string()).default({}),
      })
      .default({ name: hostname(), groups: [], labels: {} }),
    /** pid files, the seen-command journal, service logs. */
    stateDir: z.string().min(1),
    /** The lifecycle journal the shipper tails (one ECS event per line, fsynced). Default: <stateDir>/journal.ndjson */
    journal: z.string().optional(),
    topicPrefix: z.string().default(process.env.LIFELINE_TOPIC_PREFIX ?? "lifeline"),
    /** Public keys allowed to sign commands, by key id. */
    trustedKeys: z.array(trustedKeySchema).min(1),
    services: z.array(serviceSchema).min(1),
    heartbeatIntervalMs: timerMs().positive().default(10_000),
    /**
     * The lifecycle journal is renamed to <journal>.1 (older ones shifted, the oldest beyond `keep` deleted) when
     * it reaches maxBytes; the shipper follows the rename. The command journal is compacted to the ids whose
     * commands have not yet expired, so replays stay refused across restarts with bounded disk and memory.
     */
    journalRotation: z
      .strictObject({
        maxBytes: z
          .number()
          .int()
          .positive()
          .default(16 * 1024 * 1024),
        keep: z.number().int().min(1).default(3),
      })
      .default({ maxBytes: 16 * 1024 * 1024, keep: 3 }),
    /**
     * A finished command's id is forgotten this long after the command expired (the verifier refuses it as expired
     * from then on). The margin covers the signer's clock running behind this host's by as much.
     */
    forgetCommandsAfterExpiryMs: z.number().int().nonnegative().default(600_000),
    /** GET /health and /metrics (Prometheus, with process metrics). Off unless a port is given. */
    http: z
      .strictObject({ host: z.string().default("127.0.0.1"), port: z.number().int().min(0).max(65535) })
      .optional(),
    kafka: kafkaConnectionSchema.optional(),
  })
  .superRefine((config, ctx) => {
    const names = new Set(config.services.map((s) => s.name));
    config.services.forEach((service, index) => {
      for (const dependency of service.dependsOn) {
        if (!names.has(dependency) || dependency === service.name)
          ctx.addIssue({
            code: "custom",
            path: ["services", index, "dependsOn"],
            message: `"${dependency}" is not another service declared on this host`,
          });
      }
    });
    const cycle = dependencyCycle(config.services);
    if (cycle)
      ctx.addIssue({ code: "custom", path: ["services"], message: `dependsOn cycle: ${cycle.join(" -> ")}` });
  });
export type AgentConfig = z.output<typeof agentConfigSchema>;

export function loadAgentConfig(file: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return loadConfigFile(file, agentConfigSchema, {
    env,
    overrides: { ...kafkaEnvOverrides, LIFELINE_HOST_NAME: { path: "host.name" } },
  });
}

/** A cycle among services' dependsOn, as the names along it, or undefined. */
export function dependencyCycle(services: { name: string; dependsOn: string[] }[]): string[] | undefined {
  const edges = new Map(services.map((s) => [s.name, s.dependsOn]));
  const state = new Map<string, "visiting" | "done">();
  const path: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === "done") return undefined;
    if (state.get(name) === "visiting") return [...path.slice(path.indexOf(name)), name];
    state.set(name, "visiting");
    path.push(name);
    for (const next of edges.get(name) ?? []) {
      const found = edges.has(next) ? visit(next) : undefined;
      if (found) return found;
    }
    path.pop();
    state.set(name, "done");
    return undefined;
  };
  for (const name of edges.keys()) {
    const found = visit(name);
    if (found) return found;
  }
  return undefined;
}

function isEd25519PublicKey(pem: string): boolean {
  try {
    return createPublicKey(pem).asymmetricKeyType === "ed25519";
  } catch {
    return false;
  }
}
