import { type Win32Result, win32Worker } from "./win32-worker.ts";
import {
  type FailureActions,
  observeError,
  observeStatus,
  type ScmCall,
  type ScmPort,
  type ScQuery,
  SERVICE_STATES,
} from "./windows-service.ts";

interface WorkerResult extends Win32Result {
  status?: {
    dwServiceType: number;
    dwCurrentState: number;
    dwWin32ExitCode: number;
    dwServiceSpecificExitCode: number;
    dwCheckPoint: number;
    dwWaitHint: number;
    dwProcessId: number;
  };
  services?: Array<{ name: string; stateCode: number }>;
  actions?: FailureActions;
  entries?: string[];
}

/**
 * The Service Control Manager through its Win32 API (OpenSCManagerW, OpenServiceW, QueryServiceStatusEx,
 * ControlService, StartServiceW, EnumDependentServicesW, TerminateProcess; the service key's values through
 * RegQueryValueExW/RegSetValueExW), called through koffi on a worker
 * thread (scm-win32-worker.ts), so that blocking calls never stop the agent and GetLastError is read on the
 * calling thread. Windows only: koffi's Windows binary must be installed (@koromix/koffi-win32-x64).
 */
export function win32Scm(): ScmPort {
  const call = win32Worker<WorkerResult>("scm-win32-worker");
  const plain = (result: WorkerResult): ScmCall => ({ error: result.error, raw: result.raw });
  return {
    async query(service): Promise<ScQuery> {
      const result = await call("query", { service });
      if (result.error !== 0 || !result.status) return observeError(result.error, result.raw);
      const s = result.status;
      return observeStatus({
        stateCode: s.dwCurrentState,
        serviceType: s.dwServiceType,
        pid: s.dwProcessId,
        win32ExitCode: s.dwWin32ExitCode,
        serviceExitCode: s.dwServiceSpecificExitCode,
        checkpoint: s.dwCheckPoint,
        waitHintMs: s.dwWaitHint,
      });
    },
    async dependents(service) {
      const result = await call("dependents", { service });
      return {
        ...plain(result),
        services: (result.services ?? []).map((d) => ({
          name: d.name,
          status: SERVICE_STATES[d.stateCode]?.status ?? "unknown",
        })),
      };
    },
    stop: async (service) => plain(await call("stop", { service })),
    start: async (service) => plain(await call("start", { service })),
    terminate: async (pid) => plain(await call("terminate", { pid })),
    async failureActions(service) {
      const result = await call("failureActions", { service });
      return { ...plain(result), ...(result.actions ? { actions: result.actions } : {}) };
    },
    setFailureActions: async (service, actions) =>
      plain(await call("setFailureActions", { service, actions })),
    async readMultiSz(service, value) {
      const result = await call("readMultiSz", { service, value });
      return { ...plain(result), ...(result.entries ? { entries: result.entries } : {}) };
    },
    writeMultiSz: async (service, value, entries) =>
      plain(await call("writeMultiSz", { service, value, entries: entries ?? null })),
  };
}
