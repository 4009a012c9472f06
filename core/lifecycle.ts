import type { Logger } from "./logger.ts";

/**
 * The contract of every long-running part of Lifeline.
 * - start() resolves once the component is ready to do its work.
 * - stop() stops intake, drains what is in flight downstream, releases resources; it must be safe to call
 *   twice, and before start(). The signal aborts when the caller's deadline is up: drain faster, then give up.
 */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  stop(deadline: AbortSignal): Promise<void>;
}

/**
 * Starts components in order (sinks before sources) and stops them in reverse, so nothing is read that
 * cannot be written. A component that fails to start stops those already started.
 */
export class Supervisor {
  private readonly started: Component[] = [];
  private stopping: Promise<void> | undefined;

  private readonly components: readonly Component[];
  private readonly logger: Logger;

  constructor(components: readonly Component[], logger: Logger) {
    this.components = components;
    this.logger = logger;
  }

  async start(): Promise<void> {
    for (const component of this.components) {
      const began = performance.now();
      try {
        await component.start();
      } catch (error) {
        this.logger.error({ component: component.name, err: error }, "component failed to start");
        await this.stop(AbortSignal.timeout(10_000));
        throw error;
      }
      this.started.push(component);
      this.logger.info(
        { component: component.name, ms: Math.round(performance.now() - began) },
        "component started",
      );
    }
  }

  stop(deadline: AbortSignal): Promise<void> {
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
  await supervisor.start();
  options.onStarted?.();
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  logger.info({ signal }, "stopping");
  await supervisor.stop(AbortSignal.timeout(options.stopDeadlineMs));
}
