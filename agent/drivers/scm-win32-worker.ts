/**
 * The Win32 Service Control Manager API through koffi, on a worker thread of its own: StartServiceW and
 * ControlService block (up to 30 s while a service's process connects or handles a control), and GetLastError must
 * be read on the thread that made the call, right after it. The main thread sends { id, op, service | pid } and gets
 * { id, result } back; each call opens and closes its own handles.
 */
import { createRequire } from "node:module";
import { serveWin32 } from "./win32-worker.ts";

const koffi = createRequire(import.meta.url)("koffi");

const advapi32 = koffi.load("advapi32.dll");
const kernel32 = koffi.load("kernel32.dll");

const SERVICE_STATUS = koffi.struct("SERVICE_STATUS", {
  dwServiceType: "uint32",
  dwCurrentState: "uint32",
  dwControlsAccepted: "uint32",
  dwWin32ExitCode: "uint32",
  dwServiceSpecificExitCode: "uint32",
  dwCheckPoint: "uint32",
  dwWaitHint: "uint32",
});
const SERVICE_STATUS_PROCESS = koffi.struct("SERVICE_STATUS_PROCESS", {
  dwServiceType: "uint32",
  dwCurrentState: "uint32",
  dwControlsAccepted: "uint32",
  dwWin32ExitCode: "uint32",
  dwServiceSpecificExitCode: "uint32",
  dwCheckPoint: "uint32",
  dwWaitHint: "uint32",
  dwProcessId: "uint32",
  dwServiceFlags: "uint32",
});
const ENUM_SERVICE_STATUSW = koffi.struct("ENUM_SERVICE_STATUSW", {
  lpServiceName: "str16",
  lpDisplayName: "str16",
  ServiceStatus: SERVICE_STATUS,
});

const SC_ACTION = koffi.struct("SC_ACTION", { Type: "int", Delay: "uint32" });
// Read back: the actions are a pointer into the same buffer, decoded by count.
const SERVICE_FAILURE_ACTIONSW = koffi.struct("SERVICE_FAILURE_ACTIONSW", {
  dwResetPeriod: "uint32",
  lpRebootMsg: "void*",
  lpCommand: "void*",
  cActions: "uint32",
  lpsaActions: "void*",
});
// Written: the actions as an array (NULL reboot message and command: left as they are). Named in
// ChangeServiceConfig2W's declaration below.
koffi.struct("SERVICE_FAILURE_ACTIONSW_IN", {
  dwResetPeriod: "uint32",
  lpRebootMsg: "char16_t*",
  lpCommand: "char16_t*",
  cActions: "uint32",
  lpsaActions: "SC_ACTION*",
});

const GetLastError = kernel32.func("uint32 __stdcall GetLastError()");
const OpenProcess = kernel32.func("void* __stdcall OpenProcess(uint32 access, bool inherit, uint32 pid)");
const TerminateProcess = kernel32.func("bool __stdcall TerminateProcess(void* process, uint32 code)");
const CloseHandle = kernel32.func("bool __stdcall CloseHandle(void* handle)");
const OpenSCManagerW = advapi32.func(
  "void* __stdcall OpenSCManagerW(const char16_t* machine, const char16_t* database, uint32 access)",
);
const OpenServiceW = advapi32.func(
  "void* __stdcall OpenServiceW(void* scm, const char16_t* name, uint32 access)",
);
const CloseServiceHandle = advapi32.func("bool __stdcall CloseServiceHandle(void* handle)");
const QueryServiceStatusEx = advapi32.func(
  "bool __stdcall QueryServiceStatusEx(void* service, int level, _Out_ SERVICE_STATUS_PROCESS* status, uint32 size, _Out_ uint32* needed)",
);
const ControlService = advapi32.func(
  "bool __stdcall ControlService(void* service, uint32 control, _Out_ SERVICE_STATUS* status)",
);
const StartServiceW = advapi32.func("bool __stdcall StartServiceW(void* service, uint32 argc, void* argv)");
const QueryServiceConfig2W = advapi32.func(
  "bool __stdcall QueryServiceConfig2W(void* service, uint32 level, _Out_ uint8_t* buffer, uint32 size, _Out_ uint32* needed)",
);
const ChangeServiceConfig2W = advapi32.func(
  "bool __stdcall ChangeServiceConfig2W(void* service, uint32 level, SERVICE_FAILURE_ACTIONSW_IN* info)",
);
const EnumDependentServicesW = advapi32.func(
  "bool __stdcall EnumDependentServicesW(void* service, uint32 state, _Out_ uint8_t* buffer, uint32 size, _Out_ uint32* needed, _Out_ uint32* count)",
);

// The registry: HKEY_LOCAL_MACHINE is a sign-extended predefined handle, passed as a pointer-sized integer.
const RegOpenKeyExW = advapi32.func(
  "int32 __stdcall RegOpenKeyExW(intptr_t key, const char16_t* subKey, uint32 options, uint32 sam, _Out_ void** result)",
);
const RegQueryValueExW = advapi32.func(
  "int32 __stdcall RegQueryValueExW(void* key, const char16_t* name, void* reserved, _Out_ uint32* type, _Out_ uint8_t* data, _Inout_ uint32* size)",
);
const RegSetValueExW = advapi32.func(
  "int32 __stdcall RegSetValueExW(void* key, const char16_t* name, uint32 reserved, uint32 type, const uint8_t* data, uint32 size)",
);
const RegDeleteValueW = advapi32.func("int32 __stdcall RegDeleteValueW(void* key, const char16_t* name)");
const RegCloseKey = advapi32.func("int32 __stdcall RegCloseKey(void* key)");
const HKEY_LOCAL_MACHINE = -2147483646; // (HKEY)(LONG)0x80000002
const KEY_QUERY_VALUE = 0x0001;
const KEY_SET_VALUE = 0x0002;
const REG_MULTI_SZ = 7;
const ERROR_FILE_NOT_FOUND = 2;

const SC_MANAGER_CONNECT = 0x0001;
const SERVICE_QUERY_CONFIG = 0x0001;
const SERVICE_CHANGE_CONFIG = 0x0002;
const SERVICE_CONFIG_FAILURE_ACTIONS = 2;
const ERROR_INSUFFICIENT_BUFFER = 122;
const SERVICE_QUERY_STATUS = 0x0004;
const SERVICE_ENUMERATE_DEPENDENTS = 0x0008;
const SERVICE_START = 0x0010;
const SERVICE_STOP = 0x0020;
const SERVICE_CONTROL_STOP = 1;
const SC_STATUS_PROCESS_INFO = 0;
const SERVICE_STATE_ALL = 3;
const ERROR_MORE_DATA = 234;
const PROCESS_TERMINATE = 0x0001;

type Result = Record<string, unknown> & { error: number; raw: string };

/** A service's own registry key (where the SCM keeps its configuration, and reads its Environment value). */
function withServiceKey(name: string, access: number, use: (key: unknown, path: string) => Result): Result {
  const path = `SYSTEM\\CurrentControlSet\\Services\\${name}`;
  const key: unknown[] = [null];
  const opened = RegOpenKeyExW(HKEY_LOCAL_MACHINE, path, 0, access, key);
  if (opened !== 0) return { error: opened, raw: `RegOpenKeyExW(HKLM\\${path})` };
  try {
    return use(key[0], `HKLM\\${path}`);
  } finally {
    RegCloseKey(key[0]);
  }
}

/** REG_MULTI_SZ: UTF-16LE strings, each NUL-terminated, and one more NUL. */
const decodeMultiSz = (data: Buffer) =>
  data
    .toString("utf16le")
    .split("\0")
    .filter((entry) => entry.length > 0);
const encodeMultiSz = (entries: string[]) =>
  Buffer.from(`${entries.map((e) => `${e}\0`).join("")}\0`, "utf16le");

function withService(name: string, access: number, use: (service: unknown) => Result): Result {
  const scm = OpenSCManagerW(null, null, SC_MANAGER_CONNECT);
  if (!scm) return { error: GetLastError(), raw: "OpenSCManagerW" };
  try {
    const service = OpenServiceW(scm, name, access);
    if (!service) return { error: GetLastError(), raw: `OpenServiceW(${name})` };
    try {
      return use(service);
    } finally {
      CloseServiceHandle(service);
    }
  } finally {
    CloseServiceHandle(scm);
  }
}

const operations: Record<
  string,
  (message: {
    service?: string;
    pid?: number;
    actions?: unknown;
    value?: string;
    entries?: string[] | null;
  }) => Result
> = {
  query: ({ service }) =>
    withService(service as string, SERVICE_QUERY_STATUS, (handle) => {
      const status: Record<string, number> = {};
      const needed = [0];
      if (
        !QueryServiceStatusEx(
          handle,
          SC_STATUS_PROCESS_INFO,
          status,
          koffi.sizeof(SERVICE_STATUS_PROCESS),
          needed,
        )
      )
        return { error: GetLastError(), raw: `QueryServiceStatusEx(${service})` };
      return { error: 0, raw: `QueryServiceStatusEx(${service})`, status };
    }),
  stop: ({ service }) =>
    withService(service as string, SERVICE_STOP, (handle) => {
      const status = {};
      const ok = ControlService(handle, SERVICE_CONTROL_STOP, status);
      return { error: ok ? 0 : GetLastError(), raw: `ControlService(${service}, SERVICE_CONTROL_STOP)` };
    }),
  start: ({ service }) =>
    withService(service as string, SERVICE_START, (handle) => {
      const ok = StartServiceW(handle, 0, null);
      return { error: ok ? 0 : GetLastError(), raw: `StartServiceW(${service})` };
    }),
  dependents: ({ service }) =>
    withService(service as string, SERVICE_ENUMERATE_DEPENDENTS, (handle) => {
      const raw = `EnumDependentServicesW(${service})`;
      const needed = [0];
      const count = [0];
      // Sized by a first call that reports ERROR_MORE_DATA and the bytes it needs (none: no dependents).
      if (EnumDependentServicesW(handle, SERVICE_STATE_ALL, null, 0, needed, count))
        return { error: 0, raw, services: [] };
      const first = GetLastError();
      if (first !== ERROR_MORE_DATA) return { error: first, raw, services: [] };
      const buffer = Buffer.alloc(needed[0] as number);
      if (!EnumDependentServicesW(handle, SERVICE_STATE_ALL, buffer, buffer.length, needed, count))
        return { error: GetLastError(), raw, services: [] };
      const entries = koffi.decode(buffer, koffi.array(ENUM_SERVICE_STATUSW, count[0] as number)) as Array<{
        lpServiceName: string;
        ServiceStatus: { dwCurrentState: number };
      }>;
      return {
        error: 0,
        raw,
        services: entries.map((e) => ({
          name: e.lpServiceName,
          stateCode: e.ServiceStatus.dwCurrentState,
        })),
      };
    }),
  failureActions: ({ service }) =>
    withService(service as string, SERVICE_QUERY_CONFIG, (handle) => {
      const raw = `QueryServiceConfig2W(${service}, SERVICE_CONFIG_FAILURE_ACTIONS)`;
      const needed = [0];
      // Sized by a first call that reports ERROR_INSUFFICIENT_BUFFER and the bytes it needs.
      if (!QueryServiceConfig2W(handle, SERVICE_CONFIG_FAILURE_ACTIONS, null, 0, needed)) {
        const first = GetLastError();
        if (first !== ERROR_INSUFFICIENT_BUFFER) return { error: first, raw };
      }
      const buffer = Buffer.alloc(Math.max(needed[0] as number, koffi.sizeof(SERVICE_FAILURE_ACTIONSW)));
      if (!QueryServiceConfig2W(handle, SERVICE_CONFIG_FAILURE_ACTIONS, buffer, buffer.length, needed))
        return { error: GetLastError(), raw };
      const info = koffi.decode(buffer, SERVICE_FAILURE_ACTIONSW) as {
        dwResetPeriod: number;
        cActions: number;
        lpsaActions: unknown;
      };
      const list =
        info.cActions > 0 && info.lpsaActions
          ? (koffi.decode(info.lpsaActions, koffi.array(SC_ACTION, info.cActions)) as Array<{
              Type: number;
              Delay: number;
            }>)
          : [];
      return {
        error: 0,
        raw,
        actions: {
          resetPeriodS: info.dwResetPeriod,
          actions: list.map((a) => ({ type: a.Type, delayMs: a.Delay })),
        },
      };
    }),
  setFailureActions: ({ service, actions }) =>
    // SERVICE_START too: the SCM asks for it when the actions include a restart.
    withService(service as string, SERVICE_CHANGE_CONFIG | SERVICE_START, (handle) => {
      const wanted = actions as { resetPeriodS: number; actions: Array<{ type: number; delayMs: number }> };
      // Zero actions with a non-NULL array deletes them; NULL would leave them as they are.
      const list = wanted.actions.length > 0 ? wanted.actions : [{ type: 0, delayMs: 0 }];
      const ok = ChangeServiceConfig2W(handle, SERVICE_CONFIG_FAILURE_ACTIONS, {
        dwResetPeriod: wanted.resetPeriodS,
        lpRebootMsg: null,
        lpCommand: null,
        cActions: wanted.actions.length,
        lpsaActions: list.map((a) => ({ Type: a.type, Delay: a.delayMs })),
      });
      return {
        error: ok ? 0 : GetLastError(),
        raw: `ChangeServiceConfig2W(${service}, SERVICE_CONFIG_FAILURE_ACTIONS)`,
      };
    }),
  // A REG_MULTI_SZ value of the service's key: absent is not an error (entries undefined); another type is.
  readMultiSz: ({ service, value }) =>
    withServiceKey(service as string, KEY_QUERY_VALUE, (key, path) => {
      const raw = `RegQueryValueExW(${path}, ${value})`;
      const type = [0];
      const size = [0];
      const sized = RegQueryValueExW(key, value, null, type, null, size);
      if (sized === ERROR_FILE_NOT_FOUND) return { error: 0, raw: `${raw}: not set` };
      if (sized !== 0) return { error: sized, raw };
      if (type[0] !== REG_MULTI_SZ) return { error: 1630, raw: `${raw}: type ${type[0]}, not REG_MULTI_SZ` };
      const data = Buffer.alloc(size[0] as number);
      const read = RegQueryValueExW(key, value, null, type, data, size);
      if (read !== 0) return { error: read, raw };
      return { error: 0, raw, entries: decodeMultiSz(data.subarray(0, size[0] as number)) };
    }),
  // Written as REG_MULTI_SZ, or deleted when entries is null.
  writeMultiSz: ({ service, value, entries }) =>
    withServiceKey(service as string, KEY_SET_VALUE, (key, path) => {
      if (entries === null) {
        const deleted = RegDeleteValueW(key, value);
        return {
          error: deleted === ERROR_FILE_NOT_FOUND ? 0 : deleted,
          raw: `RegDeleteValueW(${path}, ${value})`,
        };
      }
      const data = encodeMultiSz(entries as string[]);
      return {
        error: RegSetValueExW(key, value, 0, REG_MULTI_SZ, data, data.length),
        raw: `RegSetValueExW(${path}, ${value}, REG_MULTI_SZ)`,
      };
    }),
  terminate: ({ pid }) => {
    const raw = `TerminateProcess(${pid})`;
    const process = OpenProcess(PROCESS_TERMINATE, false, pid as number);
    if (!process) return { error: GetLastError(), raw: `OpenProcess(${pid})` };
    try {
      return { error: TerminateProcess(process, 1) ? 0 : GetLastError(), raw };
    } finally {
      CloseHandle(process);
    }
  },
};

serveWin32(operations);
