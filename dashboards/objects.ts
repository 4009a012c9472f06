/**
 * The Kibana saved objects Lifeline ships, as code: `lifeline dashboards export` writes them to
 * dashboards/lifeline.ndjson (the file `install` imports and `check` validates). Queries are Lucene, which
 * Elasticsearch's query_string runs exactly as Kibana does, so `check` can run every one of them.
 */

export interface SavedObject {
  id: string;
  type: "index-pattern" | "search" | "lens" | "dashboard" | "visualization";
  attributes: Record<string, unknown>;
  references: Array<{ id: string; name: string; type: string }>;
  coreMigrationVersion?: string;
}

export const DATA_VIEWS = {
  lifecycle: {
    id: "lifeline-lifecycle",
    title: "logs-lifeline.lifecycle-*,lifeline-lifecycle-*",
    name: "Lifeline lifecycle events",
  },
  logs: { id: "lifeline-logs", title: "logs-lifeline.logs-*,lifeline-logs-*", name: "Lifeline service logs" },
  traces: { id: "lifeline-traces", title: "traces-lifeline-*,lifeline-traces-*", name: "Lifeline traces" },
  metrics: {
    id: "lifeline-metrics",
    title: "metrics-lifeline-*,lifeline-metrics-*",
    name: "Lifeline service metrics (OTLP)",
  },
} as const;
type DataViewKey = keyof typeof DATA_VIEWS;

/** Lucene queries the objects use, named so that docs, dashboards and rules say the same thing. */
export const QUERIES = {
  stopCompleted: 'event.action:"stop.completed"',
  escalated: 'event.action:"stop.escalated"',
  failedStops:
    'event.action:"command.completed" AND lifeline.action:(stop OR restart) AND event.outcome:(failure OR unknown)',
  failedOrUnknown: 'event.action:"command.completed" AND event.outcome:(failure OR unknown)',
  restarts: 'event.action:"command.completed" AND lifeline.action:restart',
  /** HTTP server request counts as OTel SDKs report them with delta temporality (cumulative sums are not rates). */
  requests: 'metric.name:"http.server.request.count" AND metric.temporality:delta',
  serverErrors:
    'metric.name:"http.server.request.count" AND metric.temporality:delta AND lifeline.attributes.http.response.status_code:[500 TO 599]',
  restartCommands: 'event.action:"command.completed" AND lifeline.action:(restart OR start OR stop)',
  commandsCompleted: 'event.action:"command.completed"',
  /** Each rollout step's one final outcome (core/outcome.ts): status, escalation, evidence. */
  stepsCompleted: 'event.action:"step.completed"',
  controllerEvents: 'event.provider:"lifeline-controller"',
};

/** Kibana's duration field format, reading nanoseconds, written for people. */
export const DURATION_FORMAT = {
  "event.duration": {
    id: "duration",
    params: { inputFormat: "nanoseconds", outputFormat: "humanizePrecise", outputPrecision: 2 },
  },
};

function dataView(key: DataViewKey): SavedObject {
  const view = DATA_VIEWS[key];
  return {
    id: view.id,
    type: "index-pattern",
    attributes: {
      title: view.title,
      name: view.name,
      timeFieldName: "@timestamp",
      // event.duration is in nanoseconds (ECS): shown as "2.05 seconds", not 2047000000.
      ...(key === "logs" || key === "metrics" ? {} : { fieldFormatMap: JSON.stringify(DURATION_FORMAT) }),
    },
    references: [],
  };
}

function search(options: {
  id: string;
  title: string;
  description: string;
  view: DataViewKey;
  query: string;
  columns: string[];
}): SavedObject {
  return {
    id: options.id,
    type: "search",
    attributes: {
      title: options.title,
      description: options.description,
      columns: options.columns,
      sort: [["@timestamp", "desc"]],
      kibanaSavedObjectMeta: {
        searchSourceJSON: JSON.stringify({
          query: { language: "lucene", query: options.query },
          filter: [],
          indexRefName: "kibanaSavedObjectMeta.searchSourceJSON.index",
        }),
      },
    },
    references: [
      {
        id: DATA_VIEWS[options.view].id,
        name: "kibanaSavedObjectMeta.searchSourceJSON.index",
        type: "index-pattern",
      },
    ],
  };
}

/** A Lens column: what check needs (operation, field) plus what Kibana needs to draw it. */
export interface LensColumn {
  label: string;
  operationType:
    | "date_histogram"
    | "terms"
    | "count"
    | "max"
    | "sum"
    | "percentile"
    | "range"
    | "unique_count";
  sourceField: string;
  params?: Record<string, unknown>;
}

const DATA_TYPE: Record<LensColumn["operationType"], string> = {
  date_histogram: "date",
  terms: "string",
  count: "number",
  max: "number",
  sum: "number",
  percentile: "number",
  range: "number",
  unique_count: "number",
};
const BUCKETED = new Set(["date_histogram", "terms", "range"]);

function lens(options: {
  id: string;
  title: string;
  view: DataViewKey;
  kind: "bar_stacked" | "bar_horizontal" | "line" | "datatable" | "metric";
  query?: string;
  columns: Record<string, LensColumn>;
  x?: string;
  y?: string[];
  breakdown?: string;
}): SavedObject {
  const layerId = `${options.id}-layer`;
  const columns = Object.fromEntries(
    Object.entries(options.columns).map(([id, column]) => [
      id,
      {
        label: column.label,
        customLabel: true,
        dataType: DATA_TYPE[column.operationType],
        operationType: column.operationType,
        sourceField: column.sourceField,
        isBucketed: BUCKETED.has(column.operationType),
        scale:
          column.operationType === "date_histogram"
            ? "interval"
            : BUCKETED.has(column.operationType)
              ? "ordinal"
              : "ratio",
        params: column.params ?? {},
      },
    ]),
  );
  const ids = Object.keys(options.columns);
  const visualization =
    options.kind === "datatable"
      ? { layerId, layerType: "data", columns: ids.map((columnId) => ({ columnId })) }
      : options.kind === "metric"
        ? { layerId, layerType: "data", metricAccessor: options.y?.[0] }
        : {
            preferredSeriesType: options.kind,
            legend: { isVisible: true, position: "right" },
            valueLabels: "hide",
            layers: [
              {
                layerId,
                layerType: "data",
                seriesType: options.kind,
                xAccessor: options.x,
                accessors: options.y ?? [],
                ...(options.breakdown ? { splitAccessor: options.breakdown } : {}),
              },
            ],
          };
  return {
    id: options.id,
    type: "lens",
    attributes: {
      title: options.title,
      description: "",
      visualizationType:
        options.kind === "datatable" ? "lnsDatatable" : options.kind === "metric" ? "lnsMetric" : "lnsXY",
      state: {
        visualization,
        query: { language: "lucene", query: options.query ?? "" },
        filters: [],
        datasourceStates: {
          formBased: { layers: { [layerId]: { columns, columnOrder: ids, incompleteColumns: {} } } },
        },
      },
    },
    references: [
      {
        id: DATA_VIEWS[options.view].id,
        name: `indexpattern-datasource-layer-${layerId}`,
        type: "index-pattern",
      },
    ],
  };
}

const time: LensColumn = {
  label: "@timestamp",
  operationType: "date_histogram",
  sourceField: "@timestamp",
  params: { interval: "auto", includeEmptyRows: true },
};
const count: LensColumn = { label: "Events", operationType: "count", sourceField: "___records___" };
const terms = (field: string, label: string, size = 10): LensColumn => ({
  label,
  operationType: "terms",
  sourceField: field,
  params: { size, orderBy: { type: "alphabetical" }, orderDirection: "asc" },
});

function markdown(id: string, title: string, text: string): SavedObject {
  return {
    id,
    type: "visualization",
    attributes: {
      title,
      visState: JSON.stringify({
        title,
        type: "markdown",
        params: { markdown: text, fontSize: 12 },
        aggs: [],
      }),
      uiStateJSON: "{}",
      description: "",
      kibanaSavedObjectMeta: {
        searchSourceJSON: JSON.stringify({ query: { language: "lucene", query: "" }, filter: [] }),
      },
    },
    references: [],
  };
}

interface Panel {
  object: SavedObject;
  w: number;
  h: number;
}

/** A dashboard of panels by reference, laid out left to right, and options-list controls. */
function dashboard(options: {
  id: string;
  title: string;
  description: string;
  panels: Panel[];
  controls: Array<{ field: string; title: string; view: DataViewKey }>;
}): SavedObject {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  const panels = options.panels.map((panel, index) => {
    if (x + panel.w > 48) [x, y, rowHeight] = [0, y + rowHeight, 0];
    const gridData = { x, y, w: panel.w, h: panel.h, i: String(index) };
    x += panel.w;
    rowHeight = Math.max(rowHeight, panel.h);
    return {
      type: panel.object.type,
      panelIndex: String(index),
      gridData,
      embeddableConfig: {},
      panelRefName: `panel_${index}`,
    };
  });
  const controls = Object.fromEntries(
    options.controls.map((control, order) => [
      `control_${order}`,
      {
        order,
        width: "medium",
        grow: true,
        type: "optionsListControl",
        explicitInput: {
          id: `control_${order}`,
          title: control.title,
          fieldName: control.field,
          enhancements: {},
        },
      },
    ]),
  );
  return {
    id: options.id,
    type: "dashboard",
    attributes: {
      title: options.title,
      description: options.description,
      timeRestore: true,
      timeFrom: "now-24h",
      timeTo: "now",
      refreshInterval: { pause: false, value: 30_000 },
      optionsJSON: JSON.stringify({ useMargins: true, syncCursor: true, hidePanelTitles: false }),
      panelsJSON: JSON.stringify(panels),
      controlGroupInput: {
        controlStyle: "oneLine",
        chainingSystem: "HIERARCHICAL",
        panelsJSON: JSON.stringify(controls),
        ignoreParentSettingsJSON: JSON.stringify({
          ignoreFilters: false,
          ignoreQuery: false,
          ignoreTimerange: false,
          ignoreValidations: false,
        }),
      },
      kibanaSavedObjectMeta: {
        searchSourceJSON: JSON.stringify({ query: { language: "lucene", query: "" }, filter: [] }),
      },
    },
    references: [
      ...options.panels.map((panel, index) => ({
        id: panel.object.id,
        name: `${index}:panel_${index}`,
        type: panel.object.type,
      })),
      ...options.controls.map((control, order) => ({
        id: DATA_VIEWS[control.view].id,
        name: `controlGroup_control_${order}:optionsListDataView`,
        type: "index-pattern",
      })),
    ],
  };
}

export function savedObjects(): SavedObject[] {
  const failedStops = search({
    id: "lifeline-failed-stops",
    title: "Lifeline: failed stops",
    description: "Stops (and the stop half of restarts) that failed or whose outcome is unknown.",
    view: "lifecycle",
    query: QUERIES.failedStops,
    columns: [
      "host.name",
      "service.name",
      "event.outcome",
      "event.reason",
      "lifeline.rollout_id",
      "trace.id",
    ],
  });
  const escalatedStops = search({
    id: "lifeline-escalated-stops",
    title: "Lifeline: escalated stops",
    description: "Services that did not exit within their grace period and were killed.",
    view: "lifecycle",
    query: QUERIES.escalated,
    columns: [
      "host.name",
      "service.name",
      "event.reason",
      "event.duration",
      "lifeline.rollout_id",
      "trace.id",
    ],
  });
  const logsAroundRestart = search({
    id: "lifeline-logs-around-restart",
    title: "Lifeline: service logs around a restart",
    description:
      "A service's own log lines. Open it from a restart (Discover: set the time to a few minutes around the " +
      "event's @timestamp and filter service.name), or filter trace.id to see only the lines of that restart.",
    view: "logs",
    query: "",
    columns: ["host.name", "service.name", "log.level", "message", "trace.id"],
  });
  const rolloutTrace = search({
    id: "lifeline-rollout-trace",
    title: "Lifeline: one rollout's spans",
    description:
      "The spans of rollouts (rollout → wave → command → agent phases). Filter trace.id to follow one.",
    view: "traces",
    query: "",
    columns: ["service.name", "span.name", "event.outcome", "event.duration", "parent.id", "trace.id"],
  });

  const perHost = lens({
    id: "lifeline-events-per-host",
    title: "Lifecycle events per host",
    view: "lifecycle",
    kind: "bar_stacked",
    query: 'NOT event.action:"agent.heartbeat"',
    columns: { time, count, host: terms("host.name", "Host") },
    x: "time",
    y: ["count"],
    breakdown: "host",
  });
  const stopDurations = lens({
    id: "lifeline-stop-durations",
    title: "Stop durations (ns, distribution)",
    view: "lifecycle",
    kind: "bar_stacked",
    query: QUERIES.stopCompleted,
    columns: {
      duration: {
        label: "Stop duration (ns)",
        operationType: "range",
        sourceField: "event.duration",
        params: { type: "histogram", maxBars: "auto", ranges: [] },
      },
      count: { ...count, label: "Stops" },
    },
    x: "duration",
    y: ["count"],
  });
  const slowest = lens({
    id: "lifeline-slowest-stops",
    title: "Slowest stops",
    view: "lifecycle",
    kind: "datatable",
    query: QUERIES.stopCompleted,
    columns: {
      host: terms("host.name", "Host", 20),
      service: terms("service.name", "Service", 20),
      longest: { label: "Longest stop (ns)", operationType: "max", sourceField: "event.duration" },
    },
  });
  const escalations = lens({
    id: "lifeline-escalations",
    title: "Escalated stops (grace exceeded, killed)",
    view: "lifecycle",
    kind: "metric",
    query: QUERIES.escalated,
    columns: { count: { ...count, label: "Escalations" } },
    y: ["count"],
  });
  const failures = lens({
    id: "lifeline-failed-outcomes",
    title: "Failed and unknown outcomes",
    view: "lifecycle",
    kind: "bar_stacked",
    query: QUERIES.failedOrUnknown,
    columns: { time, count, outcome: terms("event.outcome", "Outcome", 3) },
    x: "time",
    y: ["count"],
    breakdown: "outcome",
  });
  const restarts = lens({
    id: "lifeline-restarts-per-service",
    title: "Restarts per service",
    view: "lifecycle",
    kind: "bar_horizontal",
    query: QUERIES.restarts,
    columns: { service: terms("service.name", "Service", 20), count: { ...count, label: "Restarts" } },
    x: "service",
    y: ["count"],
  });
  const rolloutSteps = lens({
    id: "lifeline-rollout-steps",
    title: "Steps: host, service, final status",
    view: "lifecycle",
    kind: "datatable",
    query: QUERIES.stepsCompleted,
    columns: {
      rollout: terms("lifeline.rollout_id", "Rollout", 20),
      host: terms("lifeline.step.host", "Host", 100),
      service: terms("lifeline.step.service", "Service", 20),
      status: terms("lifeline.step_status", "Status", 6),
      count: { ...count, label: "Steps" },
    },
  });
  const rolloutTimeline = lens({
    id: "lifeline-rollout-timeline",
    title: "Rollout events (controller)",
    view: "lifecycle",
    kind: "bar_stacked",
    query: QUERIES.controllerEvents,
    columns: { time, count, action: terms("event.action", "Event", 10) },
    x: "time",
    y: ["count"],
    breakdown: "action",
  });
  const rolloutTraces = lens({
    id: "lifeline-rollout-traces",
    title: "Rollouts and their traces",
    view: "lifecycle",
    kind: "datatable",
    query: QUERIES.controllerEvents,
    columns: {
      rollout: terms("lifeline.rollout_id", "Rollout", 20),
      trace: terms("trace.id", "Trace", 20),
      waves: { label: "Waves", operationType: "unique_count", sourceField: "lifeline.wave" },
    },
  });
  const links = markdown(
    "lifeline-rollout-links",
    "Logs and trace of this rollout",
    [
      "Pick a rollout in the controls above. Then:",
      "",
      "- its **trace**: [Lifeline: one rollout's spans](#/view/lifeline-rollout-trace) (Discover), filtered by the `trace.id` in the table on the left (click the value, *Filter for*; *Explore in Discover* keeps the filter);",
      "- the **service logs** around its restarts: [Lifeline: service logs around a restart](#/view/lifeline-logs-around-restart), same `trace.id` filter;",
      "- what went wrong: [failed stops](#/view/lifeline-failed-stops), [escalated stops](#/view/lifeline-escalated-stops).",
    ].join("\n"),
  );
  const controls = (view: DataViewKey) => [
    { field: "lifeline.rollout_id", title: "Rollout", view },
    { field: "host.name", title: "Host", view },
    { field: "service.name", title: "Service", view },
    { field: "service.environment", title: "Environment", view },
  ];
  const shutdownTimeline = dashboard({
    id: "lifeline-shutdown-timeline",
    title: "Lifeline: shutdown timeline",
    description:
      "Every stop and start per host over time: how long stops take, which were killed, which failed.",
    panels: [
      { object: perHost, w: 48, h: 12 },
      { object: stopDurations, w: 24, h: 12 },
      { object: slowest, w: 24, h: 12 },
      { object: escalations, w: 12, h: 10 },
      { object: failures, w: 36, h: 10 },
      { object: restarts, w: 24, h: 12 },
      { object: failedStops, w: 24, h: 12 },
    ],
    controls: controls("lifecycle"),
  });
  const requestRate = lens({
    id: "lifeline-request-rate",
    title: "Requests per service (OTLP metrics)",
    view: "metrics",
    kind: "line",
    query: QUERIES.requests,
    columns: {
      time,
      requests: { label: "Requests", operationType: "sum", sourceField: "metric.value" },
      service: terms("service.name", "Service", 10),
    },
    x: "time",
    y: ["requests"],
    breakdown: "service",
  });
  const errorRate = lens({
    id: "lifeline-server-errors",
    title: "Server errors (5xx) per service (OTLP metrics)",
    view: "metrics",
    kind: "line",
    query: QUERIES.serverErrors,
    columns: {
      time,
      errors: { label: "5xx responses", operationType: "sum", sourceField: "metric.value" },
      service: terms("service.name", "Service", 10),
    },
    x: "time",
    y: ["errors"],
    breakdown: "service",
  });
  const stopsAndStarts = lens({
    id: "lifeline-stops-and-starts",
    title: "Stops, starts and restarts per service (lifecycle events)",
    view: "lifecycle",
    kind: "bar_stacked",
    query: QUERIES.restartCommands,
    columns: { time, count: { ...count, label: "Commands" }, service: terms("service.name", "Service", 10) },
    x: "time",
    y: ["count"],
    breakdown: "service",
  });
  const serviceHealth = dashboard({
    id: "lifeline-service-health",
    title: "Lifeline: service health around restarts",
    description:
      "A service's request rate and 5xx rate (from its OTLP metrics) above its stops and starts (from the lifecycle events), on one time axis: pick the service in the control.",
    panels: [
      { object: requestRate, w: 48, h: 10 },
      { object: errorRate, w: 48, h: 10 },
      { object: stopsAndStarts, w: 48, h: 10 },
    ],
    controls: [{ field: "service.name", title: "Service", view: "metrics" }],
  });
  const rollout = dashboard({
    id: "lifeline-rollout",
    title: "Lifeline: rollout",
    description: "One rollout's waves, hosts and outcomes, with the way to its logs and its trace.",
    panels: [
      { object: rolloutTimeline, w: 32, h: 12 },
      { object: links, w: 16, h: 12 },
      { object: rolloutSteps, w: 28, h: 14 },
      { object: rolloutTraces, w: 20, h: 14 },
      { object: escalatedStops, w: 48, h: 12 },
    ],
    controls: controls("lifecycle"),
  });
  return [
    dataView("lifecycle"),
    dataView("logs"),
    dataView("traces"),
    dataView("metrics"),
    failedStops,
    escalatedStops,
    logsAroundRestart,
    rolloutTrace,
    perHost,
    stopDurations,
    slowest,
    escalations,
    failures,
    restarts,
    rolloutSteps,
    rolloutTimeline,
    rolloutTraces,
    links,
    shutdownTimeline,
    rollout,
    requestRate,
    errorRate,
    stopsAndStarts,
    serviceHealth,
  ];
}

export function toNdjson(objects: SavedObject[]): string {
  return `${objects.map((object) => JSON.stringify(object)).join("\n")}\n`;
}
