/**
 * Rewrites the results tables in bench/README.md from bench/results/*.json, and the shipper's summary table above
 * them from bench/results/shipper.json: npm run bench:report
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { BenchRow } from "./lib.ts";

const dir = fileURLToPath(new URL("./", import.meta.url));
const sections: string[] = [];
for (const file of readdirSync(`${dir}results`)
  .filter((f) => f.endsWith(".json"))
  .sort()) {
  const result = JSON.parse(readFileSync(`${dir}results/${file}`, "utf8")) as {
    name: string;
    date: string;
    cores: number;
    cpu: string;
    node: string;
    rows: BenchRow[];
  };
  const columns = [...new Set(result.rows.flatMap((row) => Object.keys(row)))];
  const cell = (value: unknown) =>
    value === undefined
      ? ""
      : typeof value === "number"
        ? Number.isInteger(value)
          ? value.toLocaleString("en")
          : value.toFixed(2)
        : String(value);
  sections.push(
    [
      `### ${result.name} (${result.date.slice(0, 10)}, ${result.cores} cores, ${result.cpu}, Node ${result.node})`,
      "",
      `| ${columns.join(" | ")} |`,
      `| ${columns.map(() => "---").join(" | ")} |`,
      ...result.rows.map((row) => `| ${columns.map((c) => cell(row[c])).join(" | ")} |`),
    ].join("\n"),
  );
}
/** Puts `content` between the file's begin and end markers (or at its end, with them, the first time). */
function replaceBetween(file: string, marker: string, content: string): void {
  const text = readFileSync(file, "utf8");
  const begin = `<!-- ${marker}:begin -->`;
  const end = `<!-- ${marker}:end -->`;
  const block = `${begin}\n${content}\n${end}`;
  writeFileSync(
    file,
    text.includes(begin) ? text.replace(new RegExp(`${begin}[\\s\\S]*${end}`), block) : `${text}\n${block}\n`,
  );
}

replaceBetween(`${dir}README.md`, "results", sections.join("\n\n"));
console.log(`bench/README.md: ${sections.length} result tables`);

/** The shipper's summary table: the columns a reader compares, the systems by short name. */
const shipper = JSON.parse(readFileSync(`${dir}results/shipper.json`, "utf8")) as {
  date: string;
  cores: number;
  rows: BenchRow[];
};
const short = (system: string) => system.replace(/ \(.*\)$/, "");
const number = (value: unknown, digits = 0) =>
  typeof value === "number" ? value.toLocaleString("en", { maximumFractionDigits: digits }) : "";
const latency = (row: BenchRow) =>
  row["written→in Kafka p50 ms"] === undefined
    ? ""
    : `${number(row["written→in Kafka p50 ms"])} / ${number(row["p99 ms"])}`;
/** Live rows: CPU from 20 s after the feed began to its end (bench/shipper.ts WARM_UP_S). */
const steady = (row: BenchRow) =>
  row["steady CPU %"] === undefined
    ? ""
    : `${number(row["steady CPU %"], 1)} / ${number(row["steady cpu s/M lines"], 1)}`;
replaceBetween(
  `${dir}README.md`,
  "shipper-bench",
  [
    `bench/results/shipper.json, ${shipper.date.slice(0, 10)}, ${shipper.cores} cores, every row from one run:`,
    "",
    "| scenario | system | lines/s | CPU s per million lines | CPU % of a core | steady: CPU % / s per million lines | peak RSS MiB | of which anonymous (not the executable's pages) | written → in Kafka p50 / p99 ms |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...shipper.rows.map(
      (row) =>
        `| ${row.scenario} | ${short(String(row.system))} | ${number(row["lines/s"])} | ${number(row["cpu s/M lines"], 1)} | ${number(row["CPU % of a core"], 1)} | ${steady(row)} | ${number(row["peak RSS MiB"])} | ${number(row["peak anon MiB"])} | ${latency(row)} |`,
    ),
  ].join("\n"),
);
console.log("bench/README.md: the shipper's summary table");
