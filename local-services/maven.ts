import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { ConfigError } from "../core/errors.ts";

export interface MavenArtifact {
  groupId: string;
  artifactId: string;
  version: string;
  type?: string;
  /** Do not pull this artifact's dependencies. */
  intransitive?: boolean;
}

interface Manifest {
  artifacts: string[];
  files: Record<string, string>;
  fetchedAt: string;
}

/**
 * Fetches artifacts (with their runtime dependencies) from Maven Central, or LIFELINE_MAVEN_REPO_URL, into
 * `<cacheDir>/<name>/files`, through Maven itself so its checksums are enforced (--strict-checksums).
 * A manifest of SHA-256 sums lets the next run verify the cache instead of downloading again.
 */
export async function fetchArtifacts(options: {
  name: string;
  artifacts: MavenArtifact[];
  cacheDir: string;
  repoUrl: string | undefined;
  /**
   * SHA-256 of files whose publisher puts no checksums next to them (the Elasticsearch integration-test zip):
   * Maven cannot verify those, so we do. Files with published checksums are verified by Maven (--strict-checksums).
   */
  pinnedSha256?: Record<string, string>;
  progress: (message: string) => void;
}): Promise<{ dir: string; files: string[]; fromCache: boolean }> {
  const home = join(options.cacheDir, options.name);
  const filesDir = join(home, "files");
  const manifestFile = join(home, "manifest.json");
  const wanted = options.artifacts.map(coordinates);

  const cached = await readManifest(manifestFile);
  if (cached && sameList(cached.artifacts, wanted)) {
    const broken = await firstMismatch(filesDir, cached.files);
    if (!broken) return { dir: filesDir, files: Object.keys(cached.files), fromCache: true };
    options.progress(`${options.name}: cached ${broken} does not match its checksum, fetching again`);
  }

  await rm(home, { recursive: true, force: true });
  await mkdir(home, { recursive: true });
  await writeFile(join(home, "pom.xml"), pom(options.artifacts, options.repoUrl));
  options.progress(`${options.name}: fetching ${wanted.join(", ")} with Maven`);
  const staging = join(home, "files.partial");
  await runMaven(
    [
      "-B",
      "-q",
      options.pinnedSha256 ? "--lax-checksums" : "--strict-checksums",
      `-Dmaven.repo.local=${join(options.cacheDir, "m2")}`,
      "-f",
      join(home, "pom.xml"),
      "dependency:copy-dependencies",
      `-DoutputDirectory=${staging}`,
      "-DincludeScope=runtime",
    ],
    wanted,
    options.repoUrl,
  );
  const files: Record<string, string> = {};
  for (const file of (await readdir(staging)).sort()) files[file] = await sha256(join(staging, file));
  for (const [file, expected] of Object.entries(options.pinnedSha256 ?? {})) {
    if (files[file] !== expected) {
      await rm(home, { recursive: true, force: true });
      throw new ConfigError(
        "services.checksum_mismatch",
        `${file} from ${options.repoUrl ?? "Maven Central"} has SHA-256 ${files[file] ?? "(missing)"}, expected ${expected}`,
        {
          hint: "the download is corrupt or not the published artifact; check the mirror (LIFELINE_MAVEN_REPO_URL)",
        },
      );
    }
  }
  await rename(staging, filesDir);
  const manifest: Manifest = { artifacts: wanted, files, fetchedAt: new Date().toISOString() };
  await writeFile(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  return { dir: filesDir, files: Object.keys(files), fromCache: false };
}

function coordinates(artifact: MavenArtifact): string {
  return `${artifact.groupId}:${artifact.artifactId}:${artifact.version}${artifact.type ? `:${artifact.type}` : ""}`;
}

function pom(artifacts: MavenArtifact[], repoUrl: string | undefined): string {
  const dependencies = artifacts
    .map(
      (a) => `    <dependency>
      <groupId>${a.groupId}</groupId><artifactId>${a.artifactId}</artifactId><version>${a.version}</version>${
        a.type ? `<type>${a.type}</type>` : ""
      }${a.intransitive ? "<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>" : ""}
    </dependency>`,
    )
    .join("\n");
  // Declaring a repository with the id "central" replaces Maven Central, for mirrors and for tests.
  const repositories = repoUrl
    ? `  <repositories><repository><id>central</id><url>${repoUrl}</url></repository></repositories>\n`
    : "";
  return `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>lifeline.local</groupId>
  <artifactId>local-services</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
${repositories}  <dependencies>
${dependencies}
  </dependencies>
</project>
`;
}

function runMaven(args: string[], wanted: string[], repoUrl: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("mvn", args, { maxBuffer: 16 * 1024 * 1024, timeout: 15 * 60_000 }, (error, stdout, stderr) => {
      if (!error) return resolve();
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        return reject(
          new ConfigError(
            "services.maven_missing",
            "Maven (mvn) is not installed; it fetches Kafka and Elasticsearch",
            {
              hint: "apt-get install maven, or set LIFELINE_KAFKA_BROKERS and LIFELINE_ES_URL to servers you already run",
            },
          ),
        );
      }
      const output = `${stdout}\n${stderr}`;
      const errorLines = output
        .split("\n")
        .filter(
          (line) => line.includes("[ERROR]") && !/Help 1|re-run|full stack|For more information/i.test(line),
        )
        .map((line) => line.replace(/^.*\[ERROR\]\s*/, "").trim())
        .filter((line) => line.length > 0)
        .slice(0, 2);
      const checksum = /Checksum validation failed/i.test(output);
      const unreachable =
        !checksum &&
        /Connection refused|Unknown host|UnknownHost|timed out|Could not transfer|No route/i.test(output);
      const notFound =
        !checksum && !unreachable && /could not be resolved|not found|Could not find artifact/i.test(output);
      const repository = repoUrl ?? "Maven Central";
      reject(
        new ConfigError(
          checksum
            ? "services.checksum_failed"
            : unreachable
              ? "services.maven_unreachable"
              : notFound
                ? "services.artifact_not_found"
                : "services.maven_failed",
          `${checksum ? "checksum check failed for" : unreachable ? `Maven could not reach ${repository} for` : notFound ? `${repository} does not serve` : "Maven failed to fetch"} ${wanted.join(", ")}: ${errorLines.join(" / ") || (error as Error).message}`,
          {
            hint: unreachable
              ? "check the network, proxy and mirrors in ~/.m2/settings.xml, or set LIFELINE_MAVEN_REPO_URL to a reachable mirror"
              : "check LIFELINE_KAFKA_VERSION / LIFELINE_ES_VERSION against the versions the repository serves",
          },
        ),
      );
    });
  });
}

async function readManifest(file: string): Promise<Manifest | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as Manifest;
  } catch {
    return undefined;
  }
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

async function firstMismatch(dir: string, files: Record<string, string>): Promise<string | undefined> {
  for (const [file, sum] of Object.entries(files)) {
    const path = join(dir, file);
    if (!existsSync(path) || (await sha256(path)) !== sum) return file;
  }
  return undefined;
}

export async function sha256(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), hash);
  return hash.digest("hex");
}
