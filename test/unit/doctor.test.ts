import { describe, expect, it } from "vitest";
import { judgeTopics, type TopicNeed } from "../../bin/doctor.ts";
import type { TopicAuthorizations } from "../../core/kafka/port.ts";

const needs: TopicNeed[] = [
  { topic: "p.logs", access: "read" },
  { topic: "p.dead-letter", access: "write" },
];
const topic = (name: string, fields: Partial<TopicAuthorizations["topics"][number]>) => ({
  topic: name,
  error: null,
  partitions: 6,
  leaderless: 0,
  operations: ["READ", "WRITE", "DESCRIBE"],
  ...fields,
});

describe("doctor's verdict on topics, from the broker's Metadata v8 answer", () => {
  it("ok when the topic is there with leaders and the component's operation is allowed", () => {
    const checks = judgeTopics("indexer", needs, {
      clusterId: "c",
      cluster: [],
      topics: [topic("p.logs", {}), topic("p.dead-letter", {})],
    });
    expect(checks.map((c) => c.status)).toEqual(["ok", "ok"]);
    expect(checks[0]?.detail).toBe("p.logs: 6 partitions with leaders; READ allowed");
  });

  it("a missing topic is a warning when the principal may create it, a failure naming the fix when not", () => {
    const answer = (cluster: string[]) =>
      judgeTopics("indexer", needs, {
        clusterId: "c",
        cluster,
        topics: [
          topic("p.logs", { error: "UNKNOWN_TOPIC_OR_PARTITION", operations: null }),
          topic("p.dead-letter", {}),
        ],
      });
    expect(answer(["CREATE"])[0]).toMatchObject({ status: "WARN" });
    expect(answer([])[0]).toMatchObject({ status: "FAIL" });
    expect(answer([])[0]?.detail).toContain("kafka-topics.sh --create --topic p.logs");
  });

  it("denied, leaderless or missing the operation: FAIL with what to grant", () => {
    const checks = judgeTopics("indexer", [...needs, { topic: "p.spans", access: "read" }], {
      clusterId: "c",
      cluster: ["CREATE"],
      topics: [
        topic("p.logs", { error: "TOPIC_AUTHORIZATION_FAILED", operations: null }),
        topic("p.dead-letter", { operations: ["READ", "DESCRIBE"] }),
        topic("p.spans", { leaderless: 2 }),
      ],
    });
    expect(checks.map((c) => c.status)).toEqual(["FAIL", "FAIL", "FAIL"]);
    expect(checks[0]?.detail).toContain("kafka-acls.sh --add --operation READ");
    expect(checks[1]?.detail).toContain("WRITE not allowed (allowed: READ, DESCRIBE)");
    expect(checks[2]?.detail).toContain("2 of 6 partitions have no leader");
  });

  it("a broker that cannot say (older than Metadata v8, or not computed) gives ?, never ok", () => {
    expect(judgeTopics("agent", needs, undefined).map((c) => c.status)).toEqual(["?", "?"]);
    const notComputed = judgeTopics("agent", needs, {
      clusterId: "c",
      cluster: null,
      topics: [topic("p.logs", { operations: null }), topic("p.dead-letter", { operations: null })],
    });
    expect(notComputed.map((c) => c.status)).toEqual(["?", "?"]);
  });
});
