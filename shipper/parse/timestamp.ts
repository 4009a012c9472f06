import { isoString } from "../../core/iso-time.ts";

/**
 * The time a plain-text log line says it was written, read from its start: what an SRE searching an outage needs
 * as `@timestamp`, instead of the time the shipper happened to read the line (minutes or hours later after an
 * outage of the shipper or of Kafka). Recognised at the very start of the line, optionally after `[` (env_logger,
 * many Java layouts) or an RFC 5424 `<PRI>1 ` header:
 *
 * - `iso8601`: `2026-12-04T10:11:12Z`, `2026-12-04 10:11:12,123` (log4j, Python logging), `…+01:00`, `…+0100`
 * - `go`: `2026/12/04 10:11:12` and `…12.123456` (Go's log package)
 * - `rfc3164`: `Dec  4 10:11:12` (syslog, no year: the year that puts it closest before the read time)
 *
 * A timestamp without a zone is read in the input's `timeZone` (an IANA name, `UTC`, or `local`: the shipper's
 * own). Anything else (no timestamp, fields out of range, a date in the future beyond a day's clock skew) is no
 * timestamp: the caller keeps the read time. Fractions below a millisecond are cut (`@timestamp` holds
 * milliseconds; the message keeps the original text).
 */

export const TIMESTAMP_FORMATS = ["iso8601", "go", "rfc3164"] as const;
export type TimestampFormat = (typeof TIMESTAMP_FORMATS)[number];

export interface TimestampRule {
  formats: readonly TimestampFormat[];
  /** `local`, `UTC` or an IANA zone name. */
  timeZone: string;
}

const MAX_FUTURE_MS = 24 * 3600 * 1000;
const DAY_MS = 24 * 3600 * 1000;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Reads leading timestamps for one input; keeps the zone's offsets and the last second it converted. */
export class TimestampReader {
  private readonly iso: boolean;
  private readonly go: boolean;
  private readonly syslog: boolean;
  private readonly zone: ZoneOffsets;
  /** The last line's text up to its seconds, and that second's epoch milliseconds (lines come in time order). */
  private lastKey = "";
  private lastSecondMs = 0;
  /** Where the last line's timestamp began (after a `[` or an RFC 5424 header). */
  private lastStart = 0;

  constructor(rule: TimestampRule) {
    this.iso = rule.formats.includes("iso8601");
    this.go = rule.formats.includes("go");
    this.syslog = rule.formats.includes("rfc3164");
    this.zone = new ZoneOffsets(rule.timeZone);
  }

  get enabled(): boolean {
    return this.iso || this.go || this.syslog;
  }

  /**
   * The line's leading timestamp as `@timestamp` text (ISO 8601, UTC, milliseconds), or undefined. A timestamp
   * already written that way (`2026-11-27T05:00:01.123Z`, the most common form) is its own text: a slice of the
   * line, no conversion (converting each line's time back to text was a large share of the shipper's CPU reading
   * at full speed: bench/tuning.md).
   */
  readText(line: string, now: number): string | undefined {
    const ms = this.read(line, now);
    if (ms === undefined) return undefined;
    const at = this.lastStart;
    if (
      line.charCodeAt(at + 4) === 45 /* - */ &&
      line.charCodeAt(at + 10) === 84 /* T */ &&
      line.charCodeAt(at + 19) === 46 /* . */ &&
      line.charCodeAt(at + 23) === 90 /* Z */ &&
      !(
        line.charCodeAt(at + 17) === 54 /* 6 */ && line.charCodeAt(at + 18) === 48
      ) /* :60, a leap second */ &&
      isDigit(line.charCodeAt(at + 20)) &&
      isDigit(line.charCodeAt(at + 21)) &&
      isDigit(line.charCodeAt(at + 22)) &&
      !isDigit(line.charCodeAt(at + 24)) // no fourth digit of a fraction: it would be cut, not the same text
    ) {
      return line.slice(at, at + 24);
    }
    return isoString(ms);
  }

  /** Epoch milliseconds of the line's leading timestamp, or undefined. `now` bounds the future and syslog's year. */
  read(line: string, now: number): number | undefined {
    let at = 0;
    let code = line.charCodeAt(0);
    if (code === 91 /* [ */) {
      at = 1;
      code = line.charCodeAt(1);
    } else if (code === 60 /* < */) {
      at = rfc5424Start(line);
      if (at < 0) return undefined;
      code = line.charCodeAt(at);
    }
    this.lastStart = at;
    let ms: number | undefined;
    if (code >= 48 && code <= 57) {
      ms = this.numeric(line, at);
    } else if (this.syslog && code >= 65 && code <= 90) {
      ms = this.rfc3164(line, at, now);
    }
    return ms !== undefined && ms <= now + MAX_FUTURE_MS ? ms : undefined;
  }

  /** `YYYY-MM-DD[T ]HH:MM:SS` (iso8601) or `YYYY/MM/DD HH:MM:SS` (go), then a fraction and, for ISO, a zone. */
  private numeric(line: string, at: number): number | undefined {
    const dash = line.charCodeAt(at + 4);
    const iso = dash === 45; /* - */
    if (iso ? !this.iso : !((this.go && dash === 47) /* / */)) return undefined;
    if (line.charCodeAt(at + 7) !== dash) return undefined;
    const separator = line.charCodeAt(at + 10);
    if (!(separator === 32 || (iso && (separator === 84 || separator === 116)))) return undefined; // ' ' T t
    if (line.charCodeAt(at + 13) !== 58 || line.charCodeAt(at + 16) !== 58) return undefined; // :
    let end = at + 19;
    let fraction = 0;
    const point = line.charCodeAt(end);
    if (point === 46 || (iso && point === 44)) {
      // . or , (log4j, Python): up to nine digits, milliseconds kept
      let digitsRead = 0;
      let i = end + 1;
      for (; i < line.length && digitsRead < 9; i++, digitsRead++) {
        const digit = line.charCodeAt(i) - 48;
        if (!(digit >= 0 && digit <= 9)) break;
        if (digitsRead < 3) fraction = fraction * 10 + digit;
      }
      if (digitsRead === 0) return undefined;
      for (let pad = digitsRead; pad < 3; pad++) fraction *= 10;
      end = i;
    }
    let offsetMinutes: number | undefined;
    if (iso) {
      const zone = line.charCodeAt(end);
      if (zone === 90 || zone === 122) {
        offsetMinutes = 0; // Z z
        end++;
      } else if (zone === 43 || zone === 45) {
        // +HH:MM, +HHMM, +HH
        const hours = digits(line, end + 1, 2);
        if (hours < 0 || hours > 18) return undefined;
        let minutes = 0;
        let next = end + 3;
        if (line.charCodeAt(next) === 58) next++;
        const written = digits(line, next, 2);
        if (written >= 0) {
          if (written > 59) return undefined;
          minutes = written;
          next += 2;
        } else if (next !== end + 3) return undefined;
        offsetMinutes = (zone === 45 ? -1 : 1) * (hours * 60 + minutes);
        end = next;
      }
    }
    // The timestamp is a word of its own: "2026-12-04 10:11:12abc" is not one.
    if (isWordCode(line.charCodeAt(end))) return undefined;
    const key = line.slice(at, at + 19);
    let secondMs: number;
    if (key === this.lastKey && offsetMinutes === undefined) {
      secondMs = this.lastSecondMs;
    } else {
      const wall = wallClock(
        digits(line, at, 4),
        digits(line, at + 5, 2),
        digits(line, at + 8, 2),
        digits(line, at + 11, 2),
        digits(line, at + 14, 2),
        digits(line, at + 17, 2),
      );
      if (wall === undefined) return undefined;
      if (offsetMinutes !== undefined) return wall - offsetMinutes * 60_000 + fraction;
      secondMs = this.zone.toUtc(wall);
      this.lastKey = key;
      this.lastSecondMs = secondMs;
    }
    return secondMs + fraction;
  }

  /** `Mmm dd HH:MM:SS` or `Mmm  d HH:MM:SS`: the year is the one that puts it closest before `now` (a day's skew). */
  private rfc3164(line: string, at: number, now: number): number | undefined {
    const month = MONTHS.indexOf(line.slice(at, at + 3)) + 1;
    if (month === 0 || line.charCodeAt(at + 3) !== 32) return undefined;
    const tens = line.charCodeAt(at + 4);
    const day = tens === 32 ? digits(line, at + 5, 1) : digits(line, at + 4, 2);
    if (line.charCodeAt(at + 6) !== 32) return undefined;
    if (line.charCodeAt(at + 9) !== 58 || line.charCodeAt(at + 12) !== 58) return undefined;
    if (isWordCode(line.charCodeAt(at + 15))) return undefined;
    const hour = digits(line, at + 7, 2);
    const minute = digits(line, at + 10, 2);
    const second = digits(line, at + 13, 2);
    const year = new Date(now).getUTCFullYear();
    for (const candidate of [year + 1, year, year - 1]) {
      const wall = wallClock(candidate, month, day, hour, minute, second);
      if (wall === undefined) continue;
      const ms = this.zone.toUtc(wall);
      if (ms <= now + MAX_FUTURE_MS) return ms;
    }
    return undefined;
  }
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/** Where the timestamp of `<PRI>1 TIMESTAMP …` (RFC 5424) starts, or -1. */
function rfc5424Start(line: string): number {
  let i = 1;
  while (i < 5 && line.charCodeAt(i) >= 48 && line.charCodeAt(i) <= 57) i++;
  if (i === 1 || line.charCodeAt(i) !== 62 /* > */) return -1;
  if (line.charCodeAt(i + 1) !== 49 /* 1 */ || line.charCodeAt(i + 2) !== 32) return -1;
  return i + 3;
}

/** The wall-clock time as if it were UTC, or undefined for a field out of range (no rolling over: Feb 30 is none). */
function wallClock(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
): number | undefined {
  if (year < 1000 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23) return undefined;
  if (minute < 0 || minute > 59 || second < 0 || second > 60) return undefined; // 60: a leap second, as :59
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : (DAYS_IN_MONTH[month - 1] as number))) return undefined;
  return Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59));
}

/** `count` ASCII digits at `at` as a number, or -1. */
function digits(text: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (!(digit >= 0 && digit <= 9)) return -1;
    value = value * 10 + digit;
  }
  return value;
}

function isWordCode(code: number): boolean {
  return (
    (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95
  );
}

/**
 * A zone's offset from UTC, from the platform's time zone data (Intl), remembered per quarter hour of UTC time
 * (zones change their offset only on quarter hours). A wall-clock time that a change skips (spring forward) or
 * repeats (fall back) is read with the offset in force just before the change.
 */
class ZoneOffsets {
  private readonly format: Intl.DateTimeFormat | undefined;
  private readonly offsets = new Map<number, number>();

  constructor(timeZone: string) {
    if (timeZone === "UTC") return;
    this.format = new Intl.DateTimeFormat("en-US", {
      ...(timeZone === "local" ? {} : { timeZone }),
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
  }

  /** UTC milliseconds of a wall-clock time in this zone (given as if it were UTC). */
  toUtc(wall: number): number {
    if (!this.format) return wall;
    // A zone changes its offset at most once in two days: the offsets a day before and a day after tell whether
    // one is near, and which reading of the wall clock is valid.
    const early = this.offsetAt(wall - DAY_MS);
    const late = this.offsetAt(wall + DAY_MS);
    const byEarly = wall - early;
    if (early === late) return byEarly;
    const byLate = wall - late;
    if (this.offsetAt(byEarly) === early) return byEarly; // before the change, or the first of a repeated hour
    if (this.offsetAt(byLate) === late) return byLate;
    return byEarly; // skipped by the change: read with the offset before it
  }

  /** The zone's offset (local minus UTC, in milliseconds) at the UTC instant `utc`. */
  private offsetAt(utc: number): number {
    const bucket = Math.floor(utc / 900_000);
    let offset = this.offsets.get(bucket);
    if (offset === undefined) {
      const parts: Record<string, number> = {};
      for (const part of (this.format as Intl.DateTimeFormat).formatToParts(bucket * 900_000)) {
        if (part.type !== "literal") parts[part.type] = Number(part.value);
      }
      const local = Date.UTC(
        parts.year as number,
        (parts.month as number) - 1,
        parts.day as number,
        parts.hour as number,
        parts.minute as number,
        parts.second as number,
      );
      offset = local - bucket * 900_000;
      if (this.offsets.size > 4096) this.offsets.clear();
      this.offsets.set(bucket, offset);
    }
    return offset;
  }
}
