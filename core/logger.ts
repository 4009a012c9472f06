import { type Logger, pino } from "pino";

export type { Logger };

/**
 * One pino root per process; components take children named after themselves so every line says
 * which part of Lifeline wrote it. JSON to stdout (or fd 2 for CLI commands whose stdout is their output).
 */
export function createLogger(component: string, options?: { level?: string; destination?: 1 | 2 }): Logger {
  const level = options?.level ?? process.env.LIFELINE_LOG_LEVEL ?? "info";
  return pino(
    { name: `lifeline.${component}`, level, base: { pid: process.pid } },
    pino.destination({ fd: options?.destination ?? 1, sync: false }),
  );
}
