import type { Client } from "@elastic/elasticsearch";
import { ECS_MAPPINGS, STREAM_KINDS, type StreamKind } from "../core/ecs/mappings.ts";
import type { Logger } from "../core/logger.ts";

export interface IndexLayout {
  dataStreams: boolean;
  /** Where documents of each kind are written. */
  targets: Record<StreamKind, string>;
}

export function layout(namespace: string, dataStreams: boolean): IndexLayout {
  return dataStreams
    ? {
        dataStreams,
        targets: {
          logs: `logs-lifeline.logs-${namespace}`,
          lifecycle: `logs-lifeline.lifecycle-${namespace}`,
          spans: `traces-lifeline-${namespace}`,
          metrics: `metrics-lifeline-${namespace}`,
        },
      }
    : {
        dataStreams,
        targets: {
          logs: `lifeline-logs-${namespace}`,
          lifecycle: `lifeline-lifecycle-${namespace}`,
          spans: `lifeline-traces-${namespace}`,
          metrics: `lifeline-metrics-${namespace}`,
        },
      };
}

/**
 * Component and index templates, idempotent (PUT replaces). Data streams where the server has them (with a
 * retention the server enforces if it runs data stream lifecycle), plain indices where it does not, detected by
 * trying; `mode` forces one.
 */
export async function setupIndices(
  client: Client,
  options: {
    namespace: string;
    retention: string;
    replicas: number;
    mode: "auto" | "data-streams" | "indices";
  },
  logger: Logger,
): Promise<IndexLayout> {
  // Shared by every namespace: mappings only. Settings that may differ (replicas) are each namespace's own, in its
  // index templates: one indexer's start must not change another namespace's new indices.
  await client.cluster.putComponentTemplate({
    name: "lifeline-ecs-mappings",
    template: { mappings: ECS_MAPPINGS as never },
    _meta: { managed_by: "lifeline" },
  });
  const tryDataStreams = options.mode !== "indices";
  if (tryDataStreams) {
    try {
      await putTemplates(client, layout(options.namespace, true), options.retention, options.replicas);
      return layout(options.namespace, true);
    } catch (error) {
      if (options.mode === "data-streams") throw error;
      logger.warn(
        { err: (error as Error).message },
        "data streams not available here: writing to plain indices",
      );
    }
  }
  await putTemplates(client, layout(options.namespace, false), options.retention, options.replicas);
  return layout(options.namespace, false);
}

async function putTemplates(
  client: Client,
  target: IndexLayout,
  retention: string,
  replicas: number,
): Promise<void> {
  const kinds = STREAM_KINDS;
  for (const kind of kinds) {
    const index = target.targets[kind];
    await client.indices.putIndexTemplate({
      name: `lifeline-${kind}-${index}`,
      index_patterns: [target.dataStreams ? index : `${index}*`],
      // Above the official image's built-in logs-*-* and traces-*-* templates (priority 100 and 150).
      priority: 500,
      composed_of: ["lifeline-ecs-mappings"],
      ...(target.dataStreams ? { data_stream: {} } : {}),
      template: {
        settings: { number_of_replicas: replicas },
        ...(target.dataStreams ? { lifecycle: { data_retention: retention } } : {}),
      },
      _meta: { managed_by: "lifeline", kind },
    });
  }
}
