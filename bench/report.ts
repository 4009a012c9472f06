/** Rewrites the results table in bench/README.md from bench/results/*.json: npm run bench:report */
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
const readme = `${dir}README.md`;
const text = readFileSync(readme, "utf8");
const begin = "<!-- results:begin -->";
const end = "<!-- results:end -->";
const table = `${begin}\n${sections.join("\n\n")}\n${end}`;
writeFileSync(
  readme,
  text.includes(begin) ? text.replace(new RegExp(`${begin}[\\s\\S]*${end}`), table) : `${text}\n${table}\n`,
);
console.log(`bench/README.md: ${sections.length} result tables`);
