/**
 * The ceiling for bench/indexer.ts, in a process of its own so that its CPU and memory are measured as the
 * indexer's are: the very documents the indexer writes (its own toDocument on the same records), into a data
 * stream under the same templates, as pre-built bulk bodies of ~5 MB, three requests in flight. Prints
 * "built" when its bodies are made, then {"seconds": …} from the first request until the refresh after the last.
 *   node bench/indexer-ceiling.ts <topic prefix> <run> <round> <documents>
 */
import { resolveElastic } from "../core/connections.ts";
import { toDocument } from "../core/ecs/document.ts";
import { createElastic } from "../core/elastic/client.ts";
import { createLogger } from "../core/logger.ts";
import { topicNames } from "../core/topics.ts";
import { setupIndices } from "../indexer/index-setup.ts";
import { logRecordText } from "../test/helpers/indexer.ts";

const [prefix = "", run = "", round = "0", docs = "200000"] = process.argv.slice(2);
const DOCS = Number(docs);
const elastic = createElastic(resolveElastic());
const ceilingLayout = await setupIndices(
  elastic,
  { namespace: `bench_ceiling_${run}_${round}`, retention: "1d", replicas: 0, mode: "auto" },
  createLogger("bench"),
);
const ceilingIndex = ceilingLayout.targets.logs;
const bodies: string[] = [];
let body = "";
for (let i = 0; i < DOCS; i++) {
  const { id, document } = toDocument("logs", logRecordText(i, 10), {
    topic: topicNames(prefix).logs,
    partition: 0,
    offset: String(i),
    index: 0,
  });
  body += `${JSON.stringify({ create: { _index: ceilingIndex, _id: id } })}\n${JSON.stringify(document)}\n`;
  if (body.length > 5 << 20 || i === DOCS - 1) {
    bodies.push(body);
    body = "";
  }
}
process.stdout.write("built\n");
const began = performance.now();
let next = 0;
await Promise.all(
  [0, 1, 2].map(async () => {
    while (next < bodies.length) {
      const mine = bodies[next++] as string;
      const response = await elastic.bulk({ operations: mine.trimEnd().split("\n") as never });
      if (response.errors) throw new Error("ceiling bulk had errors");
    }
  }),
);
await elastic.indices.refresh({ index: ceilingIndex });
process.stdout.write(`${JSON.stringify({ seconds: (performance.now() - began) / 1000 })}\n`);
await elastic.close();
