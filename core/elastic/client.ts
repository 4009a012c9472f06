import { readFileSync } from "node:fs";
import { Client, type ClientOptions, errors } from "@elastic/elasticsearch";
import { ConfigError, PermanentError, RetryableError } from "../errors.ts";
import type { ElasticSettings } from "./settings.ts";

export { type ElasticSettings, elasticEnvOverrides, elasticSettingsSchema } from "./settings.ts";

/** The one place an Elasticsearch client is made. Retries are ours (core/retry), not the client's. */
export function createElastic(settings: ElasticSettings): Client {
  const options: ClientOptions = {
    node: settings.url,
    requestTimeout: settings.requestTimeoutMs,
    maxRetries: 0,
    compression: false,
  };
  if (settings.apiKey) options.auth = { apiKey: settings.apiKey };
  else if (settings.username && settings.password) {
    options.auth = { username: settings.username, password: settings.password };
  }
  if (settings.tls) {
    let ca: Buffer | undefined;
    if (settings.tls.caFile) {
      try {
        ca = readFileSync(settings.tls.caFile);
      } catch (cause) {
        throw new ConfigError("elasticsearch.tls_file", `cannot read CA file ${settings.tls.caFile}`, {
          cause,
        });
      }
    }
    options.tls = { ca, rejectUnauthorized: settings.tls.rejectUnauthorized };
  }
  return new Client(options);
}

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** Classifies a client error: wrong credentials are fatal, an unreachable or busy server is retryable. */
export function translateElasticError(error: unknown, settings: ElasticSettings): Error {
  const where = settings.url;
  if (error instanceof errors.ResponseError) {
    const status = error.statusCode ?? 0;
    const reason = firstReason(error);
    if (status === 401 || status === 403) {
      return new ConfigError(
        "elasticsearch.auth_failed",
        `Elasticsearch at ${where} ${status === 401 ? "rejected the credentials" : "denied access"} (${status}): ${reason}`,
        { cause: error, hint: "check LIFELINE_ES_USERNAME / LIFELINE_ES_PASSWORD or LIFELINE_ES_API_KEY" },
      );
    }
    if (RETRYABLE_STATUS.has(status)) {
      const retryAfter = Number(error.headers?.["retry-after"]);
      return new RetryableError(
        "elasticsearch.busy",
        `Elasticsearch at ${where} answered ${status}: ${reason}`,
        {
          cause: error,
          ...(Number.isFinite(retryAfter) ? { retryAfterMs: retryAfter * 1000 } : {}),
        },
      );
    }
    return new PermanentError(
      `elasticsearch.http_${status}`,
      `Elasticsearch at ${where} answered ${status}: ${reason}`,
      {
        cause: error,
      },
    );
  }
  if (
    error instanceof errors.ConnectionError ||
    error instanceof errors.TimeoutError ||
    error instanceof errors.NoLivingConnectionsError
  ) {
    return new RetryableError(
      "elasticsearch.unreachable",
      `cannot reach Elasticsearch at ${where}: ${error.message}`,
      {
        cause: error,
        hint: "start the local servers with `lifeline services up`, or set LIFELINE_ES_URL to a running cluster",
      },
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

function firstReason(error: InstanceType<typeof errors.ResponseError>): string {
  const body = error.body as { error?: { reason?: string; type?: string } | string } | undefined;
  if (typeof body?.error === "string") return body.error;
  return body?.error?.reason ?? body?.error?.type ?? error.message;
}

export interface ElasticClusterInfo {
  status: string;
  version: string;
  clusterName: string;
}

/**
 * Cluster health plus the server version. The version comes from the nodes API because the
 * integration-test distribution has no handler for `GET /`.
 */
export async function describeElastic(settings: ElasticSettings): Promise<ElasticClusterInfo> {
  const client = createElastic({ ...settings, requestTimeoutMs: Math.min(settings.requestTimeoutMs, 5_000) });
  try {
    const health = await client.cluster.health();
    const nodes = await client.nodes.info({
      node_id: "_local",
      metric: "_none",
      filter_path: "nodes.*.version",
    });
    const version = Object.values(nodes.nodes ?? {})[0]?.version ?? "unknown";
    return { status: health.status, version, clusterName: health.cluster_name };
  } catch (error) {
    throw translateElasticError(error, settings);
  } finally {
    await client.close();
  }
}
