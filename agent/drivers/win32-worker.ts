import { parentPort, Worker } from "node:worker_threads";

/** What every Win32 call returns through a worker: 0 or the Win32 error (GetLastError), and the call in words. */
export interface Win32Result {
  error: number;
  raw: string;
}

/**
 * A caller for a koffi worker of this folder (`name`: its file name without extension). Win32 calls that block
 * (StartServiceW, ControlService, CreateProcessW on a slow disk) run there, never on the agent's event loop, and
 * GetLastError is read on the thread that made the call, right after it. The worker answers { id, result } to
 * { id, op, ...args }; it is started on first use, unref'd, and restarted after a crash (pending calls then
 * settle with error -1 and the crash's message).
 */
export function win32Worker<R extends Win32Result>(
  name: string,
): (op: string, args: Record<string, unknown>) => Promise<R> {
  let worker: Worker | undefined;
  let next = 0;
  const pending = new Map<number, (result: R) => void>();
  return (op, args) => {
    if (!worker) {
      const source = import.meta.url.endsWith(".ts") ? `./${name}.ts` : `./${name}.js`;
      const started = new Worker(new URL(source, import.meta.url));
      started.unref();
      started.on("message", ({ id, result }: { id: number; result: R }) => {
        pending.get(id)?.(result);
        pending.delete(id);
      });
      started.on("error", (error) => {
        for (const settle of pending.values()) settle({ error: -1, raw: `${name}: ${error.message}` } as R);
        pending.clear();
        worker = undefined;
      });
      worker = started;
    }
    const id = next++;
    const running = worker;
    return new Promise((resolve) => {
      pending.set(id, resolve);
      running.postMessage({ id, op, ...args });
    });
  };
}

/** The worker's side: answers each { id, op, ...args } with { id, result } from `operations` (never throws). */
export function serveWin32<Args>(operations: Record<string, (args: Args) => Win32Result>): void {
  parentPort?.on("message", (message: { id: number; op: string } & Args) => {
    let result: Win32Result;
    try {
      const operation = operations[message.op];
      result = operation ? operation(message) : { error: -1, raw: `unknown operation ${message.op}` };
    } catch (error) {
      result = { error: -1, raw: `${message.op}: ${(error as Error).message}` };
    }
    parentPort?.postMessage({ id: message.id, result });
  });
}
