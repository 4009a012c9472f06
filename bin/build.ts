/**
 * npm run build: compiles the TypeScript to dist/ (imports rewritten to .js) and copies the files the code
 * reads at run time, so `node dist/bin/lifeline.js` is the whole command line. The agent runs best from it
 * (see leanAgentLauncher in core/entry.ts).
 */
import { spawnSync } from "node:child_process";
import { cpSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const dist = `${root}dist`;
const began = performance.now();
rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const compiled = spawnSync(process.execPath, [tsc, "-p", `${root}tsconfig.build.json`], { stdio: "inherit" });
if (compiled.status !== 0) process.exit(compiled.status ?? 1);
cpSync(`${root}package.json`, `${dist}/package.json`);
cpSync(`${root}dashboards/lifeline.ndjson`, `${dist}/dashboards/lifeline.ndjson`);
cpSync(`${root}demo/services`, `${dist}/demo/services`, { recursive: true });
process.stderr.write(`built ${dist} in ${((performance.now() - began) / 1000).toFixed(1)} s\n`);
