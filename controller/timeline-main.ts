import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { resolveElastic } from "../core/connections.ts";
import { createElastic } from "../core/elastic/client.ts";
import { formatTimeline, readTimeline, timelineHtml } from "./timeline.ts";

export const timelineHelp = `Usage: lifeline timeline (--rollout ID | --trace ID) [--namespace NS] [--html FILE] [--json]

Reads a rollout's lifecycle events (the controller's and the agents') from Elasticsearch and prints them in
order: time, host, service, wave, step, duration, outcome, reason.

Options:
  --rollout ID     the rollout id \`lifeline rollout\` printed
  --trace ID       or its trace id (any trace whose lifecycle events are indexed)
  --namespace NS   the indexer's namespace (default: all)
  --html FILE      also write a self-contained page with a Gantt chart of every host's stop and start per wave
  --json           the entries as JSON

Elasticsearch: LIFELINE_ES_* or the local servers (lifeline services up).
`;

export async function runTimeline(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      rollout: { type: "string" },
      trace: { type: "string" },
      namespace: { type: "string" },
      html: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || (!values.rollout && !values.trace)) {
    process.stdout.write(timelineHelp);
    return values.help ? 0 : 2;
  }
  const client = createElastic(resolveElastic());
  try {
    const timeline = await readTimeline(client, values);
    if (timeline.entries.length === 0) {
      process.stderr.write(
        `no lifecycle events for ${values.rollout ? `rollout ${values.rollout}` : `trace ${values.trace}`}\n`,
      );
      return 1;
    }
    process.stdout.write(values.json ? `${JSON.stringify(timeline, null, 2)}\n` : formatTimeline(timeline));
    if (values.html) {
      writeFileSync(values.html, timelineHtml(timeline));
      process.stderr.write(`wrote ${values.html}\n`);
    }
    return 0;
  } finally {
    await client.close();
  }
}
