/**
 * Joins the physical lines of one file into records (stack traces, tracebacks, panics).
 * Rules are either `start` (a matching line begins a record) or `continuation` (a matching line extends the
 * current one), optionally negated. Limits cap a runaway record; the timeout completes a record when no line
 * follows, but never while the file still has a half-written line (the rest of the record may be in it).
 */
export interface MultilineRule {
  start?: RegExp;
  continuation?: RegExp;
  negate: boolean;
  maxLines: number;
  maxBytes: number;
  timeoutMs: number;
}

export const MULTILINE_PRESETS: Record<string, { start?: string; continuation?: string }> = {
  // Java/Kotlin/Scala: "\tat ...", "... 12 more", "Caused by:", "Suppressed:", and the exception line itself
  // ("java.lang.IllegalStateException: boom") under the log line that reported it.
  java: {
    continuation: String.raw`^(\s+at\s|\s+\.\.\.\s\d+\s(more|common frames omitted)|\s*Caused by:|\s+Suppressed:|\s|[\w$.]+(Exception|Error|Throwable)(: .*)?$)`,
  },
  // .NET: "   at ...", "--- End of inner exception stack trace ---", " ---> InnerException".
  dotnet: { continuation: String.raw`^(\s+at\s|\s*--- End of |\s*---> |\s|[\w.]+Exception(: .*)?$)` },
  // Go panics: "goroutine 1 [running]:", "main.main()", "\t/src/main.go:12 +0x1d", blank lines between.
  go: {
    continuation: String.raw`^(\s|$|goroutine \d+ \[|[\w./*()-]+\(.*\)$|created by |exit status \d+|\[signal )`,
  },
  // Python: "Traceback (most recent call last):", indented frames, chained causes, the closing "XError: msg".
  python: {
    continuation: String.raw`^(\s|$|Traceback \(most recent call last\):|During handling of the above exception|The above exception was the direct cause|[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)(: .*)?$)`,
  },
  // Node.js: "    at fn (file.js:1:2)", "  [cause]: Error: ...", object dumps indented under the error.
  node: { continuation: String.raw`^(\s+at\s|\s+\[cause\]|\s|\})` },
};

export interface JoinedRecord {
  lines: string[];
  bytes: number;
  startOffset: number;
  endOffset: number;
  flags: ReadonlySet<string>;
  /**
   * A record of one line in valid UTF-8 can carry its bytes: `source[sourceStart, sourceStart + bytes)`. Valid only
   * during the record callback (the read buffer is reused).
   */
  source?: Buffer | undefined;
  sourceStart?: number;
}

export type LineFlags = ReadonlySet<string>;

/** Shared by every clean line: no set per line. */
export const NO_FLAGS: LineFlags = new Set<string>();

interface PendingRecord extends JoinedRecord {
  flags: Set<string>;
}

export class MultilineJoiner {
  private current: PendingRecord | undefined;
  private lastLineAt = 0;
  private readonly rule: MultilineRule | undefined;
  private readonly emit: (record: JoinedRecord) => void;

  constructor(rule: MultilineRule | undefined, emit: (record: JoinedRecord) => void) {
    this.rule = rule;
    this.emit = emit;
  }

  push(
    text: string,
    bytes: number,
    startOffset: number,
    endOffset: number,
    flags: LineFlags,
    now: number,
    source?: Buffer,
    sourceStart = 0,
  ): void {
    this.lastLineAt = now;
    const rule = this.rule;
    if (!rule) {
      this.emit({ lines: [text], bytes, startOffset, endOffset, flags, source, sourceStart });
      return;
    }
    const current = this.current;
    if (current && this.continues(text, rule)) {
      if (current.lines.length >= rule.maxLines || current.bytes + bytes > rule.maxBytes) {
        // Past the limits the record is complete: the rest is dropped (and flagged) until a new record starts,
        // but its offsets still count as read.
        current.flags.add("multiline_truncated");
        current.endOffset = endOffset;
        return;
      }
      current.lines.push(text);
      current.bytes += bytes + 1;
      current.endOffset = endOffset;
      for (const flag of flags) current.flags.add(flag);
      current.flags.add("multiline");
      return;
    }
    this.flush();
    this.current = { lines: [text], bytes, startOffset, endOffset, flags: new Set(flags) };
  }

  /** A blank line joins the pending record if the rule says so; otherwise it is skipped. */
  pushBlank(endOffset: number, now: number): void {
    const current = this.current;
    if (!current || !this.rule || !this.continues("", this.rule)) return;
    this.lastLineAt = now;
    if (current.lines.length < this.rule.maxLines) {
      current.lines.push("");
      current.bytes += 1;
    }
    current.endOffset = endOffset;
  }

  /** Completes the pending record if it has waited long enough; `lineInProgress` holds it back. */
  tick(now: number, lineInProgress: boolean): void {
    if (this.current && !lineInProgress && this.rule && now - this.lastLineAt >= this.rule.timeoutMs)
      this.flush();
  }

  /** Completes the pending record now (file closed, shipper stopping). */
  flush(): void {
    const record = this.current;
    this.current = undefined;
    if (record) this.emit(record);
  }

  get pending(): boolean {
    return this.current !== undefined;
  }

  private continues(text: string, rule: MultilineRule): boolean {
    if (rule.start) return rule.start.test(text) === rule.negate;
    if (rule.continuation) return rule.continuation.test(text) !== rule.negate;
    return false;
  }
}

export function compileMultiline(config: {
  preset?: string | undefined;
  start?: string | undefined;
  continuation?: string | undefined;
  negate: boolean;
  maxLines: number;
  maxBytes: number;
  timeoutMs: number;
}): MultilineRule {
  const preset = config.preset ? MULTILINE_PRESETS[config.preset] : undefined;
  const start = config.start ?? (config.continuation ? undefined : preset?.start);
  const continuation = config.continuation ?? (config.start ? undefined : preset?.continuation);
  return {
    ...(start ? { start: new RegExp(start) } : {}),
    ...(continuation ? { continuation: new RegExp(continuation) } : {}),
    negate: config.negate,
    maxLines: config.maxLines,
    maxBytes: config.maxBytes,
    timeoutMs: config.timeoutMs,
  };
}
