/**
 * Kafka clients on Lifeline's produce path, side by side in one run (issue 18's choice of client): the same
 * records (BENCH_RECORDS, 1,000,000 JSON documents of about 200 bytes), packed as the shipper packs them (63 KiB
 * values of newline-separated documents), zstd, acks=all, idempotent, three lanes each with one 2 MiB request in
 * flight, into the local Kafka. Each client runs in a process of its own (kafkajs's changes are process-wide),
 * alternating over BENCH_ROUNDS rounds; figures: CPU seconds, wall seconds, peak RSS, and the records Kafka
 * acknowledged (the topic's end offsets, counted by the parent).
 *
 *   node bench/kafka-clients.ts                      all clients
 *   node bench/kafka-clients.ts --client <name> --topic <t>   one run (the parent starts these)
 *
 * Clients: kafkajs (2.2.4 as published, unpacked from the registry into ~/.cache/lifeline/packages, with a zstd
 * codec from Node's zlib through its public CompressionCodecs registry), kafkajs+lifeline (the installed kafkajs
 * with patches/kafkajs+2.2.4.patch and core/kafka/kafkajs-setup.ts, as Lifeline runs it), platformatic
 * (@platformatic/kafka). @confluentinc/kafka-javascript does not install here with a plain `npm ci`: see
 * docs/kafka-client.md.
 */
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { promisify } from "node:util";
import { zstdCompress, zstdDecompress } from "node:zlib";
import { npmPackage } from "../core/install.ts";
import { type BenchRow, printTable, writeResults } from "./lib.ts";

const RECORDS = Number(process.env.BENCH_RECORDS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const BROKERS = (process.env.LIFELINE_KAFKA_BROKERS ?? "127.0.0.1:19092").split(",");
const PACK_BYTES = 63 * 1024;
const REQUEST_BYTES = 2 << 20;
const LANES = 3;
const CLIENTS = ["kafkajs", "kafkajs+lifeline", "platformatic"] as const;
type Client = (typeof CLIENTS)[number];

/** The shipper's packs: documents joined by "\n" up to 63 KiB, keyed by file. */
function packs(): Buffer[] {
  const out: Buffer[] = [];
  let pending: string[] = [];
  let bytes = 0;
  const timestamp = new Date().toISOString();
  for (let i = 0; i < RECORDS; i++) {
    const doc = JSON.stringify({
      "@timestamp": timestamp,
      message: `GET /api/orders/${i} 200 ${i % 977} ms user=${i % 1013}`,
      log: { file: { path: "/var/log/app/app.log" }, offset: i * 200 },
      host: { name: "bench-host" },
      service: { name: "orders" },
    });
    if (bytes + doc.length + 1 > PACK_BYTES) {
      out.push(Buffer.from(pending.join("\n")));
      pending = [];
      bytes = 0;
    }
    pending.push(doc);
    bytes += doc.length + 1;
  }
  if (pending.length) out.push(Buffer.from(pending.join("\n")));
  return out;
}

/** Requests of about 2 MiB, dealt round-robin to the lanes. */
function lanes(all: Buffer[]): Buffer[][][] {
  const requests: Buffer[][] = [];
  let current: Buffer[] = [];
  let bytes = 0;
  for (const pack of all) {
    if (bytes + pack.length > REQUEST_BYTES && current.length) {
      requests.push(current);
      current = [];
      bytes = 0;
    }
    current.push(pack);
    bytes += pack.length;
  }
  if (current.length) requests.push(current);
  return Array.from({ length: LANES }, (_, lane) => requests.filter((_, i) => i % LANES === lane));
}

async function runKafkajs(topic: string, patched: boolean, work: Buffer[][][]): Promise<void> {
  const setup = patched ? await import("../core/kafka/kafkajs-setup.ts") : undefined;
  // kafkajs is CommonJS: its exports object as a whole (named imports miss CompressionCodecs).
  const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = (
    patched
      ? (await import("kafkajs")).default
      : createRequire(import.meta.url)(await npmPackage("kafkajs@2.2.4"))
  ) as typeof import("kafkajs");
  if (!patched) {
    // kafkajs has no zstd of its own: the documented way to add a codec.
    const compress = promisify(zstdCompress);
    const decompress = promisify(zstdDecompress);
    CompressionCodecs[CompressionTypes.ZSTD] = () => ({
      compress: (encoder: { buffer: Buffer }) => compress(encoder.buffer),
      decompress: (buffer: Buffer) => decompress(buffer),
    });
  }
  const kafka = new Kafka({
    clientId: "bench",
    brokers: BROKERS,
    logLevel: logLevel.NOTHING,
    ...(setup ? { socketFactory: setup.socketFactory } : {}),
  });
  // One request in flight per idempotent kafkajs producer: a producer per lane, as Lifeline's batch producer does.
  await Promise.all(
    work.map(async (requests) => {
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      for (const request of requests)
        await producer.send({
          topic,
          acks: -1,
          compression: CompressionTypes.ZSTD,
          messages: request.map((value) => ({ key: "app.log", value, headers: { "lifeline-records": "x" } })),
        });
      await producer.disconnect();
    }),
  );
}

async function runPlatformatic(topic: string, work: Buffer[][][]): Promise<void> {
  const { Producer, ProduceAcks } = await import("@platformatic/kafka");
  const producer = new Producer({
    clientId: "bench",
    bootstrapBrokers: BROKERS,
    idempotent: true,
    acks: ProduceAcks.ALL,
    compression: "zstd",
  });
  await Promise.all(
    work.map(async (requests) => {
      for (const request of requests)
        await producer.send({
          messages: request.map((value) => ({
            topic,
            key: Buffer.from("app.log"),
            value,
            headers: new Map([[Buffer.from("lifeline-records"), Buffer.from("x")]]),
          })),
        });
    }),
  );
  await producer.close();
}

async function child(client: Client, topic: string): Promise<void> {
  const work = lanes(packs());
  const began = performance.now();
  const cpu = process.cpuUsage();
  if (client === "platformatic") await runPlatformatic(topic, work);
  else await runKafkajs(topic, client === "kafkajs+lifeline", work);
  const used = process.cpuUsage(cpu);
  const wallS = (performance.now() - began) / 1000;
  process.stdout.write(
    `${JSON.stringify({
      cpuS: (used.user + used.system) / 1e6,
      wallS,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      messages: work.flat().flat().length,
    })}\n`,
  );
}

async function parent(): Promise<void> {
  const { Kafka, logLevel } = await import("kafkajs");
  const kafka = new Kafka({ clientId: "bench", brokers: BROKERS, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const rows: BenchRow[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? [...CLIENTS] : [...CLIENTS].reverse();
      for (const client of order) {
        const topic = `bench-clients-${randomUUID().slice(0, 8)}`;
        await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
        const out = execFileSync(
          process.execPath,
          [new URL(import.meta.url).pathname, "--client", client, "--topic", topic],
          { env: process.env, maxBuffer: 16 << 20 },
        ).toString();
        const result = JSON.parse(out.trim().split("\n").pop() as string) as {
          cpuS: number;
          wallS: number;
          peakRssMiB: number;
          messages: number;
        };
        const offsets = await admin.fetchTopicOffsets(topic);
        const acknowledged = offsets.reduce((sum, p) => sum + Number(p.high), 0);
        rows.push({
          scenario: `round ${round + 1}`,
          system: client,
          "cpu s / 1M records": (result.cpuS * 1_000_000) / RECORDS,
          "wall s": result.wallS,
          "records/s": RECORDS / result.wallS,
          "peak RSS MiB": result.peakRssMiB,
          "messages sent": result.messages,
          "messages in Kafka": acknowledged,
        });
        await admin.deleteTopics({ topics: [topic] });
      }
    }
  } finally {
    await admin.disconnect();
  }
  printTable(rows);
  console.log(
    `results: ${writeResults("kafka-clients", rows, { records: RECORDS, rounds: ROUNDS, lanes: LANES })}`,
  );
}

const args = process.argv.slice(2);
if (args[0] === "--client") await child(args[1] as Client, args[3] as string);
else await parent();
