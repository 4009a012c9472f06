import type { Logger } from "./logger.ts";

/**
 * The contract of every long-running part of Lifeline.
 * - start() resolves once the component is ready to do its work. One that may wait long (for a server) ends its
 *   wait when `abort` fires: the process was asked to stop meanwhile.
 * - stop() stops intake, drains what is in flight downstream, releases resources; it must be safe to call
 *   twice, and before start(). The signal aborts when the caller's deadline is up: drain faster, then give up.
 */
export interface Component {
  readonly name: string;
  start(abort?: AbortSignal): Promise<void>;
  stop(deadline: AbortSignal): Promise<void>;
}

/**
 * Starts components in order (sinks before sources) and stops them in reverse, so nothing is read that
 * cannot be written. A component that fails to start stops those already started; stop() during the start ends
 * it (the component starting is told through its abort signal, and stopped if it started anyway).
 */
export class Supervisor {
  private readonly started: Component[] = [];
  private stopping: Promise<void> | undefined;
  private readonly abortStart = new AbortController();

  private readonly components: readonly Component[];
  private readonly logger: Logger;

  constructor(components: readonly Component[], logger: Logger) {
    this.components = components;
    this.logger = logger;
  }

  async start(): Promise<void> {
    const aborted = this.abortStart.signal;
    for (const component of this.components) {
      if (aborted.aborted) return;
      const began = performance.now();
      try {
        await component.start(aborted);
      } catch (error) {
        if (aborted.aborted) return;
        this.logger.error({ component: component.name, err: error }, "component failed to start");
        await this.stop(AbortSignal.timeout(10_000));
        throw error;
      }
      if (aborted.aborted) {
        // Started while the others were being stopped: stop it too.
        await component.stop(AbortSignal.timeout(10_000)).catch(() => {});
        return;
      }
      this.started.push(component);
      this.logger.info(
        { component: component.name, ms: Math.round(performance.now() - began) },
        "component started",
      );
    }
  }

  stop(deadline: AbortSignal): Promise<void> {
    this.abortStart.abort();
    this.stopping ??= this.stopInReverse(deadline);
    return this.stopping;
  }

  private async stopInReverse(deadline: AbortSignal): Promise<void> {
    const errors: unknown[] = [];
    for (const component of [...this.started].reverse()) {
      try {
        await component.stop(deadline);
        this.logger.info({ component: component.name }, "component stopped");
      } catch (error) {
        errors.push(error);
        this.logger.error({ component: component.name, err: error }, "component failed to stop cleanly");
      }
    }
    this.started.length = 0;
    if (errors.length > 0) throw new AggregateError(errors, "some components did not stop cleanly");
  }
}

/**
 * The main loop of a long-running command: start, run until SIGTERM or SIGINT (a Windows service stop arrives as
 * SIGINT through its wrapper), then stop in reverse within the deadline.
 */
export async function runUntilSignal(
  supervisor: Supervisor,
  logger: Logger,
  options: { stopDeadlineMs: number; onStarted?: () => void },
): Promise<void> {
  // Listening before the start: a stop while a component waits for its server ends the wait (exit 0), it is not
  // Node's default death by signal.
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  const starting = supervisor.start().then(() => "started" as const);
  const first = await Promise.race([starting, signal]);
  if (first === "started") {
    options.onStarted?.();
    logger.info({ signal: await signal }, "stopping");
  } else logger.info({ signal: first }, "stopping before the start finished");
  await supervisor.stop(AbortSignal.timeout(options.stopDeadlineMs));
  if (first !== "started") await starting;
}
