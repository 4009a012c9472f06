import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolveElastic } from "../../core/connections.ts";
import { createElastic } from "../../core/elastic/client.ts";
import { DEFAULT_OBJECTS_FILE } from "../../dashboards/main.ts";
import { runLifeline } from "../helpers/cli.ts";

describe("lifeline dashboards", () => {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-dashboards-"));
  const servers: Server[] = [];
  afterAll(() => {
    for (const server of servers) server.close();
  });

  it("check: every object, field and rule holds against the real Elasticsearch, and leaves nothing behind", async () => {
    const elastic = createElastic(resolveElastic());
    // Every index and data stream the data views and rules read, and anything named like the check's own.
    const production = [
      "logs-lifeline.*",
      "traces-lifeline-*",
      "lifeline-lifecycle-*",
      "lifeline-logs-*",
      "lifeline-traces-*",
    ];
    const names = async (patterns: string[]) =>
      new Set(
        Object.keys(
          await elastic.indices.get({
            index: patterns,
            expand_wildcards: "all",
            allow_no_indices: true,
            ignore_unavailable: true,
          }),
        ),
      );
    const before = await names(production);
    const result = await runLifeline(["dashboards", "check"]);
    const written = [...(await names(production))].filter(
      (name) => !before.has(name) && name.includes("check"),
    );
    // (Other tests may create production-pattern indices meanwhile: only names saying "check" are the check's.)
    expect(written, "the check wrote into the pattern the data views and alert rules read").toEqual([]);
    expect([...(await names(["lifeline-check-*"]))], "the check's own indices are deleted").toEqual([]);
    const templates = await elastic.indices
      .getIndexTemplate({ name: "lifeline-check-*" })
      .catch(() => ({ index_templates: [] }));
    expect(
      templates.index_templates.map((t) => t.name),
      "the check's template is deleted",
    ).toEqual([]);
    expect(result.stderr).toMatch(/seeded \d+ documents into lifeline-check-[a-z0-9]+-failing-\*/);
    expect(result.stderr).toMatch(/deleted the check's indices lifeline-check-[a-z0-9]+-\* and its template/);
    await elastic.close();
    expect(result.stdout).not.toContain("FAIL");
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/24 saved objects, 9 rules/);
    expect(result.stdout).toMatch(
      /rule lifeline-stop-failed: failing → 2 matching → alert; healthy → 0 matching → no alert/,
    );
    // The service-health panels read the collector's metric points (a 5xx range over a flattened attribute).
    expect(result.stdout).toMatch(/ok {3}lens lifeline-request-rate: 5 hits/);
    expect(result.stdout).toMatch(/ok {3}lens lifeline-server-errors: 1 hits/);
    expect(result.stdout).toMatch(
      /rule lifeline-start-failed: failing → 2 matching → alert; healthy → 0 matching → no alert/,
    );
    expect(result.stdout).toMatch(
      /rule lifeline-command-rejected: failing → 1 matching → alert; healthy → 0 matching → no alert/,
    );
    expect(result.stdout).toMatch(
      /rule lifeline-agent-silent: failing → .*alerts for web-3; healthy → .*no alert/,
    );
    expect(result.stdout).toContain("all queries ran against Elasticsearch as expected");
  });

  it("check fails on an unknown field, a wrongly typed field and a dangling reference, naming object and field", async () => {
    const broken = readFileSync(DEFAULT_OBJECTS_FILE, "utf8")
      .split("\n")
      .filter((line) => line.trim())
      .map((line) => {
        const object = JSON.parse(line);
        if (object.id === "lifeline-slowest-stops") {
          const text = JSON.stringify(object).replace(
            '"sourceField":"service.name"',
            '"sourceField":"service.nmae"',
          );
          return text.replace('"sourceField":"host.name"', '"sourceField":"message"');
        }
        if (object.id === "lifeline-rollout") {
          object.references[2].id = "lifeline-no-such-lens";
        }
        return JSON.stringify(object);
      })
      .join("\n");
    const file = join(dir, "broken.ndjson");
    writeFileSync(file, broken);
    const result = await runLifeline(["dashboards", "check", "--file", file, "--offline"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      'FAIL lens lifeline-slowest-stops: field "service.nmae" is not in the index templates',
    );
    expect(result.stdout).toContain(
      'FAIL lens lifeline-slowest-stops: field "message" is text; terms and controls need a keyword',
    );
    expect(result.stdout).toContain(
      'FAIL dashboard lifeline-rollout: reference "2:panel_2" points to lens lifeline-no-such-lens, which is not in the file',
    );
  });

  it("install: an unreachable Kibana, refused credentials and another major version each get a clear error", async () => {
    const unreachable = await runLifeline(["dashboards", "install", "--kibana", "http://127.0.0.1:9"]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain("Kibana is unreachable at http://127.0.0.1:9");

    // A server that answers /api/status as Kibana does: 401 without credentials, then an 8.x version.
    const server = createServer((request, response) => {
      if (!request.headers.authorization) response.writeHead(401).end('{"statusCode":401}');
      else
        response
          .writeHead(200, { "content-type": "application/json" })
          .end('{"version":{"number":"8.19.2"}}');
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const env = { ...process.env, LIFELINE_ES_USERNAME: "", LIFELINE_ES_PASSWORD: "" };
    const refused = await runLifeline(["dashboards", "install", "--kibana", url], env);
    // Configuration problems (credentials, versions) exit 2, as every command's config errors do.
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("Kibana refused the credentials (401)");
    const older = await runLifeline(
      ["dashboards", "install", "--kibana", url, "--username", "elastic", "--password", "x"],
      env,
    );
    expect(older.code).toBe(2);
    expect(older.stderr).toContain("Kibana 8.19.2 at");
    expect(older.stderr).toContain("these objects are for Kibana 9.x");
  });
});
