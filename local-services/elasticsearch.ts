import { execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chown, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describeElastic } from "../core/elastic/client.ts";
import { ConfigError } from "../core/errors.ts";
import { findJava } from "./java.ts";
import { fetchArtifacts } from "./maven.ts";
import { isOurProcess, isPortOpen, readPidFile, waitUntil } from "./process.ts";
import type { LocalServicesSettings } from "./settings.ts";

const run = promisify(execFile);

/** Maven Central publishes no checksum files for the integration-test zip, so the default version's is pinned here. */
const PINNED_SHA256: Record<string, Record<string, string>> = {
  "9.5.4": { "elasticsearch-9.5.4.zip": "d9b0c28e08e499f6510b52ad66ec4bf9cdceab97cc28b3456989b8744b896934" },
};

export interface ElasticPaths {
  root: string;
  home: string;
  data: string;
  logs: string;
  tmp: string;
  pidFile: string;
}

export function elasticPaths(settings: LocalServicesSettings): ElasticPaths {
  const root = join(settings.dir, "elasticsearch");
  return {
    root,
    home: join(root, `elasticsearch-${settings.elasticsearch.version}`),
    data: join(root, "data"),
    logs: join(root, "logs"),
    tmp: join(root, "tmp"),
    pidFile: join(root, "elasticsearch.pid"),
  };
}

export function runningElasticPid(settings: LocalServicesSettings): number | undefined {
  const paths = elasticPaths(settings);
  const pid = readPidFile(paths.pidFile);
  return isOurProcess(pid, paths.home) ? pid : undefined;
}

export interface ElasticCredentials {
  username: string;
  password: string;
}

interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

/**
 * Fetches (or reuses) the integration-test distribution, unpacks it into the services folder, writes
 * its config and file-realm user, and starts it, as a dedicated system user when we are root.
 */
export async function startElastic(
  settings: LocalServicesSettings,
  credentials: ElasticCredentials,
  progress: (message: string) => void,
): Promise<{ pid: number; reused: boolean }> {
  const paths = elasticPaths(settings);
  const running = runningElasticPid(settings);
  if (running) return { pid: running, reused: true };

  const es = settings.elasticsearch;
  for (const port of [es.port, es.transportPort]) {
    if (await isPortOpen(port)) {
      throw new ConfigError(
        "services.port_taken",
        `port ${port} is already in use by a program Lifeline did not start`,
        {
          hint: "stop that program, choose other ports (LIFELINE_SERVICES_ES_PORT, LIFELINE_SERVICES_ES_TRANSPORT_PORT), or set LIFELINE_ES_URL to use an Elasticsearch that already runs",
        },
      );
    }
  }
  const java = await findJava({
    purpose: `Elasticsearch ${es.version}`,
    minMajor: 21,
    explicitHome: es.javaHome,
    explicitVariable: "LIFELINE_ES_JAVA_HOME",
    prefer: "newest",
  });
  if (!java.home)
    throw new ConfigError(
      "services.java_missing",
      "Elasticsearch needs a JDK home; set LIFELINE_ES_JAVA_HOME",
    );
  const distribution = await fetchArtifacts({
    name: `elasticsearch-${es.version}`,
    artifacts: [
      {
        groupId: "org.elasticsearch.distribution.integ-test-zip",
        artifactId: "elasticsearch",
        version: es.version,
        type: "zip",
        intransitive: true,
      },
    ],
    cacheDir: settings.cacheDir,
    repoUrl: settings.mavenRepoUrl,
    pinnedSha256: PINNED_SHA256[es.version] ?? {},
    progress,
  });
  if (!PINNED_SHA256[es.version]) {
    progress(
      `elasticsearch: no pinned checksum for ${es.version}; trusting the first download (its SHA-256 is in the cache manifest)`,
    );
  }

  const runAs = process.getuid?.() === 0 ? await ensureSystemUser(es.user, paths.root) : undefined;
  await mkdir(paths.root, { recursive: true });
  if (!existsSync(join(paths.home, "bin", "elasticsearch"))) {
    progress(`elasticsearch: unpacking ${es.version} into ${paths.root}`);
    const zip = join(distribution.dir, distribution.files[0] as string);
    await unzip(zip, paths.root);
  }
  await Promise.all([paths.data, paths.logs, paths.tmp].map((d) => mkdir(d, { recursive: true })));
  await writeFile(join(paths.home, "config", "elasticsearch.yml"), elasticsearchYml(settings, paths));
  await writeFile(
    join(paths.home, "config", "jvm.options.d", "lifeline.options"),
    `-Xms${es.heapMb}m\n-Xmx${es.heapMb}m\n`,
  );
  const env = { ...process.env, ES_JAVA_HOME: java.home, ES_TMPDIR: paths.tmp, ES_JAVA_OPTS: "" };
  const usersFile = join(paths.home, "config", "users");
  if (
    !readFileSafe(usersFile)
      .split("\n")
      .some((line) => line.startsWith(`${credentials.username}:`))
  ) {
    await run(
      join(paths.home, "bin", "elasticsearch-users"),
      ["useradd", credentials.username, "-p", credentials.password, "-r", "superuser"],
      { env, timeout: 120_000 },
    );
  }
  if (runAs) await chownTree(paths.root, runAs);

  // `-d` returns once the node has started (or failed), with the reason on stderr.
  const result = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(join(paths.home, "bin", "elasticsearch"), ["-d", "-p", paths.pidFile], {
      env,
      cwd: paths.home,
      stdio: ["ignore", "pipe", "pipe"],
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
    });
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, output }));
  });
  if (result.code !== 0) {
    const lines = result.output.split("\n").filter((l) => /ERROR|Exception|error/i.test(l));
    throw new Error(
      `Elasticsearch failed to start (exit ${result.code}): ${lines.slice(0, 5).join(" | ") || result.output.slice(-800)}; see ${paths.logs}`,
    );
  }
  const pid = await waitUntil(async () => readPidFile(paths.pidFile), { timeoutMs: 10_000, intervalMs: 100 });
  if (!pid) throw new Error(`Elasticsearch started but wrote no pid file at ${paths.pidFile}`);
  return { pid, reused: false };
}

/** Waits until cluster health is yellow or green. */
export async function waitForElastic(
  settings: LocalServicesSettings,
  credentials: ElasticCredentials,
  timeoutMs: number,
): Promise<void> {
  const ready = await waitUntil(
    async () => {
      if (!runningElasticPid(settings)) throw new Error("exited");
      const info = await describeElastic({
        url: `http://127.0.0.1:${settings.elasticsearch.port}`,
        ...credentials,
        requestTimeoutMs: 5_000,
      });
      return info.status === "red" ? undefined : info;
    },
    { timeoutMs, intervalMs: 300 },
  );
  if (!ready) {
    throw new Error(
      `Elasticsearch did not report yellow or green health within ${Math.round(timeoutMs / 1000)} s; see ${elasticPaths(settings).logs}`,
    );
  }
}

function elasticsearchYml(settings: LocalServicesSettings, paths: ElasticPaths): string {
  const es = settings.elasticsearch;
  return `# Written by \`lifeline services up\`: a single-node server on loopback, security on (file realm).
cluster.name: lifeline-local
node.name: lifeline-local
network.host: 127.0.0.1
http.port: ${es.port}
transport.port: ${es.transportPort}
discovery.type: single-node
path.data: ${paths.data}
path.logs: ${paths.logs}
xpack.security.enabled: true
xpack.security.http.ssl.enabled: false
xpack.security.transport.ssl.enabled: false
# Tests delete their indices by pattern; a nearly full disk must not flip indices to read-only here.
action.destructive_requires_name: false
cluster.routing.allocation.disk.threshold_enabled: false
# This distribution has no _data_stream API, so the data streams test runs create cannot be deleted; each
# holds one small shard, and the default of 1,000 shards would be reached after some hundred runs.
cluster.max_shards_per_node: 20000
`;
}

async function ensureSystemUser(name: string, home: string): Promise<RunAs> {
  const lookup = async () => {
    const [uid, gid] = await Promise.all([run("id", ["-u", name]), run("id", ["-g", name])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()), name };
  };
  try {
    return await lookup();
  } catch {
    try {
      await run("useradd", [
        "--system",
        "--no-create-home",
        "--home-dir",
        home,
        "--shell",
        "/usr/sbin/nologin",
        name,
      ]);
    } catch (cause) {
      throw new ConfigError(
        "services.user_missing",
        `Elasticsearch refuses to run as root and the system user "${name}" could not be created: ${(cause as Error).message}`,
        {
          hint: "create it (useradd --system lifeline-es) or set LIFELINE_ES_USER to an existing non-root user",
        },
      );
    }
    return lookup();
  }
}

async function chownTree(dir: string, owner: RunAs): Promise<void> {
  await chown(dir, owner.uid, owner.gid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(path, owner);
    else if (!entry.isSymbolicLink()) await chown(path, owner.uid, owner.gid);
  }
}

async function unzip(zip: string, into: string): Promise<void> {
  try {
    await run("unzip", ["-q", "-o", zip, "-d", into], { maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    // No unzip on this machine: Python's zipfile, then restore the execute bits it drops.
    await run("python3", ["-m", "zipfile", "-e", zip, into]);
    const [top] = (await readdir(into)).filter((n) => n.startsWith("elasticsearch-"));
    if (top) await run("chmod", ["-R", "a+x", join(into, top, "bin")]);
    await rm(join(into, "__MACOSX"), { recursive: true, force: true });
  }
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}
