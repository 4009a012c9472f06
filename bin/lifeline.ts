#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { describeError, LifelineError } from "../core/errors.ts";

interface Command {
  summary: string;
  /** Loaded on use: a command pulls in only its own component (the agent stays small). */
  run?: () => Promise<(argv: string[]) => Promise<number>>;
}

const commands: Record<string, Command> = {
  services: {
    summary: "start, check or stop local Kafka and Elasticsearch (development and tests)",
    run: async () => (await import("../local-services/main.ts")).runServices,
  },
  shipper: {
    summary: "tail service logs and lifecycle journals into Kafka",
    run: async () => (await import("../shipper/main.ts")).runShipper,
  },
  agent: {
    summary: "run signed stop/start commands for this host's declared services",
    run: async () => (await import("../agent/main.ts")).runAgent,
  },
  collector: {
    summary: "receive OTLP/HTTP traces and logs into Kafka",
    run: async () => (await import("../collector/main.ts")).runCollector,
  },
  indexer: {
    summary: "index Kafka records into Elasticsearch as ECS documents",
    run: async () => (await import("../indexer/main.ts")).runIndexer,
  },
  rollout: {
    summary: "plan (--dry-run) and run a batch stop/start across the fleet",
    run: async () => (await import("../controller/main.ts")).runRollout,
  },
  timeline: {
    summary: "print a rollout's or trace's timeline from Elasticsearch (--html for a Gantt chart)",
    run: async () => (await import("../controller/timeline-main.ts")).runTimeline,
  },
  validate: {
    summary:
      "check config files (agent, shipper, indexer, collector, rollout plan, fleet) before deploying them",
    run: async () => (await import("./validate.ts")).runValidate,
  },
  demo: {
    summary:
      "the whole story on this machine: three hosts, a rolling restart, its timeline from Elasticsearch",
    run: async () => (await import("../demo/main.ts")).runDemo,
  },
  dashboards: {
    summary: "install and check the Kibana dashboards and alerting rules",
    run: async () => (await import("../dashboards/main.ts")).runDashboards,
  },
};

function help(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = Object.entries(commands).map(
    ([name, command]) =>
      `  ${name.padEnd(width)}  ${command.summary}${command.run ? "" : " (not built yet)"}`,
  );
  return `Usage: lifeline <command> [options]

Lifeline makes every stop and start of a fleet's services traceable.

Commands:
${lines.join("\n")}

Run \`lifeline <command> --help\` for a command's options.
`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(help());
    return name ? 0 : 2;
  }
  if (name === "--version" || name === "-v") {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    process.stdout.write(`lifeline ${pkg.version}\n`);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`lifeline: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (!command.run) {
    process.stderr.write(`lifeline ${name}: not built yet in this version\n`);
    return 2;
  }
  try {
    return await (await command.run())(rest);
  } catch (error) {
    process.stderr.write(`lifeline ${name}: ${describeError(error)}\n`);
    if (!(error instanceof LifelineError) && process.env.LIFELINE_DEBUG) console.error(error);
    return error instanceof LifelineError && error.name === "ConfigError" ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
