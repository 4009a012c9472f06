import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { type Component, Supervisor } from "../../core/lifecycle.ts";

const silent = pino({ level: "silent" });

function recorder(
  log: string[],
  name: string,
  options: { failStart?: boolean; failStop?: boolean } = {},
): Component {
  return {
    name,
    async start() {
      if (options.failStart) throw new Error(`${name} cannot start`);
      log.push(`start ${name}`);
    },
    async stop() {
      log.push(`stop ${name}`);
      if (options.failStop) throw new Error(`${name} cannot stop`);
    },
  };
}

describe("supervisor", () => {
  it("starts in order and stops in reverse, once even when stop is called twice", async () => {
    const log: string[] = [];
    const supervisor = new Supervisor([recorder(log, "sink"), recorder(log, "source")], silent);
    await supervisor.start();
    await Promise.all([
      supervisor.stop(AbortSignal.timeout(1_000)),
      supervisor.stop(AbortSignal.timeout(1_000)),
    ]);
    expect(log).toEqual(["start sink", "start source", "stop source", "stop sink"]);
  });

  it("stop before start is safe and stops nothing", async () => {
    const log: string[] = [];
    await new Supervisor([recorder(log, "sink")], silent).stop(AbortSignal.timeout(1_000));
    expect(log).toEqual([]);
  });

  it("a failed start stops what already started and reports the failure", async () => {
    const log: string[] = [];
    const supervisor = new Supervisor(
      [recorder(log, "sink"), recorder(log, "source", { failStart: true })],
      silent,
    );
    await expect(supervisor.start()).rejects.toThrow("source cannot start");
    expect(log).toEqual(["start sink", "stop sink"]);
  });

  it("a component that fails to stop does not keep the others running", async () => {
    const log: string[] = [];
    const supervisor = new Supervisor([recorder(log, "a"), recorder(log, "b", { failStop: true })], silent);
    await supervisor.start();
    await expect(supervisor.stop(AbortSignal.timeout(1_000))).rejects.toThrow(AggregateError);
    expect(log).toEqual(["start a", "start b", "stop b", "stop a"]);
  });
});
