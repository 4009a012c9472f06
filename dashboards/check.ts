import type { Client } from "@elastic/elasticsearch";
import { toDocument } from "../core/ecs/document.ts";
import { ECS_MAPPINGS, type StreamKind } from "../core/ecs/mappings.ts";
import { DATA_VIEWS, type SavedObject } from "./objects.ts";
import type { RuleDefinition } from "./rules.ts";
import { seedScenarios } from "./seed.ts";

export interface Problem {
  object: string;
  message: string;
}

type FieldType = string;
type Need = "exists" | "searchable" | "keyword" | "numeric" | "date" | "aggregatable";

/** Every mapped field of the index templates, with its type (multi-fields included: event.reason.keyword). */
export function mappedFields(): Map<string, { type: FieldType; indexed: boolean; docValues: boolean }> {
  const fields = new Map<string, { type: FieldType; indexed: boolean; docValues: boolean }>();
  const walk = (properties: Record<string, unknown>, prefix: string) => {
    for (const [name, raw] of Object.entries(properties)) {
      const definition = raw as {
        type?: string;
        properties?: Record<string, unknown>;
        fields?: Record<string, unknown>;
        index?: boolean;
        doc_values?: boolean;
      };
      const path = `${prefix}${name}`;
      if (definition.properties) walk(definition.properties, `${path}.`);
      if (definition.type) {
        fields.set(path, {
          type: definition.type,
          indexed: definition.index !== false,
          docValues: definition.doc_values !== false,
        });
      }
      if (definition.fields) walk(definition.fields, `${path}.`);
    }
  };
  walk(ECS_MAPPINGS.properties as unknown as Record<string, unknown>, "");
  return fields;
}

const NUMERIC = new Set([
  "long",
  "integer",
  "short",
  "byte",
  "double",
  "float",
  "half_float",
  "scaled_float",
]);
const KIND_OF_VIEW: Record<string, StreamKind> = {
  [DATA_VIEWS.lifecycle.id]: "lifecycle",
  [DATA_VIEWS.logs.id]: "logs",
  [DATA_VIEWS.traces.id]: "spans",
  [DATA_VIEWS.metrics.id]: "metrics",
};

/** The templates do not change while a check runs: walked once. */
const TEMPLATE_FIELDS = mappedFields();

function checkField(field: string, need: Need, object: string, problems: Problem[]): void {
  if (field === "___records___") return;
  const mapped = TEMPLATE_FIELDS.get(field);
  // A flattened field's keys are searchable as keywords: lifeline.fields.user.id.
  const flattenedParent = [...TEMPLATE_FIELDS].find(
    ([path, definition]) => definition.type === "flattened" && field.startsWith(`${path}.`),
  );
  if (!mapped && flattenedParent) return;
  if (!mapped) {
    problems.push({
      object,
      message: `field "${field}" is not in the index templates (dynamic: false: it is neither searchable nor aggregatable)`,
    });
    return;
  }
  const wrong = (what: string) =>
    problems.push({
      object,
      message: `field "${field}" is ${mapped.type}${mapped.indexed ? "" : " (not indexed)"}; ${what}`,
    });
  if (need === "searchable" && !mapped.indexed) wrong("a query cannot search it");
  if (need === "keyword" && !["keyword", "constant_keyword"].includes(mapped.type))
    wrong("terms and controls need a keyword");
  if (need === "numeric" && !NUMERIC.has(mapped.type)) wrong("this metric needs a number");
  if (need === "date" && mapped.type !== "date") wrong("a date histogram needs a date");
  if (need === "aggregatable" && (mapped.type === "text" || !mapped.docValues))
    wrong("it cannot be aggregated");
}

/** Field names a Lucene query string names (`a.b:value`, `a.b:(x OR y)`). */
export function luceneFields(query: string): string[] {
  return [...query.matchAll(/(?:^|[\s(])([@A-Za-z_][\w.@]*):/g)].map((match) => match[1] as string);
}

/** Field names a Query DSL object names (term, terms, range, match, exists). */
function dslFields(query: unknown): string[] {
  if (!query || typeof query !== "object") return [];
  const out: string[] = [];
  for (const [key, value] of Object.entries(query as Record<string, unknown>)) {
    if (
      ["term", "terms", "range", "match", "match_phrase", "prefix", "wildcard"].includes(key) &&
      value &&
      typeof value === "object"
    ) {
      out.push(...Object.keys(value as Record<string, unknown>));
    } else if (key === "exists") {
      out.push(String((value as { field?: string }).field));
    } else out.push(...dslFields(value));
  }
  return out;
}

interface LensLayer {
  view: string;
  query: string;
  columns: Record<string, { operationType: string; sourceField: string; params?: Record<string, unknown> }>;
}

function lensLayers(object: SavedObject): LensLayer[] {
  const state = object.attributes.state as {
    query: { query: string };
    datasourceStates: { formBased: { layers: Record<string, { columns: LensLayer["columns"] }> } };
  };
  return Object.entries(state.datasourceStates.formBased.layers).map(([layerId, layer]) => ({
    view: object.references.find((r) => r.name === `indexpattern-datasource-layer-${layerId}`)?.id ?? "",
    query: state.query.query,
    columns: layer.columns,
  }));
}

const NEED_OF_OPERATION: Record<string, Need> = {
  date_histogram: "date",
  terms: "keyword",
  max: "numeric",
  min: "numeric",
  sum: "numeric",
  average: "numeric",
  percentile: "numeric",
  range: "numeric",
  unique_count: "aggregatable",
  count: "exists",
};

/** What a machine can prove without Kibana: structure, references, fields and their types. */
export function checkStructure(text: string): { objects: SavedObject[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const objects: SavedObject[] = [];
  text.split("\n").forEach((line, index) => {
    if (line.trim() === "") return;
    try {
      const object = JSON.parse(line) as SavedObject;
      if (
        typeof object.id !== "string" ||
        typeof object.type !== "string" ||
        typeof object.attributes !== "object"
      ) {
        problems.push({
          object: `line ${index + 1}`,
          message: "not a saved object (needs id, type, attributes)",
        });
      } else objects.push({ ...object, references: object.references ?? [] });
    } catch (error) {
      problems.push({ object: `line ${index + 1}`, message: `not JSON: ${(error as Error).message}` });
    }
  });
  const byKey = new Map(objects.map((object) => [`${object.type}:${object.id}`, object]));
  const seen = new Set<string>();
  for (const object of objects) {
    const name = `${object.type} ${object.id}`;
    if (seen.has(object.id)) problems.push({ object: name, message: "duplicate id" });
    seen.add(object.id);
    for (const reference of object.references) {
      if (!byKey.has(`${reference.type}:${reference.id}`)) {
        problems.push({
          object: name,
          message: `reference "${reference.name}" points to ${reference.type} ${reference.id}, which is not in the file`,
        });
      }
    }
    const referenced = (refName: string) => {
      if (!object.references.some((r) => r.name === refName)) {
        problems.push({ object: name, message: `uses reference "${refName}", which it does not declare` });
      }
    };
    if (object.type === "index-pattern" && object.attributes.timeFieldName) {
      checkField(String(object.attributes.timeFieldName), "date", name, problems);
    }
    if (object.type === "search") {
      const source = JSON.parse(
        (object.attributes.kibanaSavedObjectMeta as { searchSourceJSON: string }).searchSourceJSON,
      ) as { query: { query: string; language: string }; indexRefName?: string };
      if (source.indexRefName) referenced(source.indexRefName);
      if (source.query.language !== "lucene" && source.query.query) {
        problems.push({ object: name, message: "queries must be Lucene, so that check can run them" });
      }
      for (const field of luceneFields(source.query.query)) checkField(field, "searchable", name, problems);
      for (const field of object.attributes.columns as string[]) checkField(field, "exists", name, problems);
    }
    if (object.type === "lens") {
      for (const layer of lensLayers(object)) {
        if (!layer.view) problems.push({ object: name, message: "a layer has no data view reference" });
        for (const field of luceneFields(layer.query)) checkField(field, "searchable", name, problems);
        for (const column of Object.values(layer.columns)) {
          checkField(column.sourceField, NEED_OF_OPERATION[column.operationType] ?? "exists", name, problems);
        }
      }
    }
    if (object.type === "dashboard") {
      for (const panel of JSON.parse(String(object.attributes.panelsJSON)) as Array<{
        panelIndex: string;
        panelRefName?: string;
      }>) {
        if (panel.panelRefName) referenced(`${panel.panelIndex}:${panel.panelRefName}`);
      }
      const controlGroup = object.attributes.controlGroupInput as { panelsJSON: string } | undefined;
      const controls = JSON.parse(controlGroup?.panelsJSON ?? "{}") as Record<
        string,
        { explicitInput: { fieldName: string } }
      >;
      for (const [id, control] of Object.entries(controls)) {
        referenced(`controlGroup_${id}:optionsListDataView`);
        checkField(control.explicitInput.fieldName, "keyword", name, problems);
      }
    }
  }
  return { objects, problems };
}

export function checkRuleFields(rules: RuleDefinition[]): Problem[] {
  const problems: Problem[] = [];
  for (const rule of rules) {
    const name = `rule ${rule.id}`;
    for (const field of dslFields(JSON.parse(rule.body.params.esQuery)))
      checkField(field, "searchable", name, problems);
    if (rule.body.params.termField) checkField(rule.body.params.termField, "keyword", name, problems);
    checkField(rule.body.params.timeField, "date", name, problems);
  }
  return problems;
}

export interface RunReport {
  problems: Problem[];
  /** One line per query run: what it is, and what Elasticsearch answered. */
  lines: string[];
}

/**
 * Seeds a "healthy" and a "failing" set of lifecycle events, made by the indexer's own document code, into indices
 * of the check's own (lifeline-check-<run>-<scenario>-<kind>, with the indexer's mappings): outside every index
 * pattern the data views and alert rules read, so a check against a production cluster shows nothing and fires
 * nothing there. Then runs every saved search, every visualization (its query and its aggregations) and every rule
 * against them: visualizations must match seeded documents, rules must fire on the failing set and stay quiet on
 * the healthy one. Deletes its indices and template at the end, whatever happened.
 */
export async function checkAgainstElasticsearch(
  client: Client,
  objects: SavedObject[],
  rules: RuleDefinition[],
  progress: (line: string) => void,
): Promise<RunReport> {
  const run = `lifeline-check-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  await client.indices.putIndexTemplate({
    name: run,
    index_patterns: [`${run}-*`],
    priority: 500,
    template: { mappings: ECS_MAPPINGS as never, settings: { number_of_replicas: 0 } },
    _meta: { managed_by: "lifeline", purpose: "dashboards check, deleted when it ends" },
  });
  try {
    return await checkIn(client, run, objects, rules, progress);
  } finally {
    await client.indices.delete({ index: `${run}-*`, ignore_unavailable: true, allow_no_indices: true });
    await client.indices.deleteIndexTemplate({ name: run });
    progress(`deleted the check's indices ${run}-* and its template`);
  }
}

async function checkIn(
  client: Client,
  run: string,
  objects: SavedObject[],
  rules: RuleDefinition[],
  progress: (line: string) => void,
): Promise<RunReport> {
  const problems: Problem[] = [];
  const lines: string[] = [];
  const now = Date.now();
  const layouts = {} as Record<"healthy" | "failing", { targets: Record<StreamKind, string> }>;
  const scenarios = seedScenarios(now);
  for (const scenario of ["healthy", "failing"] as const) {
    const documents = scenarios[scenario];
    const layout = {
      targets: {
        logs: `${run}-${scenario}-logs`,
        lifecycle: `${run}-${scenario}-lifecycle`,
        spans: `${run}-${scenario}-traces`,
        metrics: `${run}-${scenario}-metrics`,
      },
    };
    layouts[scenario] = layout;
    const operations: unknown[] = [];
    documents.forEach(([kind, record], index) => {
      const { id, document } = toDocument(
        kind,
        JSON.stringify(record),
        { topic: `check.${kind}`, partition: 0, offset: String(index), index: 0 },
        new Date(now),
      );
      operations.push({ create: { _index: layout.targets[kind], _id: id } }, document);
    });
    const response = await client.bulk({ operations, refresh: true });
    const failed = response.items.filter((item) => item.create?.error);
    if (failed.length > 0) throw new Error(`seeding failed: ${JSON.stringify(failed[0]?.create?.error)}`);
    progress(`seeded ${documents.length} documents into ${run}-${scenario}-*`);
  }
  const targets = (view: string) =>
    [layouts.healthy, layouts.failing].map((layout) => layout.targets[KIND_OF_VIEW[view] ?? "lifecycle"]);
  const queryOf = (query: string) => (query ? { query_string: { query } } : { match_all: {} });

  for (const object of objects) {
    const name = `${object.type} ${object.id}`;
    try {
      if (object.type === "search") {
        const source = JSON.parse(
          (object.attributes.kibanaSavedObjectMeta as { searchSourceJSON: string }).searchSourceJSON,
        ) as { query: { query: string } };
        const view = object.references[0]?.id ?? "";
        const found = await client.search({
          index: targets(view),
          query: queryOf(source.query.query),
          size: 0,
          track_total_hits: true,
        });
        const hits = (found.hits.total as { value: number }).value;
        lines.push(`${name}: ${hits} hits`);
        if (hits === 0) problems.push({ object: name, message: "matches none of the seeded documents" });
      }
      if (object.type === "lens") {
        for (const layer of lensLayers(object)) {
          const aggs = aggregationsOf(layer);
          const found = await client.search({
            index: targets(layer.view),
            query: queryOf(layer.query),
            size: 0,
            aggs: aggs as never,
            track_total_hits: true,
          });
          const hits = (found.hits.total as { value: number }).value;
          lines.push(`${name}: ${hits} hits, aggregations ${Object.keys(aggs).join(", ") || "none"} ok`);
          if (hits === 0)
            problems.push({ object: name, message: "its query matches none of the seeded documents" });
        }
      }
    } catch (error) {
      problems.push({
        object: name,
        message: `Elasticsearch refused its query: ${(error as Error).message}`,
      });
    }
  }

  for (const rule of rules) {
    const name = `rule ${rule.id}`;
    try {
      const fires = {
        healthy: await ruleFires(client, rule, layouts.healthy.targets.lifecycle, now),
        failing: await ruleFires(client, rule, layouts.failing.targets.lifecycle, now),
      };
      lines.push(`${name}: failing → ${fires.failing.detail}; healthy → ${fires.healthy.detail}`);
      if (!fires.failing.fires)
        problems.push({
          object: name,
          message: `does not fire on the failure case (${fires.failing.detail})`,
        });
      if (fires.healthy.fires)
        problems.push({ object: name, message: `fires on the success case (${fires.healthy.detail})` });
    } catch (error) {
      problems.push({
        object: name,
        message: `Elasticsearch refused its query: ${(error as Error).message}`,
      });
    }
  }
  return { problems, lines };
}

/** The aggregations a Lens layer asks for, nested as Lens does (buckets outside, metrics inside). */
function aggregationsOf(layer: LensLayer): Record<string, unknown> {
  const metrics: Record<string, unknown> = {};
  const buckets: Array<[string, Record<string, unknown>]> = [];
  for (const [id, column] of Object.entries(layer.columns)) {
    const field = column.sourceField;
    switch (column.operationType) {
      case "date_histogram":
        buckets.push([id, { date_histogram: { field, fixed_interval: "1m" } }]);
        break;
      case "terms":
        buckets.push([id, { terms: { field, size: Number(column.params?.size ?? 10) } }]);
        break;
      case "range":
        buckets.push([id, { histogram: { field, interval: 100_000_000 } }]);
        break;
      case "max":
        metrics[id] = { max: { field } };
        break;
      case "sum":
        metrics[id] = { sum: { field } };
        break;
      case "percentile":
        metrics[id] = { percentiles: { field, percents: [Number(column.params?.percentile ?? 95)] } };
        break;
      case "unique_count":
        metrics[id] = { cardinality: { field } };
        break;
    }
  }
  let inner: Record<string, unknown> = metrics;
  for (const [id, bucket] of buckets.reverse())
    inner = { [id]: { ...bucket, ...(Object.keys(inner).length ? { aggs: inner } : {}) } };
  return inner;
}

/** The `.es-query` rule's semantics: documents in the time window matching the query, compared with the threshold. */
async function ruleFires(
  client: Client,
  rule: RuleDefinition,
  index: string,
  now: number,
): Promise<{ fires: boolean; detail: string }> {
  const params = rule.body.params;
  const query = (JSON.parse(params.esQuery) as { query: Record<string, unknown> }).query;
  const window = {
    range: {
      [params.timeField]: {
        gte: new Date(now - params.timeWindowSize * 60_000).toISOString(),
        lte: new Date(now).toISOString(),
      },
    },
  };
  const filtered = { bool: { filter: [query, window] } };
  const compare = (value: number) =>
    params.thresholdComparator === ">"
      ? value > (params.threshold[0] as number)
      : value < (params.threshold[0] as number);
  if (params.groupBy === "top" && params.termField) {
    const found = await client.search({
      index,
      query: filtered,
      size: 0,
      aggs: { groups: { terms: { field: params.termField, size: params.termSize ?? 100 } } },
    });
    const groups = (found.aggregations as { groups: { buckets: Array<{ key: string; doc_count: number }> } })
      .groups.buckets;
    const firing = groups.filter((group) => compare(group.doc_count));
    return {
      fires: firing.length > 0,
      detail:
        groups.map((g) => `${g.key}=${g.doc_count}`).join(" ") +
        (firing.length ? ` → alerts for ${firing.map((g) => g.key).join(", ")}` : " → no alert"),
    };
  }
  const found = await client.count({ index, query: filtered });
  return {
    fires: compare(found.count),
    detail: `${found.count} matching → ${compare(found.count) ? "alert" : "no alert"}`,
  };
}
