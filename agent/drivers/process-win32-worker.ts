/**
 * Windows processes for the process driver through koffi, on a worker thread of its own (see win32-worker.ts):
 * CreateProcessW into a named job object, the job's live process ids, a process's creation time and exit code,
 * TerminateJobObject. Handles of the processes this agent started are kept, so their exit codes stay readable
 * after they exit (as a parent on Linux can wait for its child).
 */
import { createRequire } from "node:module";
import { serveWin32, type Win32Result } from "./win32-worker.ts";

const koffi = createRequire(import.meta.url)("koffi");
const kernel32 = koffi.load("kernel32.dll");

koffi.struct("SECURITY_ATTRIBUTES", {
  nLength: "uint32",
  lpSecurityDescriptor: "void*",
  bInheritHandle: "int32",
});
koffi.struct("STARTUPINFOW", {
  cb: "uint32",
  lpReserved: "void*",
  lpDesktop: "void*",
  lpTitle: "void*",
  dwX: "uint32",
  dwY: "uint32",
  dwXSize: "uint32",
  dwYSize: "uint32",
  dwXCountChars: "uint32",
  dwYCountChars: "uint32",
  dwFillAttribute: "uint32",
  dwFlags: "uint32",
  wShowWindow: "uint16",
  cbReserved2: "uint16",
  lpReserved2: "void*",
  hStdInput: "void*",
  hStdOutput: "void*",
  hStdError: "void*",
});
koffi.struct("PROCESS_INFORMATION", {
  hProcess: "void*",
  hThread: "void*",
  dwProcessId: "uint32",
  dwThreadId: "uint32",
});

const GetLastError = kernel32.func("uint32 __stdcall GetLastError()");
const CloseHandle = kernel32.func("bool __stdcall CloseHandle(void* handle)");
const CreateFileW = kernel32.func(
  "void* __stdcall CreateFileW(const char16_t* name, uint32 access, uint32 share, SECURITY_ATTRIBUTES* security, uint32 disposition, uint32 flags, void* template)",
);
const CreateJobObjectW = kernel32.func(
  "void* __stdcall CreateJobObjectW(SECURITY_ATTRIBUTES* security, const char16_t* name)",
);
const OpenJobObjectW = kernel32.func(
  "void* __stdcall OpenJobObjectW(uint32 access, int inherit, const char16_t* name)",
);
const AssignProcessToJobObject = kernel32.func(
  "bool __stdcall AssignProcessToJobObject(void* job, void* process)",
);
const TerminateJobObject = kernel32.func("bool __stdcall TerminateJobObject(void* job, uint32 code)");
const QueryInformationJobObject = kernel32.func(
  "bool __stdcall QueryInformationJobObject(void* job, int infoClass, _Out_ uint8_t* info, uint32 size, void* returned)",
);
const CreateProcessW = kernel32.func(
  "bool __stdcall CreateProcessW(const char16_t* application, uint8_t* commandLine, void* processSecurity, void* threadSecurity, int inheritHandles, uint32 flags, uint8_t* environment, const char16_t* cwd, STARTUPINFOW* startup, _Out_ PROCESS_INFORMATION* info)",
);
const ResumeThread = kernel32.func("uint32 __stdcall ResumeThread(void* thread)");
const TerminateProcess = kernel32.func("bool __stdcall TerminateProcess(void* process, uint32 code)");
const OpenProcess = kernel32.func("void* __stdcall OpenProcess(uint32 access, int inherit, uint32 pid)");
const GetExitCodeProcess = kernel32.func(
  "bool __stdcall GetExitCodeProcess(void* process, _Out_ uint32* code)",
);
const GetProcessTimes = kernel32.func(
  "bool __stdcall GetProcessTimes(void* process, _Out_ uint64_t* creation, _Out_ uint64_t* exit, _Out_ uint64_t* kernel, _Out_ uint64_t* user)",
);

const GENERIC_READ = 0x80000000;
const FILE_APPEND_DATA = 0x4;
const SYNCHRONIZE = 0x100000;
const FILE_SHARE_ALL = 0x1 | 0x2 | 0x4; // read, write, delete: a shipper may tail and rotate the log
const OPEN_EXISTING = 3;
const OPEN_ALWAYS = 4;
const FILE_ATTRIBUTE_NORMAL = 0x80;
const STARTF_USESTDHANDLES = 0x100;
const CREATE_SUSPENDED = 0x4;
const CREATE_UNICODE_ENVIRONMENT = 0x400;
const CREATE_NO_WINDOW = 0x08000000;
const JOB_OBJECT_QUERY = 0x4;
const JOB_OBJECT_TERMINATE = 0x8;
const JobObjectBasicProcessIdList = 3;
const PROCESS_QUERY_LIMITED_INFORMATION = 0x1000;

/** Handles of the processes this agent started, by pid: their exit codes stay readable after they exit. */
const children = new Map<number, unknown>();
/** Jobs this agent created or opened, by name: kept open so a name is never reused by another object. */
const jobs = new Map<string, unknown>();

/** CreateFileW fails with INVALID_HANDLE_VALUE (-1), not NULL. */
const invalid = (handle: unknown) => !handle || BigInt(koffi.address(handle)) === 0xffffffffffffffffn;

const inheritable = () => ({ nLength: 24, lpSecurityDescriptor: null, bInheritHandle: 1 });

interface SpawnArgs {
  commandLine: string;
  cwd?: string;
  /** UTF-16LE "K=V\0...\0\0", built by the caller. */
  environment: Uint8Array;
  logPath: string;
  job: string;
}

function spawnInJob({ commandLine, cwd, environment, logPath, job }: SpawnArgs): Win32Result & {
  pid?: number;
  createdAt?: string;
} {
  let jobHandle = jobs.get(job);
  if (!jobHandle) {
    jobHandle = CreateJobObjectW(null, job);
    // An existing job of that name (ERROR_ALREADY_EXISTS) is the one a previous agent made for this service.
    if (!jobHandle) return { error: GetLastError(), raw: `CreateJobObjectW(${job})` };
    jobs.set(job, jobHandle);
  }
  const log = CreateFileW(
    logPath,
    FILE_APPEND_DATA | SYNCHRONIZE,
    FILE_SHARE_ALL,
    inheritable(),
    OPEN_ALWAYS,
    FILE_ATTRIBUTE_NORMAL,
    null,
  );
  if (invalid(log)) return { error: GetLastError(), raw: `CreateFileW(${logPath})` };
  const nul = CreateFileW("NUL", GENERIC_READ, FILE_SHARE_ALL, inheritable(), OPEN_EXISTING, 0, null);
  try {
    const info: Record<string, unknown> = {};
    const ok = CreateProcessW(
      null,
      Buffer.from(`${commandLine}\0`, "utf16le"),
      null,
      null,
      1,
      // A console of its own without a window: CTRL_C to that console reaches exactly the service's tree.
      CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT | CREATE_NO_WINDOW,
      Buffer.from(environment),
      cwd ?? null,
      {
        cb: koffi.sizeof("STARTUPINFOW"),
        dwFlags: STARTF_USESTDHANDLES,
        hStdInput: invalid(nul) ? null : nul,
        hStdOutput: log,
        hStdError: log,
      },
      info,
    );
    if (!ok) return { error: GetLastError(), raw: `CreateProcessW(${commandLine})` };
    const pid = info.dwProcessId as number;
    // Suspended until it is in the job: nothing it starts can escape the tree.
    if (!AssignProcessToJobObject(jobHandle, info.hProcess)) {
      const error = GetLastError();
      TerminateProcess(info.hProcess, 1);
      CloseHandle(info.hThread);
      CloseHandle(info.hProcess);
      return { error, raw: `AssignProcessToJobObject(${job}, pid ${pid})` };
    }
    ResumeThread(info.hThread);
    CloseHandle(info.hThread);
    children.set(pid, info.hProcess);
    return {
      error: 0,
      raw: `CreateProcessW: pid ${pid} in job ${job}`,
      pid,
      createdAt: createdAt(info.hProcess),
    };
  } finally {
    CloseHandle(log);
    if (!invalid(nul)) CloseHandle(nul);
  }
}

function createdAt(handle: unknown): string | undefined {
  const creation = [0n];
  const unused = [0n];
  if (!GetProcessTimes(handle, creation, unused, [0n], [0n])) return undefined;
  return String(creation[0]);
}

/** The job's live processes (none, with exists: false, when no job has that name: nothing of it is alive). */
function jobProcesses({ job }: { job: string }): Win32Result & { exists?: boolean; pids?: number[] } {
  const raw = `QueryInformationJobObject(${job}, JobObjectBasicProcessIdList)`;
  const handle = jobs.get(job) ?? OpenJobObjectW(JOB_OBJECT_QUERY | JOB_OBJECT_TERMINATE, 0, job);
  if (!handle) {
    const error = GetLastError();
    return error === 2
      ? { error: 0, raw: `OpenJobObjectW(${job}): no such job`, exists: false, pids: [] }
      : { error, raw: `OpenJobObjectW(${job})` };
  }
  try {
    const buffer = Buffer.alloc(8 + 8 * 1024);
    if (!QueryInformationJobObject(handle, JobObjectBasicProcessIdList, buffer, buffer.length, null))
      return { error: GetLastError(), raw };
    const listed = buffer.readUInt32LE(4);
    const pids: number[] = [];
    for (let i = 0; i < listed; i++) pids.push(Number(buffer.readBigUInt64LE(8 + 8 * i)));
    return { error: 0, raw, exists: true, pids };
  } finally {
    if (!jobs.has(job)) CloseHandle(handle);
  }
}

/** A process's creation time and exit code (259, STILL_ACTIVE, while it runs); alive: false once it is gone. */
function processInfo({ pid }: { pid: number }): Win32Result & {
  alive?: boolean;
  createdAt?: string;
  exitCode?: number;
} {
  const own = children.get(pid);
  const handle = own ?? OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
  if (!handle) {
    const error = GetLastError();
    // 87: no process with that id (it exited and nothing holds it).
    return error === 87
      ? { error: 0, raw: `OpenProcess(${pid}): no such process`, alive: false }
      : { error, raw: `OpenProcess(${pid})` };
  }
  try {
    const code = [0];
    if (!GetExitCodeProcess(handle, code))
      return { error: GetLastError(), raw: `GetExitCodeProcess(${pid})` };
    const exitCode = code[0] as number;
    return {
      error: 0,
      raw: `GetExitCodeProcess(${pid}) = ${exitCode}`,
      alive: exitCode === 259,
      createdAt: createdAt(handle),
      ...(exitCode === 259 ? {} : { exitCode }),
    };
  } finally {
    if (!own) CloseHandle(handle);
  }
}

function terminateJob({ job, code }: { job: string; code: number }): Win32Result {
  const handle = jobs.get(job) ?? OpenJobObjectW(JOB_OBJECT_TERMINATE | JOB_OBJECT_QUERY, 0, job);
  if (!handle) return { error: GetLastError(), raw: `OpenJobObjectW(${job})` };
  try {
    return {
      error: TerminateJobObject(handle, code) ? 0 : GetLastError(),
      raw: `TerminateJobObject(${job}, ${code})`,
    };
  } finally {
    if (!jobs.has(job)) CloseHandle(handle);
  }
}

/** Forget a child once its exit was read. */
function release({ pid }: { pid: number }): Win32Result {
  const handle = children.get(pid);
  if (handle) CloseHandle(handle);
  children.delete(pid);
  return { error: 0, raw: `CloseHandle(pid ${pid})` };
}

// biome-ignore lint/suspicious/noExplicitAny: each operation reads its own arguments from the message
serveWin32<any>({ spawn: spawnInJob, job: jobProcesses, process: processInfo, terminateJob, release });
