import { writeFileSync } from "node:fs";
import { resolveElastic } from "../core/connections.ts";
import { createElastic } from "../core/elastic/client.ts";
import { UsageError } from "../core/errors.ts";
import { formatTimeline, readTimeline, timelineHtml } from "./timeline.ts";

export async function runTimeline(values: {
  rollout?: string;
  trace?: string;
  namespace?: string;
  html?: string;
  json: boolean;
}): Promise<number> {
  if (!values.rollout && !values.trace) throw new UsageError("--rollout <id> or --trace <id> is needed");
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
