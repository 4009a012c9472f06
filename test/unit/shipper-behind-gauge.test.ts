import { Gauge, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { BehindGauge } from "../../shipper/metrics.ts";

async function series(registry: Registry): Promise<Record<string, number>> {
  const [metric] = await registry.getMetricsAsJSON();
  return Object.fromEntries(
    (metric?.values ?? []).map(({ labels, value }) => [`${labels.input} ${labels.path}`, value]),
  );
}

describe("BehindGauge", () => {
  it("one series per input and path of the files read now; a file no longer read takes its series with it", async () => {
    const registry = new Registry();
    const gauge = new Gauge({
      name: "lifeline_shipper_behind_bytes",
      help: "test",
      labelNames: ["input", "path"] as const,
      registers: [registry],
    });
    const behind = new BehindGauge(gauge);
    behind.refresh([
      { input: "app", path: "/var/log/app.log", bytes: 4_096 },
      { input: "app", path: "/var/log/app.log.1", bytes: 120 },
      { input: "web", path: "/var/log/web.log", bytes: 0 },
    ]);
    expect(await series(registry)).toEqual({
      "app /var/log/app.log": 4_096,
      "app /var/log/app.log.1": 120,
      "web /var/log/web.log": 0,
    });
    // app.log.1 deleted and drained, web.log renamed: the copy's 120 bytes must not stay behind for good.
    behind.refresh([
      { input: "app", path: "/var/log/app.log", bytes: 0 },
      { input: "web", path: "/var/log/web.log.1", bytes: 7 },
    ]);
    expect(await series(registry)).toEqual({ "app /var/log/app.log": 0, "web /var/log/web.log.1": 7 });
    // A file renamed away and still read to its end, and the new file at its old path: one series, their sum.
    behind.refresh([
      { input: "app", path: "/var/log/app.log", bytes: 10 },
      { input: "app", path: "/var/log/app.log", bytes: 5 },
    ]);
    expect(await series(registry)).toEqual({ "app /var/log/app.log": 15 });
    behind.refresh([{ input: "app", path: "/var/log/app.log", bytes: 3 }]);
    expect(await series(registry)).toEqual({ "app /var/log/app.log": 3 });
    behind.refresh([]);
    expect(await series(registry)).toEqual({});
  });
});
