import {
  createServer as createHttpServer,
  type Server as HttpServer,
  request as httpRequest,
} from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import type { Client, estypes } from "@elastic/elasticsearch";
import { deterministicId } from "../../core/events.ts";
import type { KafkaPort as Kafka } from "../../core/kafka/port.ts";

export { type ProcessUnderTest, startLifeline } from "./cli.ts";

/** Log record number `i` as the shipper writes it (record i of file i % files, with a deterministic event id). */
export function logRecordText(i: number, files: number, traceId?: string): string {
  const file = i % files;
  return JSON.stringify({
    "@timestamp": new Date(Date.UTC(2026, 10, 27, 5, 0, 0, i)).toISOString(),
    message: `seq=${i} GET /items/${i} 200`,
    event: { id: deterministicId("test", file, i), dataset: "test" },
    log: { file: { path: `/var/log/app-${file}.log` }, offset: i * 100, level: "info" },
    host: { name: "test-host" },
    service: { name: "app" },
    ...(traceId ? { trace: { id: traceId } } : {}),
    lifeline: { schema_version: 1, format: "plain" },
  });
}

/** Log records as the shipper sends them: packed, one JSON document per line, deterministic event ids. */
export async function produceLogRecords(
  kafka: Kafka,
  topic: string,
  count: number,
  options: { files?: number; perMessage?: number; traceId?: (i: number) => string | undefined } = {},
): Promise<void> {
  const files = options.files ?? 10;
  const perMessage = options.perMessage ?? 100;
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    let messages: Array<{ key: string; value: string }> = [];
    let pack: string[] = [];
    for (let i = 0; i < count; i++) {
      const file = i % files;
      pack.push(logRecordText(i, files, options.traceId?.(i)));
      if (pack.length === perMessage || i === count - 1) {
        messages.push({ key: `test-host|file-${file}`, value: pack.join("\n") });
        pack = [];
      }
      if (messages.length === 20 || i === count - 1) {
        await producer.send({ topic, acks: -1, messages, compression: "zstd" });
        messages = [];
      }
    }
  } finally {
    await producer.disconnect();
  }
}

/** Counts documents (matching `query`, if given) in an index or data stream after a refresh (0 while it does not exist yet). */
export async function countDocuments(
  client: Client,
  index: string,
  query?: estypes.QueryDslQueryContainer,
): Promise<number> {
  try {
    await client.indices.refresh({ index, ignore_unavailable: true });
    return (await client.count({ index, ignore_unavailable: true, allow_no_indices: true, query })).count;
  } catch {
    return 0;
  }
}

/** Polls Elasticsearch (it announces nothing) until `index` holds `expected` documents. */
export async function waitForCount(
  client: Client,
  index: string,
  expected: number,
  timeoutMs = 120_000,
  query?: estypes.QueryDslQueryContainer,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let count = 0;
  while (Date.now() < deadline) {
    count = await countDocuments(client, index, query);
    if (count >= expected) return count;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${index}: ${count} of ${expected} documents after ${timeoutMs} ms`);
}

/** Waits until the group has committed every partition of `topic` to its end: nothing left to index. */
export async function waitForGroupCaughtUp(
  kafka: Kafka,
  groupId: string,
  topic: string,
  timeoutMs = 120_000,
  intervalMs = 250,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ends = await admin.fetchTopicOffsets(topic);
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const behind = ends.reduce((sum, end) => {
        const done = committed?.partitions.find((p) => p.partition === end.partition)?.offset ?? "-1";
        return sum + Math.max(0, Number(end.high) - Math.max(0, Number(done)));
      }, 0);
      if (behind === 0) return;
      if (Date.now() > deadline)
        throw new Error(`group ${groupId} still ${behind} records behind on ${topic}`);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * A TCP relay in front of Elasticsearch that a test can cut and restore: the indexer then sees a real network
 * failure (refused connections, reset sockets) while the real server keeps running for everyone else.
 */
export class CuttableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly target: { host: string; port: number };
  port = 0;

  constructor(target: { host: string; port: number }) {
    this.target = target;
  }

  async start(port = 0): Promise<number> {
    this.server = createServer((client) => {
      const upstream = connect(this.target);
      this.sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server?.listen(port, "127.0.0.1", resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  async restore(): Promise<void> {
    await this.start(this.port);
  }
}

/**
 * An HTTP relay in front of the real Elasticsearch for fault tests: each request's body is read whole; `refuse`
 * may answer it instead of Elasticsearch, and `rewrite` may change the text of Elasticsearch's answer.
 */
abstract class ElasticRelay {
  private server: HttpServer | undefined;
  private readonly target: URL;

  constructor(target: string) {
    this.target = new URL(target);
  }

  /** An answer of the relay's own for this request, or undefined to pass it on. */
  protected refuse(_url: string, _body: Buffer): { status: number; body: string } | undefined {
    return undefined;
  }

  /** A new text for Elasticsearch's answer to this request, or undefined to pass it on as it is. */
  protected rewrite(_url: string, _answer: string): string | undefined {
    return undefined;
  }

  /** Whether this request's answer goes through rewrite (read whole) or is piped as it comes. */
  protected rewrites(_url: string): boolean {
    return false;
  }

  async start(): Promise<number> {
    const server = createHttpServer((incoming, answer) => {
      const parts: Buffer[] = [];
      incoming.on("data", (part: Buffer) => parts.push(part));
      incoming.on("end", () => {
        const url = incoming.url ?? "";
        const body = Buffer.concat(parts);
        const refused = this.refuse(url, body);
        if (refused) {
          answer.writeHead(refused.status, {
            "content-type": "application/json",
            "x-elastic-product": "Elasticsearch",
          });
          answer.end(refused.body);
          return;
        }
        const upstream = httpRequest(
          {
            host: this.target.hostname,
            port: this.target.port,
            method: incoming.method,
            path: url,
            headers: {
              ...incoming.headers,
              "content-length": String(body.length),
              "accept-encoding": "identity",
            },
          },
          (response) => {
            if (!this.rewrites(url)) {
              answer.writeHead(response.statusCode ?? 502, response.headers);
              response.pipe(answer);
              return;
            }
            const answered: Buffer[] = [];
            response.on("data", (part: Buffer) => answered.push(part));
            response.on("end", () => {
              const original = Buffer.concat(answered).toString("utf8");
              const text = this.rewrite(url, original) ?? original;
              const headers = { ...response.headers, "content-length": String(Buffer.byteLength(text)) };
              delete headers["content-encoding"];
              delete headers["transfer-encoding"];
              answer.writeHead(response.statusCode ?? 502, headers);
              answer.end(text);
            });
          },
        );
        upstream.on("error", (error) => answer.destroy(error));
        upstream.end(body);
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/**
 * Shortens the `items` of the next `count` bulk answers to half (what a misbehaving proxy or a truncated answer
 * looks like): Elasticsearch wrote the documents, the answer does not say so for half of them.
 */
export class ShortBulkAnswers extends ElasticRelay {
  /** Bulk answers still to shorten. */
  remaining: number;
  /** Items left out of the answers so far. */
  dropped = 0;

  constructor(target: string, count: number) {
    super(target);
    this.remaining = count;
  }

  protected override rewrites(url: string): boolean {
    return url.includes("_bulk") && this.remaining > 0;
  }

  protected override rewrite(_url: string, answer: string): string | undefined {
    const body = JSON.parse(answer) as { items?: unknown[] };
    if (!body.items || body.items.length < 2) return undefined;
    this.remaining--;
    const kept = Math.ceil(body.items.length / 2);
    this.dropped += body.items.length - kept;
    body.items = body.items.slice(0, kept);
    return JSON.stringify(body);
  }
}

/**
 * Refuses, with 503, every bulk request whose body holds `marker` while `holding` is true: the documents of that
 * request stay unwritten (the indexer retries them) while every other request reaches Elasticsearch.
 */
export class HeldBulks extends ElasticRelay {
  private readonly marker: string;
  holding = true;
  /** Requests refused so far. */
  refused = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(target: string, marker: string) {
    super(target);
    this.marker = marker;
  }

  /** Resolves once a request holding the marker was refused. */
  firstRefusal(): Promise<void> {
    return this.refused > 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  protected override refuse(url: string, body: Buffer): { status: number; body: string } | undefined {
    if (!this.holding || !url.includes("_bulk") || !body.includes(this.marker)) return undefined;
    this.refused++;
    for (const waiter of this.waiters.splice(0)) waiter();
    return {
      status: 503,
      body: JSON.stringify({ error: { type: "test_hold", reason: "held by the test" }, status: 503 }),
    };
  }
}

/** The environment that points a Lifeline process at Elasticsearch through a relay on `port`. */
export function throughRelay(
  port: number,
  elasticsearch: { username?: string; password?: string },
): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LIFELINE_ES_URL: `http://127.0.0.1:${port}`,
    LIFELINE_ES_USERNAME: elasticsearch.username ?? "",
    LIFELINE_ES_PASSWORD: elasticsearch.password ?? "",
  };
}
