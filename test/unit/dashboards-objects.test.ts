import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkRuleFields, checkStructure, luceneFields } from "../../dashboards/check.ts";
import { DEFAULT_OBJECTS_FILE } from "../../dashboards/main.ts";
import { savedObjects, toNdjson } from "../../dashboards/objects.ts";
import { alertingRules } from "../../dashboards/rules.ts";

describe("dashboards as code", () => {
  it("the shipped NDJSON is what the code generates (run `lifeline dashboards export` after a change)", () => {
    expect(readFileSync(DEFAULT_OBJECTS_FILE, "utf8")).toBe(toNdjson(savedObjects()));
  });

  it("structure, references and fields hold; rules name mapped fields", () => {
    const { objects, problems } = checkStructure(toNdjson(savedObjects()));
    expect(problems).toEqual([]);
    expect(objects.filter((o) => o.type === "dashboard").map((o) => o.id)).toEqual([
      "lifeline-shutdown-timeline",
      "lifeline-rollout",
      "lifeline-service-health",
    ]);
    expect(checkRuleFields(alertingRules())).toEqual([]);
  });

  it("finds the fields a Lucene query names", () => {
    expect(
      luceneFields('event.action:"x" AND lifeline.action:(stop OR restart) NOT @timestamp:[a TO b]'),
    ).toEqual(["event.action", "lifeline.action", "@timestamp"]);
  });

  it("a broken line is reported with its number, the rest still checked", () => {
    const { problems } = checkStructure(
      `{"id":"a","type":"index-pattern","attributes":{"title":"x"}}\n{not json\n`,
    );
    expect(problems).toEqual([{ object: "line 2", message: expect.stringMatching(/^not JSON/) }]);
  });
});
