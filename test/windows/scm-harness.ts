/**
 * Runs under `wine node.exe` in the Windows test bed (test/windows/build-bed.sh): creates real services in the
 * Service Control Manager from the Go fixture (test/fixtures/windows/svc), drives them with the agent's
 * WindowsServiceDriver over the Win32 API port, and writes what happened, with every state the driver observed,
 * to the JSON file named by its second argument. `wine node.exe` cannot write to a Linux pipe: results go to a file.
 *
 *   node.exe scm-harness.ts <plan.json> <results.json>
 */
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { win32Scm } from "../../agent/drivers/scm-win32.ts";
import { type ScmPort, WindowsServiceDriver } from "../../agent/drivers/windows-service.ts";
import { OutcomeError } from "../../core/outcome.ts";

interface Scenario {
  /** Service name in the SCM. */
  name: string;
  /** Full command line the SCM runs; absent: the service is not created (a missing service). */
  binary?: string;
  actions: Array<{
    action: "start" | "stop";
    graceMs?: number;
    timeoutMs?: number;
    /** Passed to the start as the agent passes a command's trace: TRACEPARENT. */
    traceparent?: string;
  }>;
  /** The service's Environment registry value, written through the port before the actions. */
  environment?: string[];
  /** Leave the service in the SCM (for the agent to manage). */
  keep?: boolean;
  /** Write and read back its recovery actions through the port (ChangeServiceConfig2W, QueryServiceConfig2W). */
  probeRecovery?: boolean;
}

const [planFile, resultsFile] = process.argv.slice(2) as [string, string];
const plan = JSON.parse(readFileSync(planFile, "utf8")) as { scenarios: Scenario[] };

const koffi = createRequire(import.meta.url)("koffi");
const advapi32 = koffi.load("advapi32.dll");
const kernel32 = koffi.load("kernel32.dll");
const GetLastError = kernel32.func("uint32 __stdcall GetLastError()");
const OpenSCManagerW = advapi32.func(
  "void* __stdcall OpenSCManagerW(const char16_t*, const char16_t*, uint32)",
);
const OpenServiceW = advapi32.func("void* __stdcall OpenServiceW(void*, const char16_t*, uint32)");
const CreateServiceW = advapi32.func(
  "void* __stdcall CreateServiceW(void*, const char16_t*, const char16_t*, uint32, uint32, uint32, uint32, const char16_t*, const char16_t*, void*, const char16_t*, const char16_t*, const char16_t*)",
);
const DeleteService = advapi32.func("bool __stdcall DeleteService(void*)");
const CloseServiceHandle = advapi32.func("bool __stdcall CloseServiceHandle(void*)");
const SC_MANAGER_ALL_ACCESS = 0xf003f;
const SERVICE_ALL_ACCESS = 0xf01ff;
const SERVICE_WIN32_OWN_PROCESS = 0x10;
const SERVICE_DEMAND_START = 3;
const SERVICE_ERROR_NORMAL = 1;

const scm = OpenSCManagerW(null, null, SC_MANAGER_ALL_ACCESS);
if (!scm) throw new Error(`OpenSCManagerW failed: ${GetLastError()}`);

function create(name: string, binary: string): void {
  const existing = OpenServiceW(scm, name, SERVICE_ALL_ACCESS);
  if (existing) {
    DeleteService(existing);
    CloseServiceHandle(existing);
  }
  const handle = CreateServiceW(
    scm,
    name,
    name,
    SERVICE_ALL_ACCESS,
    SERVICE_WIN32_OWN_PROCESS,
    SERVICE_DEMAND_START,
    SERVICE_ERROR_NORMAL,
    binary,
    null,
    null,
    null,
    null,
    null,
  );
  if (!handle) throw new Error(`CreateServiceW(${name}) failed: ${GetLastError()}`);
  CloseServiceHandle(handle);
}

function remove(name: string): void {
  const handle = OpenServiceW(scm, name, SERVICE_ALL_ACCESS);
  if (!handle) return;
  DeleteService(handle);
  CloseServiceHandle(handle);
}

/** The real port, with every observation the driver made recorded in order. */
function recording(port: ScmPort, seen: string[]): ScmPort {
  return {
    ...port,
    async query(service) {
      const observation = await port.query(service);
      const last = seen.at(-1);
      const line = `${observation.status}: ${observation.evidence} checkpoint ${observation.checkpoint}`;
      if (last !== line) seen.push(line);
      return observation;
    },
  };
}

const port = win32Scm();
const results: Record<string, unknown[]> = {};
for (const scenario of plan.scenarios) {
  if (scenario.binary) create(scenario.name, scenario.binary);
  const outcomes: unknown[] = [];
  if (scenario.environment) await port.writeMultiSz(scenario.name, "Environment", scenario.environment);
  for (const step of scenario.actions) {
    const seen: string[] = [];
    const driver = new WindowsServiceDriver(scenario.name, recording(port, seen), 100);
    const began = Date.now();
    try {
      const result =
        step.action === "start"
          ? await driver.start(
              step.traceparent ? { TRACEPARENT: step.traceparent } : {},
              step.timeoutMs ?? 20_000,
            )
          : await driver.stop(step.graceMs ?? 10_000);
      outcomes.push({
        action: step.action,
        outcome: "success",
        result: result ?? "already",
        seen,
        ms: Date.now() - began,
        // What the registry holds after the start (RegQueryValueExW through the port).
        ...(step.traceparent
          ? {
              environmentAfter: await port.readMultiSz(scenario.name, "Environment"),
              savedAfter: await port.readMultiSz(scenario.name, "LifelineEnvironmentBefore"),
            }
          : {}),
      });
    } catch (error) {
      outcomes.push({
        action: step.action,
        outcome: "failure",
        ...(error instanceof OutcomeError
          ? { reason: error.reason, message: error.message, evidence: error.evidence }
          : { reason: "exception", message: (error as Error).stack }),
        seen,
        ms: Date.now() - began,
      });
    }
  }
  if (scenario.probeRecovery) {
    const written = await port.setFailureActions(scenario.name, {
      resetPeriodS: 86_400,
      actions: [{ type: 1, delayMs: 60_000 }],
    });
    const read = await port.failureActions(scenario.name);
    outcomes.push({ action: "recovery", written, read });
  }
  results[scenario.name] = outcomes;
  if (scenario.binary && !scenario.keep) remove(scenario.name);
}
writeFileSync(resultsFile, JSON.stringify(results, null, 2));
process.exit(0);
