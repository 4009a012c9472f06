import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { lifelineBin, type ProcessUnderTest, startLifeline } from "./cli.ts";

export interface CollectorUnderTest extends ProcessUnderTest {
  url: string;
}

/** Starts a real `lifeline collector` on a free port and resolves with its base URL once it serves. */
export async function startCollector(
  dir: string,
  config: Record<string, unknown>,
  /** Node flags for the collector (bench:collector's BENCH_NODE_ARGS, e.g. --cpu-prof). */
  nodeArgs: string[] = [],
): Promise<CollectorUnderTest> {
  const file = join(dir, "collector.yaml");
  writeFileSync(file, stringify({ listen: { port: 0 }, http: { port: 0 }, grpc: { port: 0 }, ...config }));
  const collector = startLifeline(["collector", "--config", file], "collector started", process.env, {
    nodeArgs,
    entry: lifelineBin,
  });
  await collector.started;
  const port = /"port":(\d+),"topicPrefix"[^\n]*"msg":"collector started"/.exec(collector.output())?.[1];
  if (!port) throw new Error(`collector did not say its port:\n${collector.output()}`);
  return { ...collector, url: `http://127.0.0.1:${port}` };
}

/** The collector's /health port, from its log. */
export function healthUrl(collector: ProcessUnderTest): string {
  const port = /"port":(\d+),"msg":"metrics and health endpoint listening"/.exec(collector.output())?.[1];
  return `http://127.0.0.1:${port}/health`;
}
