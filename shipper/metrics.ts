import { Counter, Gauge } from "prom-client";
import { componentRegistry } from "../core/observability/metrics.ts";

/**
 * What the shipper brings up to date when the metrics are scraped, rather than on a timer of its own: the read
 * counters (kept per input as plain numbers while reading), the bytes in flight, the bytes behind per file (a stat
 * each). An idle shipper then wakes for nothing, and a thousand files cost a stat each per scrape, not per second.
 */
export interface ScrapeHooks {
  read?: () => void;
  inflight?: () => void;
  behind?: () => void;
}

export function createShipperMetrics() {
  const registry = componentRegistry("shipper");
  const labelNames = ["input"] as const;
  const onScrape: ScrapeHooks = {};
  // prom-client calls a metric's collect() just before it reads the metric's values.
  const read = () => onScrape.read?.();
  return {
    registry,
    onScrape,
    linesRead: new Counter({
      name: "lifeline_shipper_records_read_total",
      help: "Records read (multiline joined)",
      labelNames,
      registers: [registry],
      collect: read,
    }),
    bytesRead: new Counter({
      name: "lifeline_shipper_bytes_read_total",
      help: "Bytes read from files",
      labelNames,
      registers: [registry],
      collect: read,
    }),
    reads: new Counter({
      name: "lifeline_shipper_reads_total",
      help: "Reads that returned new bytes; records per read tells how many writes each read gathered (limits.readDelayMs)",
      labelNames,
      registers: [registry],
      collect: read,
    }),
    recordsAcked: new Counter({
      name: "lifeline_shipper_records_acked_total",
      help: "Records acknowledged by Kafka",
      registers: [registry],
    }),
    bytesAcked: new Counter({
      name: "lifeline_shipper_bytes_acked_total",
      help: "Bytes acknowledged by Kafka",
      registers: [registry],
    }),
    truncatedLines: new Counter({
      name: "lifeline_shipper_truncated_lines_total",
      help: "Lines cut at maxLineBytes",
      labelNames,
      registers: [registry],
    }),
    invalidUtf8: new Counter({
      name: "lifeline_shipper_invalid_utf8_total",
      help: "Lines with invalid UTF-8, replaced",
      labelNames,
      registers: [registry],
    }),
    binarySkipped: new Counter({
      name: "lifeline_shipper_binary_files_skipped_total",
      help: "Files skipped as binary",
      labelNames,
      registers: [registry],
    }),
    truncations: new Counter({
      name: "lifeline_shipper_file_truncations_total",
      help: "Files truncated under the reader (copytruncate)",
      labelNames,
      registers: [registry],
    }),
    copiesHeld: new Counter({
      name: "lifeline_shipper_copies_recognised_total",
      help: "New files recognised as a copy of content already read (copytruncate): read only from where the original stopped",
      labelNames,
      registers: [registry],
    }),
    copyBytesMissed: new Counter({
      name: "lifeline_shipper_copytruncate_bytes_missed_total",
      help: "Bytes a file held past what was read when it was truncated, with no copy of them found: not shipped",
      labelNames,
      registers: [registry],
    }),
    rotations: new Counter({
      name: "lifeline_shipper_file_rotations_total",
      help: "Files renamed or deleted while read",
      labelNames,
      registers: [registry],
    }),
    kafkaErrors: new Counter({
      name: "lifeline_shipper_kafka_errors_total",
      help: "Failed Kafka sends (retried)",
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: "lifeline_shipper_dead_lettered_total",
      help: "Records too large for the broker, dead-lettered",
      registers: [registry],
    }),
    filesOpen: new Gauge({
      name: "lifeline_shipper_files_open",
      help: "Files with an open handle",
      registers: [registry],
    }),
    filesWaiting: new Gauge({
      name: "lifeline_shipper_files_waiting",
      help: "Files matched but not opened: limits.openFiles files are open",
      registers: [registry],
    }),
    filesClosedInactive: new Counter({
      name: "lifeline_shipper_files_closed_inactive_total",
      help: "Files closed after closeInactiveMs without growth (opened again when they grow)",
      labelNames,
      registers: [registry],
    }),
    linesFiltered: new Counter({
      name: "lifeline_shipper_lines_filtered_total",
      help: "Records left out by an input's includeLines / excludeLines",
      labelNames: ["input", "rule"] as const,
      registers: [registry],
    }),
    inflightBytes: new Gauge({
      name: "lifeline_shipper_inflight_bytes",
      help: "Bytes read, not yet acknowledged",
      registers: [registry],
      collect: () => onScrape.inflight?.(),
    }),
    bytesBehind: new Gauge({
      name: "lifeline_shipper_behind_bytes",
      help: "Bytes between the acknowledged offset and the end of the files being read, per path (their size when scraped)",
      labelNames: ["input", "path"] as const,
      registers: [registry],
      collect: () => onScrape.behind?.(),
    }),
  };
}
export type ShipperMetrics = ReturnType<typeof createShipperMetrics>;

/** What the bytes-behind gauge says of one file being read. */
export interface FileBehind {
  input: string;
  path: string;
  bytes: number;
}

/**
 * The bytes-behind gauge, one series per input and path of the files being read now. A series whose file is no
 * longer read (drained after a deletion, closed while inactive, renamed) goes: left at its last value, it would
 * say for good that bytes wait that nobody will ship. Each series is labelled once (a labelled update hashes its
 * labels every time, and this runs for every file at every scrape).
 */
export class BehindGauge {
  private readonly gauge: ShipperMetrics["bytesBehind"];
  private readonly series = new Map<
    string,
    {
      labels: { input: string; path: string };
      child: ReturnType<ShipperMetrics["bytesBehind"]["labels"]>;
      round: number;
    }
  >();
  private round = 0;

  constructor(gauge: ShipperMetrics["bytesBehind"]) {
    this.gauge = gauge;
  }

  /**
   * Sets the series of these files, and removes the others. Files under one path (a file renamed away and still
   * read to its end, and the new file at its old path) share a series: the sum of what each has behind.
   */
  refresh(files: Iterable<FileBehind>): void {
    const round = ++this.round;
    const sums = new Map<string, { input: string; path: string; bytes: number }>();
    for (const { input, path, bytes } of files) {
      const key = `${input}\n${path}`;
      const sum = sums.get(key);
      if (sum) sum.bytes += Math.max(0, bytes);
      else sums.set(key, { input, path, bytes: Math.max(0, bytes) });
    }
    for (const [key, { input, path, bytes }] of sums) {
      let series = this.series.get(key);
      if (!series) {
        const labels = { input, path };
        series = { labels, child: this.gauge.labels(labels), round };
        this.series.set(key, series);
      }
      series.child.set(bytes);
      series.round = round;
    }
    for (const [key, series] of this.series) {
      if (series.round === round) continue;
      this.gauge.remove(series.labels);
      this.series.delete(key);
    }
  }
}
