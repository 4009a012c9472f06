import { RetryableError } from "./errors.ts";
import type { Component } from "./lifecycle.ts";
import type { Logger } from "./logger.ts";
import type { HealthReport } from "./observability/http.ts";
import { retry } from "./retry.ts";

/**
 * A server a long-running component needs before it can start (Kafka, Elasticsearch), waited for in the
 * Supervisor's start order: until `probe` succeeds the component behind it does not start, /health answers 503
 * with what is awaited, and each failed attempt logs one line naming the server, its address and the setting to
 * fix. Backoff doubles from `initialMs` to `maxMs` and stays there: it waits forever, as a service manager expects.
 * A probe that fails with anything but a RetryableError (refused credentials, a bad setting) ends the start: waiting
 * would not fix it.
 */
export class ServerGate<T = void> implements Component {
  readonly name: string;
  private readonly options: GateOptions<T>;
  private ready = false;
  private value: T | undefined;
  private attempts = 0;
  private lastError: string | undefined;
  private readonly since = Date.now();

  constructor(options: GateOptions<T>) {
    this.options = options;
    this.name = `wait-for-${options.server.toLowerCase()}`;
  }

  /** What the probe returned (the index layout, say); only after start() resolved. */
  get result(): T {
    if (!this.ready) throw new Error(`${this.options.server} is not ready yet`);
    return this.value as T;
  }

  get isReady(): boolean {
    return this.ready;
  }

  async start(abort?: AbortSignal): Promise<void> {
    const { server, address, setting, logger } = this.options;
    this.value = await retry(() => this.options.probe(), {
      retries: Number.POSITIVE_INFINITY,
      initialDelayMs: this.options.initialMs ?? 1_000,
      maxDelayMs: this.options.maxMs ?? 30_000,
      jitter: "none",
      shouldRetry: (error) => error instanceof RetryableError,
      onRetry: (error, attempt, delay) => {
        this.attempts = attempt;
        this.lastError = (error as Error).message;
        logger.warn(
          { server, address, attempt, retryInMs: delay },
          `${this.lastError} (set by ${setting}); retrying in ${Math.round(delay / 1000)} s, health 503 until then`,
        );
      },
      ...(abort ? { signal: abort } : {}),
    });
    this.ready = true;
    if (this.attempts > 0)
      logger.info(
        { server, address, attempts: this.attempts, waitedMs: Date.now() - this.since },
        `${server} at ${address} answers: starting`,
      );
  }

  async stop(): Promise<void> {}

  /** 503 with what is awaited, while waiting. */
  health(): HealthReport {
    return {
      healthy: false,
      details: {
        waitingFor: this.options.server,
        address: this.options.address,
        setting: this.options.setting,
        attempts: this.attempts,
        waitingMs: Date.now() - this.since,
        ...(this.lastError ? { lastError: this.lastError } : {}),
      },
    };
  }
}

export interface GateOptions<T> {
  server: "Kafka" | "Elasticsearch";
  address: string;
  /** Where the address comes from, for the operator to fix: "LIFELINE_KAFKA_BROKERS", "kafka.brokers in FILE". */
  setting: string;
  probe: () => Promise<T>;
  logger: Logger;
  initialMs?: number;
  maxMs?: number;
}

/** Health while any gate still waits: the first waiting gate's report; afterwards the component's own. */
export function gatedHealth(gates: ServerGate<unknown>[], health: () => HealthReport): () => HealthReport {
  return () => gates.find((gate) => !gate.isReady)?.health() ?? health();
}

/**
 * Where a component's server address comes from: the environment variable, the config file's key, or the local
 * servers' connections file, in the order resolveKafka / resolveElastic apply them.
 */
export function settingSource(
  section: "kafka" | "elasticsearch",
  options: { configFile?: string | undefined; inConfig: boolean; env?: NodeJS.ProcessEnv },
): string {
  const env = options.env ?? process.env;
  const variable = section === "kafka" ? "LIFELINE_KAFKA_BROKERS" : "LIFELINE_ES_URL";
  const key = section === "kafka" ? "kafka.brokers" : "elasticsearch.url";
  if (env[variable]) return variable;
  if (options.inConfig) return `${key} in ${options.configFile ?? "the config"}`;
  return `the local servers (\`lifeline services up\`), or ${variable}`;
}
