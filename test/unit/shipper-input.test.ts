import { describe, expect, it } from "vitest";
import { inputSchema } from "../../shipper/config.ts";
import { compileInput, lineFields, lineFilter } from "../../shipper/input.ts";

describe("a shipper input, compiled", () => {
  it("keeps every record when it has no line rules", () => {
    expect(lineFilter([], [])).toBeUndefined();
  });

  it("names the rule that leaves a record out: include first, then exclude", () => {
    const keep = lineFilter(["ERROR|WARN"], ["healthcheck"]);
    expect(keep?.("ERROR disk full")).toBeUndefined();
    expect(keep?.("INFO started")).toBe("include");
    expect(keep?.("WARN healthcheck slow")).toBe("exclude");
    expect(lineFilter([], ["^DEBUG"])?.("DEBUG x")).toBe("exclude");
    expect(lineFilter([], ["^DEBUG"])?.("INFO DEBUG")).toBeUndefined();
  });

  it("goes to the logs or the lifecycle topic by its kind, under the prefix", () => {
    const logs = compileInput(inputSchema.parse({ name: "api", paths: ["/x/*.log"] }), "acme");
    const journal = compileInput(
      inputSchema.parse({ name: "journal", paths: ["/j/*.ndjson"], kind: "lifecycle" }),
      "acme",
    );
    expect(logs.topic).toBe("acme.logs");
    expect(journal.topic).toBe("acme.lifecycle");
    expect(logs.matcher).toEqual({ include: ["/x/*.log"], exclude: [] });
  });

  it("dates a plain line by its leading timestamp, in the input's time zone, and only when formats are on", () => {
    const config = { name: "api", paths: ["/x/*.log"], timestamp: { timeZone: "UTC" } };
    const input = compileInput(inputSchema.parse(config), "acme");
    const fields = lineFields(input, "2026-12-06 18:00:01,250 INFO started");
    expect(fields.format).toBe("plain");
    expect(fields.timestamp).toBe("2026-12-06T18:00:01.250Z");
    const off = compileInput(inputSchema.parse({ ...config, timestamp: { formats: [] } }), "acme");
    expect(lineFields(off, "2026-12-06 18:00:01,250 INFO started").timestamp).toBeUndefined();
  });
});
