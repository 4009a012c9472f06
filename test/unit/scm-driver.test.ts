import { describe, expect, it } from "vitest";
import {
  type FailureActions,
  observeError,
  observeStatus,
  type ScmCall,
  type ScmPort,
  type ScmStatus,
  SERVICE_STATES,
  WIN32_ERRORS,
  WindowsServiceDriver,
} from "../../agent/drivers/windows-service.ts";
import { OutcomeError } from "../../core/outcome.ts";

/**
 * The Windows driver's state machine over the SCM port, fed the numbers QueryServiceStatusEx returns and the
 * Win32 errors each call can fail with. The same driver runs against Wine's real SCM in
 * test/integration/windows.test.ts; this covers what Wine cannot produce (paused, shared processes, dependents,
 * access denied, ...).
 */
const OWN = 0x10;
const SHARE = 0x20;
const status = (stateCode: number, extra: Partial<ScmStatus> = {}): ScmStatus => ({
  stateCode,
  serviceType: OWN,
  pid: stateCode === 1 ? 0 : 4312,
  win32ExitCode: 0,
  serviceExitCode: 0,
  checkpoint: 0,
  waitHintMs: 0,
  ...extra,
});

/** A scripted SCM: queries return the next of `states` (the last repeats); calls return their scripted errors. */
function scm(
  states: Array<ScmStatus | number>,
  calls: Partial<Record<"stop" | "start" | "terminate" | "setFailureActions", number>> = {},
  dependents: Array<{ name: string; status: "running" | "stopped" }> = [],
  recovery: FailureActions | number = { resetPeriodS: 0, actions: [] },
  registry: { values: Map<string, string[]>; failWrite?: string; failRead?: number } = { values: new Map() },
) {
  const made: string[] = [];
  let index = 0;
  const call = (name: "stop" | "start" | "terminate"): ScmCall => {
    made.push(name);
    return { error: calls[name] ?? 0, raw: name };
  };
  const port: ScmPort = {
    async query() {
      const next = states[Math.min(index++, states.length - 1)] as ScmStatus | number;
      return typeof next === "number" ? observeError(next, "QueryServiceStatusEx") : observeStatus(next);
    },
    async dependents() {
      return { error: 0, raw: "EnumDependentServicesW", services: dependents };
    },
    stop: async () => call("stop"),
    start: async () => call("start"),
    terminate: async () => call("terminate"),
    failureActions: async () =>
      typeof recovery === "number"
        ? { error: recovery, raw: "QueryServiceConfig2W" }
        : { error: 0, raw: "QueryServiceConfig2W", actions: recovery },
    async setFailureActions(_service, actions) {
      made.push(`setFailureActions ${JSON.stringify(actions.actions)}`);
      return { error: calls.setFailureActions ?? 0, raw: "ChangeServiceConfig2W" };
    },
    // The service key's values as RegQueryValueExW/RegSetValueExW/RegDeleteValueW see them.
    async readMultiSz(_service, value) {
      if (registry.failRead) return { error: registry.failRead, raw: `RegQueryValueExW(${value})` };
      const entries = registry.values.get(value);
      return { error: 0, raw: `RegQueryValueExW(${value})`, ...(entries ? { entries: [...entries] } : {}) };
    },
    async writeMultiSz(_service, value, entries) {
      made.push(`${entries ? "set" : "delete"} ${value}${entries ? ` ${entries.join("|")}` : ""}`);
      if (registry.failWrite === value) return { error: 5, raw: `RegSetValueExW(${value})` };
      if (entries) registry.values.set(value, [...entries]);
      else registry.values.delete(value);
      return { error: 0, raw: `RegSetValueExW(${value})` };
    },
  };
  return { port, made };
}

async function outcome(action: Promise<unknown>): Promise<string> {
  try {
    const result = await action;
    if (result === undefined) return "success already";
    return (result as { escalated?: boolean }).escalated ? "success escalated" : "success";
  } catch (error) {
    if (error instanceof OutcomeError) return `failure ${error.reason}`;
    throw error;
  }
}

const driver = (port: ScmPort) => new WindowsServiceDriver("Svc", port, 1);

describe("every SCM state × action", () => {
  // What a stop and a start do from each state the SCM defines, and from codes it does not.
  const table: Array<[number, string, string]> = [
    [1, "success already", "success"],
    [2, "success", "success"],
    [3, "success", "success"],
    [4, "success", "success already"],
    [5, "success", "success"],
    [6, "failure unexpected_state", "failure unexpected_state"],
    [7, "failure unexpected_state", "failure unexpected_state"],
    [0, "failure unexpected_state", "failure unexpected_state"],
    [8, "failure unexpected_state", "failure unexpected_state"],
  ];
  for (const [code, stop, start] of table) {
    const name = SERVICE_STATES[code]?.name ?? `undefined state ${code}`;
    it(`${name}: stop → ${stop}, start → ${start}`, async () => {
      // After the request the service settles: stopped for a stop, running for a start.
      const forStop = scm([status(code), status(1)]);
      expect(await outcome(driver(forStop.port).stop(50))).toBe(stop);
      const forStart = scm([status(code), status(4)]);
      const started = await outcome(driver(forStart.port).start({}, 50));
      expect(started === "success already" ? "success" : started).toBe(
        start === "success already" ? "success" : start,
      );
    });
  }
});

describe("Win32 errors", () => {
  it("QueryServiceStatusEx / OpenServiceW: 1060 is not_found, every other error is a failure with its name", async () => {
    for (const error of [1060, 123, 5, 6, 1065, 87, 122]) {
      const expected = error === 1060 ? "failure not_found" : "failure unexpected_state";
      expect(await outcome(driver(scm([error]).port).stop(20)), `query error ${error}`).toBe(expected);
      expect(await outcome(driver(scm([error]).port).start({}, 20)), `query error ${error}`).toBe(expected);
    }
    expect(observeError(5, "OpenServiceW(Svc)").evidence).toBe(
      "OpenServiceW(Svc): error 5 ERROR_ACCESS_DENIED",
    );
  });

  it("ControlService(STOP): each error becomes its named reason; 1061 and 1062 leave it to the state", async () => {
    const cases: Array<[number, string]> = [
      [5, "failure access_denied"],
      [1051, "failure dependents_running"],
      [1052, "failure unexpected_state"],
      [1053, "failure timeout"],
      [1115, "failure command_failed"],
      [1061, "success"],
      [1062, "success"],
    ];
    for (const [error, expected] of cases)
      expect(
        await outcome(driver(scm([status(4), status(1)], { stop: error }).port).stop(50)),
        `${error}`,
      ).toBe(expected);
  });

  it("StartServiceW: each error becomes its named reason; 1056 (already running) is verified by the state", async () => {
    const cases: Array<[number, string]> = [
      [2, "failure command_failed"],
      [3, "failure command_failed"],
      [5, "failure access_denied"],
      [1053, "failure timeout"],
      [1058, "failure unexpected_state"],
      [1059, "failure command_failed"],
      [1068, "failure command_failed"],
      [1069, "failure command_failed"],
      [1072, "failure not_found"],
      [1075, "failure command_failed"],
      [1056, "success"],
    ];
    for (const [error, expected] of cases) {
      const { port } = scm([status(1), status(4)], { start: error });
      expect(await outcome(driver(port).start({}, 50)), `${error} ${WIN32_ERRORS[error]?.name}`).toBe(
        expected,
      );
    }
  });
});

describe("escalation, shared processes and dependents", () => {
  it("an own-process service that stays in STOP_PENDING is terminated, then verified STOPPED", async () => {
    const { port, made } = scm([
      status(4),
      ...Array(60).fill(status(3, { checkpoint: 1 })),
      status(1, { win32ExitCode: 1067 }),
    ]);
    expect(await outcome(driver(port).stop(20))).toBe("success escalated");
    expect(made).toEqual(["stop", "terminate"]);
  });

  it("a terminated process whose service never reports STOPPED is still_running, never success", async () => {
    const { port } = scm([status(4), status(3)]);
    const slow = new WindowsServiceDriver("Svc", port, 1);
    await expect(
      Promise.race([slow.stop(20), new Promise((r) => setTimeout(() => r("hung"), 16_000))]),
    ).rejects.toThrow(/still_running/);
  }, 20_000);

  it("a shared-process service that does not stop is never terminated", async () => {
    const { port, made } = scm([status(4, { serviceType: SHARE }), status(3, { serviceType: SHARE })]);
    expect(await outcome(driver(port).stop(20))).toBe("failure shared_process");
    expect(made).toEqual(["stop"]);
  });

  it("running dependents: nothing is stopped, their names are the reason; stopped dependents do not block", async () => {
    const blocked = scm([status(4)], {}, [
      { name: "Web", status: "running" },
      { name: "Batch", status: "stopped" },
    ]);
    await expect(driver(blocked.port).stop(20)).rejects.toThrow("dependent services still running: Web");
    expect(blocked.made).toEqual([]);
    const free = scm([status(4), status(1)], {}, [{ name: "Batch", status: "stopped" }]);
    expect(await outcome(driver(free.port).stop(20))).toBe("success");
  });
});

describe("TRACEPARENT for one start: the service's Environment registry value", () => {
  const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const driverOf = (port: ScmPort) => new WindowsServiceDriver("LifelineDemo", port, 1);

  it("set before StartServiceW with the entries already there, restored after (absent stays absent)", async () => {
    const kept = new Map([
      ["Environment", ["JAVA_OPTS=-Xmx1g", `TRACEPARENT=00-${"1".repeat(32)}-${"2".repeat(16)}-01`]],
    ]);
    const { port, made } = scm([status(1), status(4)], {}, [], undefined, { values: kept });
    const started = await driverOf(port).start({ TRACEPARENT: TP }, 50);
    expect(made).toEqual([
      "set LifelineEnvironmentBefore present|JAVA_OPTS=-Xmx1g|TRACEPARENT=00-11111111111111111111111111111111-2222222222222222-01",
      `set Environment JAVA_OPTS=-Xmx1g|TRACEPARENT=${TP}`,
      "start",
      "set Environment JAVA_OPTS=-Xmx1g|TRACEPARENT=00-11111111111111111111111111111111-2222222222222222-01",
      "delete LifelineEnvironmentBefore",
    ]);
    expect(started.traceContext).toMatch(
      /^TRACEPARENT in the service's Environment registry value for this start/,
    );
    expect(started.traceContext).toContain("not read back from the process");

    const empty = scm([status(1), status(4)]);
    await driverOf(empty.port).start({ TRACEPARENT: TP }, 50);
    expect(empty.made.slice(-2)).toEqual(["delete Environment", "delete LifelineEnvironmentBefore"]);
  });

  it("a failed StartServiceW still restores the value", async () => {
    const { port, made } = scm([status(1)], { start: 1053 });
    expect(await outcome(driverOf(port).start({ TRACEPARENT: TP }, 50))).toMatch(/^failure/);
    expect(made.slice(-2)).toEqual(["delete Environment", "delete LifelineEnvironmentBefore"]);
  });

  it("the registry refuses: started without it, and the reason is said", async () => {
    const { port, made } = scm([status(1), status(4)], {}, [], undefined, {
      values: new Map(),
      failWrite: "Environment",
    });
    const started = await driverOf(port).start({ TRACEPARENT: TP }, 50);
    expect(made).toContain("start");
    expect(made.at(-1)).toBe("start");
    expect(started.traceContext).toBe(
      "TRACEPARENT not passed: RegSetValueExW(Environment) failed with Win32 error 5",
    );
  });

  it("a value an agent left mid-start is restored when the agent opens", async () => {
    const values = new Map([
      ["Environment", [`TRACEPARENT=${TP}`]],
      ["LifelineEnvironmentBefore", ["absent"]],
    ]);
    const { port } = scm([status(4)], {}, [], undefined, { values });
    expect(await driverOf(port).clearTraceContext()).toContain("it was not set");
    expect([...values.keys()]).toEqual([]);
    expect(await driverOf(port).clearTraceContext()).toBeUndefined();
  });
});

describe("stopDependents", () => {
  /** Several services in one scripted SCM: each query reads the named service's state; stop and start move it. */
  function fleet(states: Record<string, number>, dependentsOf: Record<string, string[]>) {
    const log: string[] = [];
    const port: ScmPort = {
      async query(service) {
        const code = states[service];
        return code === undefined
          ? observeError(1060, `OpenServiceW(${service})`)
          : observeStatus(status(code));
      },
      async dependents(service) {
        return {
          error: 0,
          raw: "EnumDependentServicesW",
          services: (dependentsOf[service] ?? []).map((name) => ({
            name,
            status: states[name] === 1 ? ("stopped" as const) : ("running" as const),
          })),
        };
      },
      async stop(service) {
        log.push(`stop ${service}`);
        states[service] = 1;
        return { error: 0, raw: "stop" };
      },
      async start(service) {
        log.push(`start ${service}`);
        states[service] = 4;
        return { error: 0, raw: "start" };
      },
      terminate: async () => ({ error: 0, raw: "terminate" }),
      failureActions: async () => ({
        error: 0,
        raw: "QueryServiceConfig2W",
        actions: { resetPeriodS: 0, actions: [] },
      }),
      setFailureActions: async () => ({ error: 0, raw: "ChangeServiceConfig2W" }),
      readMultiSz: async () => ({ error: 0, raw: "RegQueryValueExW" }),
      writeMultiSz: async () => ({ error: 0, raw: "RegSetValueExW" }),
    };
    return { port, log, states };
  }

  it("stops running dependents first, in the SCM's order, says so, and starts them again after the next start", async () => {
    // Web depends on Api, which depends on Db; the SCM lists Db's dependents in reverse start order.
    const { port, log, states } = fleet({ Db: 4, Api: 4, Web: 4, Batch: 1 }, { Db: ["Web", "Api", "Batch"] });
    const db = new WindowsServiceDriver("Db", port, 1, { stopDependents: true });
    const stopped = await db.stop(50);
    expect(log).toEqual(["stop Web", "stop Api", "stop Db"]);
    expect(stopped?.evidence).toBe("STATE 1 (STOPPED); dependents stopped first: Web, Api");
    const started = await db.start({}, 50);
    expect(log.slice(3)).toEqual(["start Db", "start Api", "start Web"]);
    expect(started.evidence).toBe("STATE 4 (RUNNING) PID 4312; dependents started again: Api, Web");
    expect(states.Batch).toBe(1);
  });

  it("without it, running dependents fail the stop with their names and nothing is stopped", async () => {
    const { port, log } = fleet({ Db: 4, Api: 4 }, { Db: ["Api"] });
    await expect(new WindowsServiceDriver("Db", port, 1).stop(50)).rejects.toThrow(
      "dependents_running: dependent services still running: Api",
    );
    expect(log).toEqual([]);
  });

  it("a dependent that cannot be stopped fails the stop before the service itself is touched", async () => {
    const { port, log } = fleet({ Db: 4, Api: 6 }, { Db: ["Api"] });
    await expect(new WindowsServiceDriver("Db", port, 1, { stopDependents: true }).stop(50)).rejects.toThrow(
      "unexpected_state",
    );
    expect(log).toEqual([]);
  });
});

describe("the SCM's recovery actions around the agent's kill", () => {
  const hung = () => [
    status(4),
    ...Array(40).fill(status(3, { checkpoint: 1 })),
    status(1, { win32ExitCode: 1067 }),
  ];
  const restart = {
    resetPeriodS: 86_400,
    actions: [
      { type: 1, delayMs: 60_000 },
      { type: 0, delayMs: 0 },
    ],
  };

  it("a restart action is suspended before the kill and restored after STOPPED is verified, and said", async () => {
    const { port, made } = scm(hung(), {}, [], restart);
    const result = await driver(port).stop(20);
    expect(made).toEqual([
      "stop",
      "setFailureActions []",
      "terminate",
      `setFailureActions ${JSON.stringify(restart.actions)}`,
    ]);
    expect(result?.evidence).toBe(
      "STATE 1 (STOPPED); recovery actions (restart it after 60000 ms) suspended around the kill and restored",
    );
  });

  it("left alone when configured so: the evidence says the SCM will restart it", async () => {
    const { port, made } = scm(hung(), {}, [], restart);
    const result = await new WindowsServiceDriver("Svc", port, 1, { suspendRecovery: false }).stop(20);
    expect(made).toEqual(["stop", "terminate"]);
    expect(result?.evidence).toBe(
      "STATE 1 (STOPPED); the SCM's recovery actions will restart it after 60000 ms",
    );
  });

  it("no recovery actions: nothing changed, nothing said", async () => {
    const { port, made } = scm(hung());
    expect((await driver(port).stop(20))?.evidence).toBe("STATE 1 (STOPPED)");
    expect(made).toEqual(["stop", "terminate"]);
  });

  it("unreadable recovery actions (Wine: 124 ERROR_INVALID_LEVEL) are said, never assumed absent", async () => {
    const { port } = scm(hung(), {}, [], 124);
    expect((await driver(port).stop(20))?.evidence).toBe(
      "STATE 1 (STOPPED); recovery actions not readable (error 124 ERROR_INVALID_LEVEL): the SCM may restart it",
    );
  });

  it("a restore that fails makes the stop a failure naming the actions that were lost", async () => {
    const { port } = scm(hung(), { setFailureActions: 0 }, [], restart);
    let writes = 0;
    const failing: ScmPort = {
      ...port,
      async setFailureActions(service, actions) {
        writes++;
        return writes === 1
          ? port.setFailureActions(service, actions)
          : { error: 5, raw: "ChangeServiceConfig2W" };
      },
    };
    await expect(driver(failing).stop(20)).rejects.toThrow(
      "access_denied: restoring the recovery actions (restart it after 60000 ms) after the kill failed with 5 ERROR_ACCESS_DENIED",
    );
  });
});
