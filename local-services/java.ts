import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { ConfigError } from "../core/errors.ts";

const run = promisify(execFile);

export interface JavaRuntime {
  home: string | undefined;
  executable: string;
  major: number;
}

/** The major version `java -version` reports ("17.0.15" → 17, "25" → 25, "1.8.0" → 8). */
export async function javaMajor(executable: string): Promise<number> {
  const { stderr, stdout } = await run(executable, ["-version"], { timeout: 20_000 });
  const match = /version "(\d+)(?:\.(\d+))?/.exec(stderr + stdout);
  if (!match) throw new Error(`cannot read the version of ${executable}`);
  const major = Number(match[1]);
  return major === 1 ? Number(match[2]) : major;
}

/**
 * Finds a Java of at least `minMajor`: the explicit home (an error if it is wrong), then JAVA_HOME,
 * `java` on PATH and the JDKs under /usr/lib/jvm. `prefer: "newest"` picks the highest version found.
 */
export async function findJava(options: {
  purpose: string;
  minMajor: number;
  explicitHome: string | undefined;
  explicitVariable: string;
  prefer?: "first" | "newest";
  env?: NodeJS.ProcessEnv;
}): Promise<JavaRuntime> {
  const env = options.env ?? process.env;
  const installHint = `install a JDK ${options.minMajor}+ (e.g. apt-get install openjdk-${Math.max(options.minMajor, 17)}-jre-headless) or set ${options.explicitVariable} to one`;
  if (options.explicitHome) {
    const executable = join(options.explicitHome, "bin", "java");
    if (!existsSync(executable)) {
      throw new ConfigError(
        "services.java_missing",
        `${options.explicitVariable}=${options.explicitHome} has no bin/java`,
        {
          hint: installHint,
        },
      );
    }
    const major = await javaMajor(executable);
    if (major < options.minMajor) {
      throw new ConfigError(
        "services.java_too_old",
        `${options.purpose} needs Java ${options.minMajor}+, but ${executable} is Java ${major}`,
        { hint: installHint },
      );
    }
    return { home: options.explicitHome, executable, major };
  }

  const candidates: Array<{ home: string | undefined; executable: string }> = [];
  if (env.JAVA_HOME) candidates.push({ home: env.JAVA_HOME, executable: join(env.JAVA_HOME, "bin", "java") });
  for (const dir of (env.PATH ?? "").split(":")) {
    if (dir && existsSync(join(dir, "java"))) {
      candidates.push({ home: undefined, executable: join(dir, "java") });
      break;
    }
  }
  if (existsSync("/usr/lib/jvm")) {
    for (const name of readdirSync("/usr/lib/jvm").sort()) {
      const executable = join("/usr/lib/jvm", name, "bin", "java");
      if (existsSync(executable)) candidates.push({ home: join("/usr/lib/jvm", name), executable });
    }
  }
  const found: JavaRuntime[] = [];
  for (const candidate of candidates) {
    const major = await javaMajor(candidate.executable).catch(() => 0);
    if (major >= options.minMajor) {
      if (options.prefer !== "newest") return { ...candidate, major };
      found.push({ ...candidate, major });
    }
  }
  const best = found.sort((a, b) => b.major - a.major)[0];
  if (best) return best;
  throw new ConfigError(
    "services.java_missing",
    `${options.purpose} needs Java ${options.minMajor}+ and none was found`,
    {
      hint: installHint,
    },
  );
}
