import { ConfigError, PermanentError, RetryableError } from "../core/errors.ts";
import type { RuleDefinition } from "./rules.ts";
import { SERVER_LOG_CONNECTOR } from "./rules.ts";

export interface KibanaTarget {
  url: string;
  space?: string | undefined;
  auth: { username: string; password: string } | { apiKey: string } | undefined;
  /** Kibana major the objects are written for (the Elasticsearch of docker-compose.yml). */
  expectedMajor: number;
}

/** One Kibana HTTP call, with errors that say what to do. */
async function kibana(
  target: KibanaTarget,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const base = target.url.replace(/\/+$/, "") + (target.space ? `/s/${target.space}` : "");
  const headers: Record<string, string> = { "kbn-xsrf": "lifeline", "elastic-api-version": "2023-10-31" };
  if (target.auth && "apiKey" in target.auth) headers.authorization = `ApiKey ${target.auth.apiKey}`;
  else if (target.auth) {
    headers.authorization = `Basic ${Buffer.from(`${target.auth.username}:${target.auth.password}`).toString("base64")}`;
  }
  let payload: string | FormData | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["content-type"] = "application/json";
  }
  let response: Response;
  try {
    response = await fetch(`${base}${path}`, {
      method,
      headers,
      ...(payload !== undefined ? { body: payload } : {}),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new RetryableError("kibana.unreachable", `Kibana is unreachable at ${target.url} (${cause})`, {
      hint: "check --kibana (docker compose: http://kibana:5601) and that Kibana is up (GET /api/status)",
    });
  }
  const text = await response.text();
  let json: unknown = text;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    // Not JSON (a proxy's error page): keep the text for the message.
  }
  if (response.status === 401 || response.status === 403) {
    throw new ConfigError(
      "kibana.auth",
      `Kibana refused the credentials (${response.status}) for ${method} ${path}`,
      {
        hint: "set --username/--password or LIFELINE_KIBANA_USERNAME/LIFELINE_KIBANA_PASSWORD (or LIFELINE_KIBANA_API_KEY)",
      },
    );
  }
  return { status: response.status, json };
}

function fail(what: string, answer: { status: number; json: unknown }): never {
  throw new PermanentError(
    "kibana.refused",
    `${what}: Kibana answered ${answer.status}: ${JSON.stringify(answer.json).slice(0, 1_000)}`,
  );
}

/**
 * Imports the saved objects (overwrite: a second install changes nothing) and creates or updates the server-log
 * connector and the alerting rules under fixed ids, after checking that Kibana is the version they are for.
 */
export async function installDashboards(
  target: KibanaTarget,
  ndjson: string,
  rules: RuleDefinition[],
  progress: (line: string) => void,
): Promise<{ imported: number; rules: number; kibanaVersion: string }> {
  const status = await kibana(target, "GET", "/api/status");
  if (status.status !== 200) fail("GET /api/status", status);
  const version = (status.json as { version?: { number?: string } }).version?.number ?? "unknown";
  const major = Number(version.split(".")[0]);
  if (major !== target.expectedMajor) {
    throw new ConfigError(
      "kibana.version",
      `Kibana ${version} at ${target.url}; these objects are for Kibana ${target.expectedMajor}.x (the Elasticsearch of docker-compose.yml)`,
    );
  }
  progress(`Kibana ${version} at ${target.url}`);

  const form = new FormData();
  form.append("file", new Blob([ndjson], { type: "application/ndjson" }), "lifeline.ndjson");
  const imported = await kibana(target, "POST", "/api/saved_objects/_import?overwrite=true", form);
  const result = imported.json as { success?: boolean; successCount?: number; errors?: unknown[] };
  if (imported.status !== 200 || !result.success) fail("saved objects import", imported);
  progress(`imported ${result.successCount} saved objects (overwrite)`);

  const connectorPath = `/api/actions/connector/${SERVER_LOG_CONNECTOR.id}`;
  const connector = await kibana(target, "GET", connectorPath);
  const { connector_type_id: _type, ...connectorUpdate } = SERVER_LOG_CONNECTOR.body;
  const savedConnector =
    connector.status === 404
      ? await kibana(target, "POST", connectorPath, SERVER_LOG_CONNECTOR.body)
      : await kibana(target, "PUT", connectorPath, connectorUpdate);
  if (savedConnector.status !== 200) fail(`connector ${SERVER_LOG_CONNECTOR.id}`, savedConnector);
  progress(`connector ${SERVER_LOG_CONNECTOR.id} ready`);

  for (const rule of rules) {
    const path = `/api/alerting/rule/${rule.id}`;
    const existing = await kibana(target, "GET", path);
    const { rule_type_id: _ruleType, consumer: _consumer, ...update } = rule.body;
    const saved =
      existing.status === 404
        ? await kibana(target, "POST", path, rule.body)
        : await kibana(target, "PUT", path, update);
    if (saved.status !== 200) fail(`rule ${rule.id}`, saved);
    progress(`rule ${rule.id} ${existing.status === 404 ? "created" : "updated"}`);
  }
  return { imported: result.successCount ?? 0, rules: rules.length, kibanaVersion: version };
}
