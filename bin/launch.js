#!/usr/bin/env node
// The package's `lifeline` command. Installed, it runs the compiled build (dist/): Node does not strip TypeScript
// types under node_modules. In a checkout it runs the TypeScript source, so what you edit is what runs.
import { existsSync } from "node:fs";

const source = new URL("./lifeline.ts", import.meta.url);
await import(existsSync(source) ? source.href : new URL("../dist/bin/lifeline.js", import.meta.url).href);
