import { hostname } from "node:os";
import { z } from "zod";
import { loadConfigFile, timerMs } from "../core/config.ts";
import { elasticSettingsSchema } from "../core/elastic/settings.ts";
import { kafkaConnectionSchema, kafkaEnvOverrides } from "../core/kafka/client.ts";
import { DEFAULT_PACK_BYTES } from "../core/kafka/packing.ts";
import { TIMESTAMP_FORMATS } from "./parse/timestamp.ts";
import { ENCODINGS } from "./tail/file-tailer.ts";
import { MULTILINE_PRESETS } from "./tail/multiline.ts";

const regex = z.string().refine((source) => {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}, "must be a valid regular expression");

export const multilineSchema = z.strictObject({
  /** A named rule for common stack traces; pattern fields below override it. */
  preset: z.enum(Object.keys(MULTILINE_PRESETS) as [string, ...string[]]).optional(),
  /** A line matching this begins a new record; every other line continues the current one. */
  start: regex.optional(),
  /** A line matching this continues the current record; every other line begins a new one. */
  continuation: regex.optional(),
  /** Inverts the match of `start` or `continuation`. */
  negate: z.boolean().default(false),
  maxLines: z.number().int().positive().default(500),
  maxBytes: z
    .number()
    .int()
    .positive()
    .default(1 << 20),
  /** A record with no new line for this long is complete (unless a line is still half-written). */
  timeoutMs: timerMs().positive().default(1_000),
});
export type MultilineConfig = z.output<typeof multilineSchema>;

export const inputSchema = z.strictObject({
  /** Names the input in metrics and becomes event.dataset. */
  name: z.string().regex(/^[a-z0-9_.-]+$/, "lowercase letters, digits, . _ -"),
  /** Glob patterns of files to tail, e.g. /var/log/api/*.log. */
  paths: z.array(z.string().min(1)).min(1),
  exclude: z.array(z.string()).default([]),
  /** `logs` for service logs; `lifecycle` for the agent's journal (its lines are lifecycle events already). */
  kind: z.enum(["logs", "lifecycle"]).default("logs"),
  service: z.strictObject({ name: z.string().min(1), environment: z.string().optional() }).optional(),
  parser: z.enum(["auto", "json", "logfmt", "plain"]).default("auto"),
  multiline: multilineSchema.optional(),
  /**
   * Records (a multiline record as a whole) are shipped only if they match one of these, when any are given
   * (regular expressions, JavaScript syntax)...
   */
  includeLines: z.array(regex).default([]),
  /** ...and none of these. Lines left out are counted (`lifeline_shipper_lines_filtered_total`) and acknowledged. */
  excludeLines: z.array(regex).default([]),
  /** Added to every record under labels. */
  fields: z.record(z.string(), z.string()).default({}),
  /** Longer lines are cut here and flagged `truncated`. */
  maxLineBytes: z
    .number()
    .int()
    .min(1024)
    .max(900 * 1024)
    .default(256 * 1024),
  /**
   * The files' text encoding. `utf-8` (the default) also reads a file that starts with a UTF-16 byte order mark as
   * UTF-16; `utf-16` goes by the mark (little-endian without one), as many Windows programs write; `utf-16le`,
   * `utf-16be`; `latin1` (ISO-8859-1) and `windows-1252`. Byte order marks are skipped.
   */
  encoding: z.enum(ENCODINGS).default("utf-8"),
  /**
   * A plain-text line that begins with its own time is dated by it (`@timestamp`; the read time becomes
   * `event.created`). `formats`: which layouts are recognised (shipper/parse/timestamp.ts), `[]` for none;
   * `timeZone`: how a time without a zone is read, an IANA name, `UTC`, or `local` (the shipper host's zone).
   */
  timestamp: z
    .strictObject({
      formats: z.array(z.enum(TIMESTAMP_FORMATS)).default([...TIMESTAMP_FORMATS]),
      timeZone: z
        .string()
        .refine(validTimeZone, "an IANA time zone name (Europe/Berlin), UTC, or local")
        .default("local"),
    })
    .default({ formats: [...TIMESTAMP_FORMATS], timeZone: "local" }),
  /** Where a file never seen before starts: its beginning, or its end (only new lines). */
  startAt: z.enum(["beginning", "end"]).default("beginning"),
});
export type InputConfig = z.output<typeof inputSchema>;

export const shipperConfigSchema = z.strictObject({
  host: z.strictObject({ name: z.string().min(1).default(hostname()) }).default({ name: hostname() }),
  /** Where offsets are kept; one file, rewritten atomically. */
  checkpointDir: z.string().min(1),
  inputs: z.array(inputSchema).min(1),
  /** Topic prefix; topics are <prefix>.logs and <prefix>.lifecycle. */
  topicPrefix: z.string().default(process.env.LIFELINE_TOPIC_PREFIX ?? "lifeline"),
  limits: z
    .strictObject({
      /**
       * Bytes read but not yet acknowledged by Kafka; past this, reading pauses (the files are the buffer). Each
       * byte in flight costs several in memory (packs, encoded batches). 6 MiB: the throughput of more, less memory
       * than more, and not the cost in speed of less (bench/tuning.md).
       */
      inflightBytes: z
        .number()
        .int()
        .positive()
        .default(6 << 20),
      /** One Kafka request carries up to this much; 2 MiB was faster than 1 (bench/tuning.md). */
      batchBytes: z
        .number()
        .int()
        .positive()
        .default(2 << 20),
      /**
       * A producer with records waits this long for more before it sends (a full batch goes at once). Live tailing
       * sends small batches, and each costs the event loop more than its lines: 100 ms took far less CPU than 20, and
       * a written line reaches Kafka within the latency goal either way (bench/tuning.md). Full-speed reading fills
       * batches before the linger ends. Lines read in a pass over changed files (`readDelayMs`) do not wait for it.
       */
      lingerMs: timerMs().default(100),
      /**
       * A file's change event is acted on this long after the first one since the last pass: the files changed in the
       * meantime are read in one pass, each once however many writes it saw, and their lines go to Kafka at the end
       * of the pass without the linger (0: each change read at once). Against reading at once with the 100 ms
       * linger, 100 ms took 14 % less CPU with 1,000 files written ten times a second, and halved the written →
       * acknowledged p50 (p99 the same); 150 ms took 17-20 % less, p99 +50 ms (bench/tuning.md).
       */
      readDelayMs: timerMs().default(100),
      /**
       * Lines bound for one partition travel together, whichever files they come from, in Kafka messages of up to
       * this size (0: one line per message).
       */
      packBytes: z
        .number()
        .int()
        .min(0)
        .max(512 * 1024)
        .default(DEFAULT_PACK_BYTES),
      /**
       * Files open at once (read, draining or held). Past it, new files wait for a slot (closed inactive or drained
       * files free one): `lifeline_shipper_files_waiting` counts them, and a file deleted while waiting is not read.
       */
      openFiles: z.number().int().positive().default(2_048),
      /**
       * Kafka producers sending side by side, partitions spread over them (a file's lines stay with one, in order).
       * Idempotence allows each one request in flight; with many files 3 were faster than 1 (bench/tuning.md).
       */
      producers: z.number().int().min(1).max(16).default(3),
    })
    .default({
      inflightBytes: 6 << 20,
      batchBytes: 2 << 20,
      lingerMs: 100,
      readDelayMs: 100,
      packBytes: DEFAULT_PACK_BYTES,
      openFiles: 2_048,
      producers: 3,
    }),
  /** zstd: faster and smaller than gzip (Kafka 2.1+ brokers and consumers). */
  compression: z.enum(["zstd", "gzip", "none"]).default("zstd"),
  /**
   * How documents travel in Kafka records. `packed`: consecutive documents of one source in one record, separated
   * by newlines (NDJSON, header `lifeline-records: <n>`): fewer, larger records, the fastest. `single`: one
   * document per record, what Logstash's json codec, Kafka Connect, ksqlDB and kcat scripts expect.
   */
  recordFormat: z.enum(["packed", "single"]).default("packed"),
  /**
   * A file read to its end and acknowledged that has not grown for this long is closed (its handle released, its
   * checkpoint kept) and opened again when it grows. 0: files stay open until they are renamed away or deleted.
   */
  closeInactiveMs: timerMs().default(5 * 60_000),
  /** How often every path is re-listed and re-checked, in case a watch event was missed. */
  reconcileIntervalMs: timerMs().positive().default(2_000),
  checkpointIntervalMs: timerMs().positive().default(1_000),
  http: z
    .strictObject({
      host: z.string().default("127.0.0.1"),
      port: z.number().int().min(0).max(65535).default(9466),
    })
    .optional(),
  kafka: kafkaConnectionSchema.optional(),
  elasticsearch: elasticSettingsSchema.optional(),
});
export type ShipperConfig = z.output<typeof shipperConfigSchema>;

function validTimeZone(zone: string): boolean {
  if (zone === "local") return true;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function loadShipperConfig(file: string, env: NodeJS.ProcessEnv = process.env): ShipperConfig {
  return loadConfigFile(file, shipperConfigSchema, {
    env,
    overrides: { ...kafkaEnvOverrides, LIFELINE_HOST_NAME: { path: "host.name" } },
  });
}
