import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { resolveElastic } from "../core/connections.ts";
import { createElastic } from "../core/elastic/client.ts";
import { createLogger } from "../core/logger.ts";
import { checkAgainstElasticsearch, checkRuleFields, checkStructure, type Problem } from "./check.ts";
import { installDashboards } from "./install.ts";
import { savedObjects, toNdjson } from "./objects.ts";
import { alertingRules } from "./rules.ts";

export const DEFAULT_OBJECTS_FILE = fileURLToPath(new URL("./lifeline.ndjson", import.meta.url));
const KIBANA_MAJOR = 9;

export const dashboardsHelp = `Usage: lifeline dashboards <export|check|install> [options]

  export   write the Kibana saved objects to dashboards/lifeline.ndjson (or --out FILE)
  check    prove what a machine without Kibana can: every object parses, every reference resolves, every field
           used exists in the index templates with the right type; then seed Elasticsearch with lifecycle
           events and run every saved search, visualization and rule query (rules must fire on the failures
           and stay quiet on the successes). --offline skips Elasticsearch.
  install  import the saved objects into Kibana (overwrite, idempotent), create or update the server-log
           connector and the alerting rules.

Options:
  --file FILE        saved objects to check or install (default dashboards/lifeline.ndjson)
  --out FILE         where export writes (default dashboards/lifeline.ndjson)
  --offline          check: structure and fields only
  --kibana URL       install: Kibana's URL, e.g. http://kibana:5601
  --space ID         install: a Kibana space (default: the default space)
  --username NAME    install: Kibana user (default LIFELINE_KIBANA_USERNAME, else LIFELINE_ES_USERNAME)
  --password PASS    install: its password (default LIFELINE_KIBANA_PASSWORD, else LIFELINE_ES_PASSWORD)
                     LIFELINE_KIBANA_API_KEY authenticates with an API key instead.

check reaches Elasticsearch like every component: LIFELINE_ES_* or the local servers (lifeline services up).
`;

function report(problems: Problem[]): void {
  for (const problem of problems) process.stdout.write(`FAIL ${problem.object}: ${problem.message}\n`);
}

export async function runDashboards(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      file: { type: "string", default: DEFAULT_OBJECTS_FILE },
      out: { type: "string", default: DEFAULT_OBJECTS_FILE },
      offline: { type: "boolean", default: false },
      kibana: { type: "string" },
      space: { type: "string" },
      username: { type: "string" },
      password: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || !action || !["export", "check", "install"].includes(action)) {
    process.stdout.write(dashboardsHelp);
    return values.help || action === "--help" ? 0 : 2;
  }
  if (action === "export") {
    writeFileSync(values.out, toNdjson(savedObjects()));
    process.stdout.write(`wrote ${savedObjects().length} saved objects to ${values.out}\n`);
    return 0;
  }
  const ndjson = readFileSync(values.file, "utf8");
  if (action === "install") {
    if (!values.kibana) {
      process.stderr.write("lifeline dashboards install: --kibana URL is needed\n");
      return 2;
    }
    const env = process.env;
    const apiKey = env.LIFELINE_KIBANA_API_KEY;
    const username = values.username ?? env.LIFELINE_KIBANA_USERNAME ?? env.LIFELINE_ES_USERNAME;
    const password = values.password ?? env.LIFELINE_KIBANA_PASSWORD ?? env.LIFELINE_ES_PASSWORD;
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
  const logger = createLogger("dashboards", {
    destination: 2,
    level: process.env.LIFELINE_LOG_LEVEL ?? "warn",
  });
  const client = createElastic(resolveElastic());
  try {
    const run = await checkAgainstElasticsearch(client, objects, rules, logger, (line) =>
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
