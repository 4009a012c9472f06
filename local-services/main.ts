import { type ServiceReport, servicesDown, servicesStatus, servicesUp } from "./manager.ts";
import { localServicesSettings } from "./settings.ts";

export async function runServices(
  action: "up" | "status" | "down",
  values: { json: boolean },
): Promise<number> {
  const settings = localServicesSettings();
  const began = performance.now();
  const progress = (message: string) => {
    process.stderr.write(`[${((performance.now() - began) / 1000).toFixed(1).padStart(5)}s] ${message}\n`);
  };
  switch (action) {
    case "up": {
      const reports = await servicesUp(settings, process.env, progress);
      print(reports, values.json);
      progress(`ready in ${((performance.now() - began) / 1000).toFixed(1)} s (folder ${settings.dir})`);
      return reports.every((r) => r.healthy) ? 0 : 1;
    }
    case "status": {
      const reports = await servicesStatus(settings, process.env);
      print(reports, values.json);
      return reports.every((r) => r.healthy) ? 0 : 1;
    }
    case "down": {
      const result = await servicesDown(settings, progress);
      if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else {
        const what =
          result.stopped.length > 0 ? `stopped ${result.stopped.join(" and ")}` : "nothing was running";
        const forced = result.killed.length > 0 ? ` (had to kill ${result.killed.join(", ")})` : "";
        process.stdout.write(`${what}${forced}\n`);
      }
      if (result.leftover.length > 0) {
        process.stderr.write(`still running after down: pids ${result.leftover.join(", ")}\n`);
        return 1;
      }
      return 0;
    }
  }
}

function print(reports: ServiceReport[], json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
    return;
  }
  const rows = reports.map((r) => [
    r.name,
    r.healthy ? "healthy" : "DOWN",
    r.version ?? "-",
    r.mode,
    r.address,
    r.pid ? String(r.pid) : "-",
    r.startMs === undefined ? (r.reused ? "reused" : "-") : `${(r.startMs / 1000).toFixed(1)} s`,
    r.detail,
  ]);
  const header = ["service", "state", "version", "mode", "address", "pid", "start", "detail"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  for (const row of [header, ...rows]) {
    process.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd()}\n`,
    );
  }
}
