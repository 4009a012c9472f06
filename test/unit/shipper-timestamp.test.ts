import { describe, expect, it } from "vitest";
import { isoString } from "../../core/iso-time.ts";
import { TIMESTAMP_FORMATS, TimestampReader } from "../../shipper/parse/timestamp.ts";

const NOW = Date.UTC(2026, 11, 5, 12, 0, 0);
const utc = new TimestampReader({ formats: TIMESTAMP_FORMATS, timeZone: "UTC" });
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe("leading timestamps of plain-text lines", () => {
  it.each([
    ["2026-12-04T10:11:12.123Z GET /", "2026-12-04T10:11:12.123Z"],
    ["2026-12-04T10:11:12Z started", "2026-12-04T10:11:12.000Z"],
    ["2026-12-04 10:11:12,123 INFO [main] o.a.Foo - log4j", "2026-12-04T10:11:12.123Z"],
    ["2026-12-04 10:11:12,5 python", "2026-12-04T10:11:12.500Z"],
    ["2026-12-04T10:11:12.123456789+01:00 nanos", "2026-12-04T09:11:12.123Z"],
    ["2026-12-04T10:11:12+0530 india", "2026-12-04T04:41:12.000Z"],
    ["2026-12-04T10:11:12-05 east", "2026-12-04T15:11:12.000Z"],
    ["2026/12/04 10:11:12 go log", "2026-12-04T10:11:12.000Z"],
    ["2026/12/04 10:11:12.654321 go log with microseconds", "2026-12-04T10:11:12.654Z"],
    ["[2026-12-04T10:11:12Z INFO  app] env_logger", "2026-12-04T10:11:12.000Z"],
    ["<34>1 2026-12-04T10:11:12.003Z host app - - - rfc5424", "2026-12-04T10:11:12.003Z"],
    ["Dec  4 10:11:12 host sshd[1]: rfc3164", "2026-12-04T10:11:12.000Z"],
    ["Nov 30 23:59:59 host cron: rfc3164", "2026-11-30T23:59:59.000Z"],
  ])("%s", (line, expected) => {
    expect(iso(utc.read(line, NOW))).toBe(expected);
  });

  it.each([
    "no timestamp here",
    "2026-02-30 10:00:00 no such day",
    "2026-12-04 24:00:00 no such hour",
    "2026-12-04 10:11:12abc glued to a word",
    "2026-12-04T10:11:12+25:00 no such offset",
    "2026-12-04 10:11 no seconds",
    "12345 a number",
    "2026-12-09T10:11:12Z four days ahead of the clock",
    "Foo  4 10:11:12 not a month",
    "<34>2 2026-12-04T10:11:12Z not RFC 5424 version 1",
    "",
  ])("none in %j", (line) => {
    expect(utc.read(line, NOW)).toBeUndefined();
  });

  it("a syslog line from December read in January is dated in the year before", () => {
    const january = Date.UTC(2027, 0, 1, 0, 0, 10);
    expect(iso(utc.read("Dec 31 23:59:58 host app: late", january))).toBe("2026-12-31T23:59:58.000Z");
    expect(iso(utc.read("Jan  1 00:00:05 host app: early", january))).toBe("2027-01-01T00:00:05.000Z");
  });

  it("a timestamp without a zone is read in the input's time zone, across daylight saving changes", () => {
    const berlin = new TimestampReader({ formats: TIMESTAMP_FORMATS, timeZone: "Europe/Berlin" });
    expect(iso(berlin.read("2026-07-01 12:00:00 summer", NOW))).toBe("2026-07-01T10:00:00.000Z");
    expect(iso(berlin.read("2026-12-01 12:00:00 winter", NOW))).toBe("2026-12-01T11:00:00.000Z");
    // 02:30 on 29 March 2026 does not exist in Berlin: read with the offset before the change (+01:00).
    expect(iso(berlin.read("2026-03-29 02:30:00 skipped", NOW))).toBe("2026-03-29T01:30:00.000Z");
    expect(iso(berlin.read("2026-03-29 03:30:00 after", NOW))).toBe("2026-03-29T01:30:00.000Z");
    // 02:30 on 25 October 2026 happens twice: the first (+02:00).
    expect(iso(berlin.read("2026-10-25 02:30:00 repeated", NOW))).toBe("2026-10-25T00:30:00.000Z");
    expect(iso(berlin.read("2026-10-25 03:30:00 after", NOW))).toBe("2026-10-25T02:30:00.000Z");
    // An explicit offset wins over the zone.
    expect(iso(berlin.read("2026-07-01T12:00:00Z explicit", NOW))).toBe("2026-07-01T12:00:00.000Z");
    const newYork = new TimestampReader({ formats: ["rfc3164"], timeZone: "America/New_York" });
    expect(iso(newYork.read("Dec  4 10:11:12 host app", NOW))).toBe("2026-12-04T15:11:12.000Z");
  });

  it("local is the shipper's own zone, as Date reads it", () => {
    const local = new TimestampReader({ formats: TIMESTAMP_FORMATS, timeZone: "local" });
    expect(local.read("2026-06-15 08:09:10.250 x", NOW)).toBe(new Date(2026, 5, 15, 8, 9, 10, 250).getTime());
  });

  it("reads only the formats it is given; none at all is off", () => {
    const goOnly = new TimestampReader({ formats: ["go"], timeZone: "UTC" });
    expect(goOnly.read("2026-12-04T10:11:12Z iso", NOW)).toBeUndefined();
    expect(goOnly.read("Dec  4 10:11:12 syslog", NOW)).toBeUndefined();
    expect(iso(goOnly.read("2026/12/04 10:11:12 go", NOW))).toBe("2026-12-04T10:11:12.000Z");
    expect(new TimestampReader({ formats: [], timeZone: "UTC" }).enabled).toBe(false);
  });

  it("lines of the same second reuse the conversion and still get their own fraction", () => {
    const berlin = new TimestampReader({ formats: TIMESTAMP_FORMATS, timeZone: "Europe/Berlin" });
    expect(iso(berlin.read("2026-12-04 10:11:12.001 a", NOW))).toBe("2026-12-04T09:11:12.001Z");
    expect(iso(berlin.read("2026-12-04 10:11:12.999 b", NOW))).toBe("2026-12-04T09:11:12.999Z");
    expect(iso(berlin.read("2026-12-04 10:11:12+00:00 c", NOW))).toBe("2026-12-04T10:11:12.000Z");
    expect(iso(berlin.read("2026-12-04 10:11:12 d", NOW))).toBe("2026-12-04T09:11:12.000Z");
  });

  it("isoString is toISOString, second after second and back again", () => {
    let state = 7;
    const times = [
      Date.UTC(1000, 0, 1),
      Date.UTC(1969, 11, 31, 23, 59, 59, 999),
      0,
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    ];
    for (let i = 0; i < 5_000; i++) {
      state = (state * 48271) % 2147483647;
      times.push(NOW - (state % 100_000_000), NOW - (state % 1_000));
    }
    for (const ms of times) expect(isoString(ms)).toBe(new Date(ms).toISOString());
  });

  it("readText is the time read, as toISOString writes it: a canonical timestamp is its own text, others converted", () => {
    const lines = [
      "2026-11-27T05:00:01.123Z INFO canonical",
      "[2026-11-27T05:00:01.123Z] in brackets",
      "<34>1 2026-11-27T05:00:01.123Z host app - - - RFC 5424",
      "2026-11-27T05:00:01.1234Z four digits of a fraction",
      "2026-11-27T05:00:01.12Z two digits",
      "2026-11-27T05:00:01Z no fraction",
      "2026-11-27T05:00:60.500Z a leap second",
      "2026-11-27t05:00:01.123Z lower-case t",
      "2026-11-27T07:00:01.123+02:00 an offset",
      "2026-11-27 05:00:01,123 log4j",
      "2026/11/27 05:00:01 go",
      "Nov 27 05:00:01 host syslog",
    ];
    for (const line of lines) {
      const ms = utc.read(line, NOW);
      expect(ms, line).toBeDefined();
      expect(utc.readText(line, NOW), line).toBe(new Date(ms as number).toISOString());
    }
    expect(utc.readText("2026-13-27T05:00:01.123Z month 13", NOW)).toBeUndefined();
    expect(utc.readText("no timestamp", NOW)).toBeUndefined();
  });
});
