import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { resolveElastic } from "../core/connections.ts";
import { createElastic } from "../core/elastic/client.ts";
import { checkAgainstElasticsearch, checkRuleFields, checkStructure, type Problem } from "./check.ts";
import { installDashboards } from "./install.ts";
import { savedObjects, toNdjson } from "./objects.ts";
import { alertingRules } from "./rules.ts";

export const DEFAULT_OBJECTS_FILE = fileURLToPath(new URL("./lifeline.ndjson", import.meta.url));
const KIBANA_MAJOR = 9;

function report(problems: Problem[]): void {
  for (const problem of problems) process.stdout.write(`FAIL ${problem.object}: ${problem.message}\n`);
}

/** `lifeline dashboards export`: the saved objects as NDJSON. */
export function exportDashboards(values: { out?: string }): number {
  const out = values.out ?? DEFAULT_OBJECTS_FILE;
  writeFileSync(out, toNdjson(savedObjects()));
  process.stdout.write(`wrote ${savedObjects().length} saved objects to ${out}\n`);
  return 0;
}

/** `lifeline dashboards install`: saved objects, connector and rules into Kibana. */
export async function installToKibana(values: {
  kibana: string;
  space?: string;
  file?: string;
  username?: string;
  password?: string;
  passwordFile?: string;
  apiKeyFile?: string;
}): Promise<number> {
  const ndjson = readFileSync(values.file ?? DEFAULT_OBJECTS_FILE, "utf8");
  const env = process.env;
  const secret = (file: string | undefined) => (file ? readFileSync(file, "utf8").trim() : undefined);
  const apiKey = secret(values.apiKeyFile) ?? env.LIFELINE_KIBANA_API_KEY;
  const username = values.username ?? env.LIFELINE_ES_USERNAME;
  const password = values.password ?? secret(values.passwordFile) ?? env.LIFELINE_ES_PASSWORD;
  const result = await installDashboards(
    {
      url: values.kibana,
      space: values.space,
      auth: apiKey ? { apiKey } : username && password ? { username, password } : undefined,
      expectedMajor: KIBANA_MAJOR,
    },
    ndjson,
    alertingRules(),
    (line) => process.stderr.write(`${line}\n`),
  );
  process.stdout.write(
    `installed ${result.imported} saved objects and ${result.rules} rules into Kibana ${result.kibanaVersion}\n`,
  );
  return 0;
}

/** `lifeline dashboards check`: structure and fields, then (unless offline) every query against seeded events. */
export async function checkDashboards(values: { file?: string; offline: boolean }): Promise<number> {
  const ndjson = readFileSync(values.file ?? DEFAULT_OBJECTS_FILE, "utf8");
  const rules = alertingRules();
  const { objects, problems } = checkStructure(ndjson);
  problems.push(...checkRuleFields(rules));
  process.stdout.write(
    `${objects.length} saved objects, ${rules.length} rules: structure, references and fields checked\n`,
  );
  if (problems.length > 0 || values.offline) {
    report(problems);
    return problems.length > 0 ? 1 : 0;
  }
  const client = createElastic(resolveElastic());
  try {
    const run = await checkAgainstElasticsearch(client, objects, rules, (line) =>
      process.stderr.write(`${line}\n`),
    );
    for (const line of run.lines) process.stdout.write(`ok   ${line}\n`);
    report(run.problems);
    process.stdout.write(
      run.problems.length === 0 ? "all queries ran against Elasticsearch as expected\n" : "",
    );
    return run.problems.length > 0 ? 1 : 0;
  } finally {
    await client.close();
  }
}
