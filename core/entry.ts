import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The `lifeline` entry point of this installation: the TypeScript source, or its compiled twin under dist/. */
export const lifelineEntry = fileURLToPath(
  new URL(import.meta.url.endsWith(".js") ? "../bin/lifeline.js" : "../bin/lifeline.ts", import.meta.url),
);

/**
 * How a long-running agent is best run: compiled JavaScript (`npm run build`) with a small young generation and
 * V8's lite mode (no optimizing compiler: the agent idles, and sends a signal in milliseconds either way). Lite
 * mode needs the compiled files, because Node strips TypeScript types with WebAssembly, which lite mode lacks.
 * Without a build, the TypeScript entry and Node's defaults.
 */
export function leanAgentLauncher(): { nodeArgs: string[]; entry: string; compiled: boolean } {
  const compiled = [
    lifelineEntry.endsWith(".js") ? lifelineEntry : undefined,
    fileURLToPath(new URL("../dist/bin/lifeline.js", import.meta.url)),
  ].find((file): file is string => file !== undefined && existsSync(file));
  return compiled
    ? { nodeArgs: ["--max-semi-space-size=1", "--lite-mode"], entry: compiled, compiled: true }
    : { nodeArgs: [], entry: lifelineEntry, compiled: false };
}
