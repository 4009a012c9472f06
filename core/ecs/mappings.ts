/**
 * The Elasticsearch side of Lifeline's documents, one place for all: the indexer creates its templates from these
 * mappings, the dashboards check their fields against them, documents are fitted to them (document.ts).
 */

/** Every flattened field is mapped with this ignore_above: 4 bytes a character stays under Lucene's limit. */
export const FLATTENED_IGNORE_ABOVE = 8_191;
/** Elasticsearch's default depth_limit for flattened fields. */
export const FLATTENED_DEPTH_LIMIT = 20;

export type StreamKind = "logs" | "lifecycle" | "spans" | "metrics";
export const STREAM_KINDS: readonly StreamKind[] = ["logs", "lifecycle", "spans", "metrics"];

const keyword = { type: "keyword", ignore_above: 1024 } as const;
/**
 * A document's own keys and values (parsed log fields, span attributes, labels), searchable as keywords. A value
 * over ignore_above is kept in _source and not indexed: Lucene refuses a term over 32,766 bytes, and with it the
 * whole document. Deeper objects than depth_limit are folded into text by the indexer (documents.ts), flagged.
 */
const flattened = {
  type: "flattened",
  ignore_above: FLATTENED_IGNORE_ABOVE,
  depth_limit: FLATTENED_DEPTH_LIMIT,
} as const;

/**
 * ECS field mappings shared by every Lifeline index. `dynamic: false` keeps unknown fields in _source without
 * mapping them (no mapping explosion); fields parsed from a JSON log line go under `lifeline.fields`, one
 * flattened field, searchable as keywords.
 */
export const ECS_MAPPINGS = {
  dynamic: false,
  properties: {
    "@timestamp": { type: "date" },
    message: { type: "text" },
    labels: flattened,
    tags: keyword,
    event: {
      properties: {
        id: keyword,
        kind: keyword,
        provider: keyword,
        category: keyword,
        type: keyword,
        action: keyword,
        outcome: keyword,
        dataset: keyword,
        reason: { type: "text", fields: { keyword } },
        duration: { type: "long" },
        sequence: { type: "long" },
        created: { type: "date" },
        ingested: { type: "date" },
        original: { type: "keyword", index: false, doc_values: false },
      },
    },
    log: {
      properties: {
        level: keyword,
        offset: { type: "long" },
        flags: keyword,
        file: { properties: { path: keyword } },
      },
    },
    host: { properties: { name: keyword, hostname: keyword } },
    service: {
      properties: {
        name: keyword,
        environment: keyword,
        version: keyword,
        node: { properties: { name: keyword } },
      },
    },
    trace: { properties: { id: keyword } },
    span: {
      properties: {
        id: keyword,
        name: keyword,
        kind: keyword,
      },
    },
    parent: { properties: { id: keyword } },
    /**
     * An OTLP metric data point (collector/otlp.ts convertMetrics). Histograms keep their explicit buckets as
     * parallel arrays (bounds, counts) with count, sum, min and max: Elasticsearch's histogram field type is an
     * x-pack feature not every cluster has.
     */
    metric: {
      properties: {
        name: keyword,
        unit: keyword,
        description: { type: "keyword", ignore_above: 1024 },
        type: keyword,
        temporality: keyword,
        monotonic: { type: "boolean" },
        value: { type: "double" },
        count: { type: "long" },
        sum: { type: "double" },
        min: { type: "double" },
        max: { type: "double" },
        start: { type: "date" },
        buckets: { properties: { bounds: { type: "double" }, counts: { type: "long" } } },
        quantiles: { properties: { quantile: { type: "double" }, value: { type: "double" } } },
      },
    },
    transaction: { properties: { id: keyword } },
    error: {
      properties: {
        message: { type: "text" },
        type: keyword,
        stack_trace: { type: "keyword", index: false, doc_values: false },
      },
    },
    process: {
      properties: {
        pid: { type: "long" },
        exit_code: { type: "long" },
        name: keyword,
        signal: keyword,
      },
    },
    lifeline: {
      properties: {
        schema_version: { type: "long" },
        command_id: keyword,
        rollout_id: keyword,
        wave: { type: "long" },
        /** The command's action (stop, start, restart, status) on every event of that command. */
        action: keyword,
        issuer: keyword,
        /** What an outcome rests on (core/outcome.ts), in the reporting tool's words. */
        evidence: { type: "keyword", ignore_above: 4096 },
        /** step.completed: the step's final status, and the step (host, service, action) it is about. */
        step_status: keyword,
        step: { properties: { host: keyword, service: keyword, action: keyword } },
        /** A stop that needed escalation (SIGKILL, taskkill). */
        escalated: { type: "boolean" },
        /** A failure the agent verified may be tried again; a controller's retry: its attempt and backoff. */
        retryable: { type: "boolean" },
        attempt: { type: "long" },
        backoff_ms: { type: "long" },
        /** What a message that did not verify claimed to be (never a real command's fields). */
        claimed: flattened,
        format: keyword,
        original_timestamp: keyword,
        /** What the indexer changed so that the document could be stored (document.ts DegradeFlag). */
        flags: keyword,
        fields: flattened,
        resource: flattened,
        attributes: flattened,
      },
    },
  },
} as const;
