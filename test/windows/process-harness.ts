/**
 * Runs under `wine node.exe` in the Windows test bed: drives the agent's WindowsProcessDriver over the real
 * Win32 port (CreateProcessW into a job object, CTRL_BREAK through ctrl-break.ts, TerminateJobObject) on the Go
 * fixture's console modes, and writes what happened to a JSON file (`wine node.exe` cannot write to a Linux pipe).
 *
 *   node.exe process-harness.ts <plan.json> <results.json>
 *
 * A scenario's steps run on one driver; `fresh: true` on a step gives it a new driver and port (a new worker, as
 * after an agent restart, though in the same process: a second harness run is a new process).
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { ServiceConfig } from "../../agent/config.ts";
import { WindowsProcessDriver, win32Processes } from "../../agent/drivers/windows-process.ts";
import { OutcomeError } from "../../core/outcome.ts";

interface Step {
  action: "start" | "stop" | "state" | "exited" | "wait" | "pid";
  graceMs?: number;
  /** wait: until the service's log contains this text. */
  text?: string;
  /** pid: a process id to look up through the port (a child the service printed). */
  pid?: number;
}
interface Scenario {
  name: string;
  command: string[];
  stateDir: string;
  steps: Step[];
}

const [planFile, resultsFile] = process.argv.slice(2) as [string, string];
const plan = JSON.parse(readFileSync(planFile, "utf8")) as { scenarios: Scenario[] };
const port = win32Processes();
const results: Record<string, unknown[]> = {};

for (const scenario of plan.scenarios) {
  // The fields the driver reads (the staged folder has no zod to parse a whole config with).
  const service = { name: scenario.name, command: scenario.command } as ServiceConfig;
  const driver = new WindowsProcessDriver(service, scenario.stateDir, port);
  const log = `${scenario.stateDir}\\logs\\${scenario.name}.log`;
  const outcomes: unknown[] = [];
  for (const step of scenario.steps) {
    const began = Date.now();
    try {
      let result: unknown;
      if (step.action === "start") result = await driver.start({ LIFELINE_TEST: "1" });
      else if (step.action === "stop") result = (await driver.stop(step.graceMs ?? 5_000)) ?? "already";
      else if (step.action === "state") result = await driver.state();
      else if (step.action === "exited") result = (await driver.exited()) ?? "running";
      else if (step.action === "pid") {
        const text = readFileSync(log, "utf8");
        const child = Number(/started child pid (\d+)/.exec(text)?.[1]);
        result = { child, info: await port.process(child) };
      } else {
        const deadline = Date.now() + 30_000;
        let text = "";
        while (Date.now() < deadline) {
          try {
            text = readFileSync(log, "utf8");
          } catch {
            text = "";
          }
          if (text.includes(step.text ?? "")) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        result = { found: text.includes(step.text ?? ""), text };
      }
      outcomes.push({ action: step.action, outcome: "success", result, ms: Date.now() - began });
    } catch (error) {
      outcomes.push({
        action: step.action,
        outcome: "failure",
        ...(error instanceof OutcomeError
          ? { reason: error.reason, message: error.message, evidence: error.evidence }
          : { reason: "exception", message: (error as Error).stack }),
        ms: Date.now() - began,
      });
    }
  }
  outcomes.push({
    action: "log",
    text: (() => {
      try {
        return readFileSync(log, "utf8");
      } catch {
        return "";
      }
    })(),
  });
  results[scenario.name] = outcomes;
}
writeFileSync(resultsFile, JSON.stringify(results, null, 2));
process.exit(0);
