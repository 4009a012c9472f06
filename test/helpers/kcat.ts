import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { connections } from "./services.ts";

/**
 * kcat, the librdkafka command-line client: an outside Kafka client, to show what any consumer reads. The
 * machine's own (`apt-get install kcat`) when there is one; otherwise Debian's packages (kcat, librdkafka1,
 * libyajl2) downloaded with `apt-get download` and unpacked under ~/.cache/lifeline/kcat, nothing installed.
 */
export function kcatCommand(): { bin: string; env: NodeJS.ProcessEnv } {
  if (existsSync("/usr/bin/kcat")) return { bin: "/usr/bin/kcat", env: process.env };
  const root = join(homedir(), ".cache", "lifeline", "kcat");
  const bin = join(root, "usr", "bin", "kcat");
  if (!existsSync(bin)) {
    mkdirSync(join(homedir(), ".cache", "lifeline"), { recursive: true });
    const work = mkdtempSync(`${root}-`);
    try {
      execFileSync("apt-get", ["download", "kcat", "librdkafka1", "libyajl2"], { cwd: work, stdio: "pipe" });
      const unpacked = join(work, "root");
      for (const deb of readdirSync(work).filter((name) => name.endsWith(".deb")))
        execFileSync("dpkg-deb", ["-x", join(work, deb), unpacked]);
      // Another worker may have finished first: either copy is the same.
      if (!existsSync(bin)) renameSync(unpacked, root);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return { bin, env: { ...process.env, LD_LIBRARY_PATH: join(root, "usr", "lib", "x86_64-linux-gnu") } };
}

/** Every record of a topic, from its beginning to its end now, as kcat prints them: one value per line. */
export async function kcatConsume(topic: string): Promise<string[]> {
  const { bin, env } = kcatCommand();
  const kafka = connections().kafka as {
    brokers: string[];
    sasl?: { mechanism: string; username: string; password: string };
    tls?: unknown;
  };
  const args = ["-C", "-b", kafka.brokers.join(","), "-t", topic, "-o", "beginning", "-e", "-q", "-u"];
  if (kafka.sasl)
    args.push(
      "-X",
      `security.protocol=${kafka.tls ? "SASL_SSL" : "SASL_PLAINTEXT"}`,
      "-X",
      `sasl.mechanisms=${kafka.sasl.mechanism.toUpperCase()}`,
      "-X",
      `sasl.username=${kafka.sasl.username}`,
      "-X",
      `sasl.password=${kafka.sasl.password}`,
    );
  // A record per line: values hold no raw newline unless several documents were packed into one.
  args.push("-f", "%s\\n--end of record--\\n");
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(bin, args, { env, maxBuffer: 256 << 20 }, (error, out, err) =>
      error ? reject(new Error(`kcat: ${error.message}\n${err}`)) : resolve(out),
    ),
  );
  return stdout.split("\n--end of record--\n").slice(0, -1);
}
