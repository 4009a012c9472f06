/**
 * Sends CTRL_C_EVENT to every process attached to a service's console (Windows): the graceful stop of the process
 * driver, as SIGTERM to a process group is on Linux. The agent starts each service with a console of its own (no
 * window), so that console holds exactly the service's tree. A program only receives console control events from
 * its own console, so this runs as a process of its own: it leaves the console it was given, attaches to the
 * service's, ignores CTRL_C itself, sends the event to all processes of that console, and exits. The agent's own
 * console is never touched.
 *
 * CTRL_C, not CTRL_BREAK: Go (os.Interrupt), Node (SIGINT), Java (shutdown hooks) and .NET (the generic host)
 * shut down on it, where a JVM answers CTRL_BREAK with a thread dump and carries on.
 *
 *   node ctrl-c.js <pid>     exit 0: sent; otherwise the Win32 error code, with the failing call on stderr
 */
import { createRequire } from "node:module";

const pid = Number(process.argv[2]);
const koffi = createRequire(import.meta.url)("koffi");
const kernel32 = koffi.load("kernel32.dll");
const GetLastError = kernel32.func("uint32 __stdcall GetLastError()");
const FreeConsole = kernel32.func("bool __stdcall FreeConsole()");
const AttachConsole = kernel32.func("bool __stdcall AttachConsole(uint32 pid)");
const SetConsoleCtrlHandler = kernel32.func("bool __stdcall SetConsoleCtrlHandler(void* handler, int add)");
const GenerateConsoleCtrlEvent = kernel32.func(
  "bool __stdcall GenerateConsoleCtrlEvent(uint32 event, uint32 group)",
);
const CTRL_C_EVENT = 0;

function fail(call: string): never {
  const error = GetLastError();
  process.stderr.write(`${call} failed with error ${error}\n`);
  process.exit(error || 1);
}

if (!Number.isInteger(pid) || pid <= 0) {
  process.stderr.write(`usage: ctrl-c <pid> (got ${process.argv.slice(2).join(" ")})\n`);
  process.exit(87);
}
FreeConsole();
if (!AttachConsole(pid)) fail(`AttachConsole(${pid})`);
// This process ignores CTRL_C from now on (the flag is its own); the service's processes do not.
SetConsoleCtrlHandler(null, 1);
// Group 0: every process attached to this console, which is the service's tree.
if (!GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0)) fail("GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0)");
FreeConsole();
process.stdout.write(`GenerateConsoleCtrlEvent(CTRL_C_EVENT) sent to the console of pid ${pid}\n`);
