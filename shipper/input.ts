import { topicNames } from "../core/topics.ts";
import type { InputConfig } from "./config.ts";
import type { PathMatcher } from "./discovery.ts";
import { type ExtractedFields, extractFields } from "./parse/fields.ts";
import { TimestampReader } from "./parse/timestamp.ts";
import { compileMultiline, type MultilineRule } from "./tail/multiline.ts";

/** Why a record is left out: it matches none of includeLines, or one of excludeLines. */
export type FilterRule = "include" | "exclude";

/** One input of the configuration, compiled once: what finds its files and what reads their lines. */
export interface Input {
  config: InputConfig;
  matcher: PathMatcher;
  multiline: MultilineRule | undefined;
  timestamps: TimestampReader | undefined;
  /** includeLines / excludeLines, compiled; undefined when the input has none. */
  keep: ((text: string) => FilterRule | undefined) | undefined;
  topic: string;
  /**
   * Lines and bytes read since the metrics were last told (each tick): a labelled counter's update costs more than
   * a line, and a thousand files each read ten times a second made ten thousand of them a second.
   */
  unreported: { lines: number; bytes: number; reads: number };
}

export function compileInput(config: InputConfig, topicPrefix: string): Input {
  return {
    config,
    matcher: { include: config.paths, exclude: config.exclude },
    multiline: config.multiline ? compileMultiline(config.multiline) : undefined,
    timestamps: config.timestamp.formats.length > 0 ? new TimestampReader(config.timestamp) : undefined,
    keep: lineFilter(config.includeLines, config.excludeLines),
    topic: inputTopic(config, topicPrefix),
    unreported: { lines: 0, bytes: 0, reads: 0 },
  };
}

/** The topic an input's records go to: the lifecycle journal's, or the logs'. */
export function inputTopic(config: Pick<InputConfig, "kind">, topicPrefix: string): string {
  return topicNames(topicPrefix)[config.kind === "lifecycle" ? "lifecycle" : "logs"];
}

/** Which rule leaves a record out, or undefined: kept. */
export function lineFilter(
  include: string[],
  exclude: string[],
): ((text: string) => FilterRule | undefined) | undefined {
  if (include.length === 0 && exclude.length === 0) return undefined;
  const includes = include.map((source) => new RegExp(source));
  const excludes = exclude.map((source) => new RegExp(source));
  return (text) => {
    if (includes.length > 0 && !includes.some((pattern) => pattern.test(text))) return "include";
    if (excludes.some((pattern) => pattern.test(text))) return "exclude";
    return undefined;
  };
}

/** The fields a log line names; a plain-text line's leading timestamp too (shipper/parse/timestamp.ts). */
export function lineFields(input: Input, line: string): ExtractedFields {
  const fields = extractFields(line, input.config.parser);
  if (fields.format === "plain" && input.timestamps) {
    const text = input.timestamps.readText(line, Date.now());
    if (text !== undefined) fields.timestamp = text;
  }
  return fields;
}
