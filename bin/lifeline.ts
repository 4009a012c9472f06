#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { CommanderError } from "commander";
import { ConfigError, describeError, LifelineError } from "../core/errors.ts";
import { buildProgram, type CliRun } from "./cli.ts";

const ANSWERED = new Set(["commander.helpDisplayed", "commander.help", "commander.version"]);

async function main(argv: string[]): Promise<number> {
  const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  const run: CliRun = { exitCode: 0 };
  const program = buildProgram(run, version);
  if (argv.length === 0) {
    process.stderr.write(program.helpInformation());
    return 2;
  }
  try {
    await program.parseAsync(argv, { from: "user" });
    return run.exitCode;
  } catch (error) {
    // commander printed its own message (unknown option, missing argument ...) or the help.
    if (error instanceof CommanderError) return ANSWERED.has(error.code) ? 0 : 2;
    process.stderr.write(`lifeline${run.command ? ` ${run.command}` : ""}: ${describeError(error)}\n`);
    if (!(error instanceof LifelineError) && process.env.LIFELINE_DEBUG) console.error(error);
    return error instanceof ConfigError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
