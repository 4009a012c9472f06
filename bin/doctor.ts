/**
 * `lifeline doctor [FILE]`: what a component will meet when it starts, checked now, without changing anything: its
 * config loaded as the component loads it, Kafka reached (cluster, the component's topics, what the broker lets
 * this principal do to each), and for the indexer Elasticsearch (version, credentials, privileges, templates).
 * Every check says ok, WARN (works, but look), FAIL (will not work, and what to do) or ? (cannot be told from
 * here, and why). Nothing is written: rights are the broker's own answer (Metadata v8 authorized operations), not
 * a test record.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { resolveElastic, resolveKafka } from "../core/connections.ts";
import { createElastic, describeElastic } from "../core/elastic/client.ts";
import { describeError, UsageError } from "../core/errors.ts";
import { createKafka, describeKafka, type KafkaSettings } from "../core/kafka/client.ts";
import type { TopicAuthorizations } from "../core/kafka/port.ts";
import { settingSource } from "../core/startup.ts";
import { topicNames } from "../core/topics.ts";
import { guessKind } from "./validate.ts";

export type Status = "ok" | "WARN" | "FAIL" | "?";

export interface Check {
  status: Status;
  subject: string;
  detail: string;
}

type Component = "agent" | "shipper" | "indexer" | "collector";

/** A topic and what the component does with it. */
export interface TopicNeed {
  topic: string;
  access: "read" | "write";
}

/**
 * The verdict on each topic the component needs, from the broker's answer: it exists with leaders and the right
 * operation is allowed (ok); it is missing and the component may create it at start (WARN) or may not (FAIL); it
 * is denied or has partitions without a leader (FAIL). A broker that does not say (older than Metadata v8, or not
 * computed): the topic's existence is still known, the rights are "?".
 */
export function judgeTopics(
  component: Component,
  needs: TopicNeed[],
  authz: TopicAuthorizations | undefined,
): Check[] {
  if (!authz)
    return needs.map((need) => ({
      status: "?",
      subject: "kafka topic",
      detail: `${need.topic}: the broker does not answer Metadata v8, which tells existence and rights without writing`,
    }));
  const mayCreate = authz.cluster?.includes("CREATE");
  return needs.map(({ topic, access }): Check => {
    const found = authz.topics.find((t) => t.topic === topic);
    const operation = access === "read" ? "READ" : "WRITE";
    const subject = "kafka topic";
    if (!found || found.error === "UNKNOWN_TOPIC_OR_PARTITION") {
      if (mayCreate)
        return {
          status: "WARN",
          subject,
          detail: `${topic}: does not exist; the ${component} creates it at start (this principal may CREATE)`,
        };
      return {
        status: "FAIL",
        subject,
        detail: `${topic}: does not exist, and this principal may not create it: create it (kafka-topics.sh --create --topic ${topic} --partitions 6) or allow CREATE`,
      };
    }
    if (found.error === "TOPIC_AUTHORIZATION_FAILED")
      return {
        status: "FAIL",
        subject,
        detail: `${topic}: the broker denies this principal even DESCRIBE: allow ${operation} and DESCRIBE on it (kafka-acls.sh --add --operation ${operation} --operation Describe --topic ${topic})`,
      };
    if (found.error)
      return { status: "FAIL", subject, detail: `${topic}: the broker answers ${found.error}` };
    if (found.leaderless > 0)
      return {
        status: "FAIL",
        subject,
        detail: `${topic}: ${found.leaderless} of ${found.partitions} partitions have no leader: nothing can be ${access === "read" ? "read from" : "written to"} them now`,
      };
    if (!found.operations)
      return {
        status: "?",
        subject,
        detail: `${topic}: ${found.partitions} partitions with leaders; the broker did not say what this principal may do`,
      };
    if (!found.operations.includes(operation))
      return {
        status: "FAIL",
        subject,
        detail: `${topic}: ${operation} not allowed (allowed: ${found.operations.join(", ") || "nothing"}): kafka-acls.sh --add --operation ${operation === "READ" ? "Read" : "Write"} --topic ${topic}`,
      };
    return {
      status: "ok",
      subject,
      detail: `${topic}: ${found.partitions} partitions with leaders; ${operation} allowed`,
    };
  });
}

interface Loaded {
  component: Component;
  file: string;
  summary: string;
  kafka: KafkaSettings;
  kafkaSetting: string;
  topics: TopicNeed[];
  group?: string;
  elastic?: {
    settings: ReturnType<typeof resolveElastic>;
    setting: string;
    targets: string[];
    templates: string[];
  };
}

async function load(file: string, component: Component): Promise<Loaded> {
  const source = (inConfig: boolean, section: "kafka" | "elasticsearch") =>
    settingSource(section, { configFile: file, inConfig });
  switch (component) {
    case "agent": {
      const config = (await import("../agent/config.ts")).loadAgentConfig(file);
      return {
        component,
        file,
        summary: `agent for ${config.host.name}: ${config.services.length} services`,
        kafka: resolveKafka({ fromConfig: config.kafka ? { kafka: config.kafka } : {} }),
        kafkaSetting: source(config.kafka !== undefined, "kafka"),
        topics: [{ topic: topicNames(config.topicPrefix).control, access: "read" }],
      };
    }
    case "shipper": {
      const config = (await import("../shipper/config.ts")).loadShipperConfig(file);
      const names = topicNames(config.topicPrefix);
      const topics = [...new Set(config.inputs.map((input) => names[input.kind]))];
      return {
        component,
        file,
        summary: `shipper for ${config.host.name}: ${config.inputs.length} inputs`,
        kafka: resolveKafka({ fromConfig: config.kafka ? { kafka: config.kafka } : {} }),
        kafkaSetting: source(config.kafka !== undefined, "kafka"),
        topics: [...topics, names.deadLetter].map((topic) => ({ topic, access: "write" })),
      };
    }
    case "collector": {
      const config = (await import("../collector/config.ts")).loadCollectorConfig(file);
      return {
        component,
        file,
        summary: `collector on ${config.listen.host}:${config.listen.port}`,
        kafka: resolveKafka({ fromConfig: config.kafka ? { kafka: config.kafka } : {} }),
        kafkaSetting: source(config.kafka !== undefined, "kafka"),
        topics: (["spans", "logs", "metrics", "deadLetter"] as const).map((kind) => ({
          topic: topicNames(config.topicPrefix)[kind],
          access: "write",
        })),
      };
    }
    case "indexer": {
      const config = (await import("../indexer/config.ts")).loadIndexerConfig(file);
      const { layout } = await import("../indexer/index-setup.ts");
      const where = layout(config.namespace, config.indices.mode !== "indices");
      const targets = Object.values(where.targets);
      return {
        component,
        file,
        summary: `indexer: group ${config.groupId}, namespace ${config.namespace}`,
        kafka: resolveKafka({ fromConfig: config.kafka ? { kafka: config.kafka } : {} }),
        kafkaSetting: source(config.kafka !== undefined, "kafka"),
        topics: [
          ...(["logs", "lifecycle", "spans", "metrics"] as const).map((kind) => ({
            topic: topicNames(config.topicPrefix)[kind],
            access: "read" as const,
          })),
          { topic: topicNames(config.topicPrefix).deadLetter, access: "write" },
        ],
        group: config.groupId,
        elastic: {
          settings: resolveElastic({
            fromConfig: config.elasticsearch ? { elasticsearch: config.elasticsearch } : {},
          }),
          setting: source(config.elasticsearch !== undefined, "elasticsearch"),
          targets,
          templates: (["logs", "lifecycle", "spans", "metrics"] as const).map(
            (kind) => `lifeline-${kind}-${where.targets[kind]}`,
          ),
        },
      };
    }
  }
}

async function checkKafka(loaded: Pick<Loaded, "component" | "kafka" | "kafkaSetting" | "topics" | "group">) {
  const checks: Check[] = [];
  const address = loaded.kafka.brokers.join(",");
  try {
    const cluster = await describeKafka(loaded.kafka);
    checks.push({
      status: "ok",
      subject: "kafka",
      detail: `${address} answers: cluster ${cluster.clusterId}, brokers ${cluster.brokers.join(", ")} (set by ${loaded.kafkaSetting})`,
    });
  } catch (error) {
    checks.push({
      status: "FAIL",
      subject: "kafka",
      detail: `${describeError(error).replace("\n  hint:", ";")} (set by ${loaded.kafkaSetting})`,
    });
    return checks;
  }
  if (loaded.topics.length === 0) return checks;
  const reader = createKafka({ ...loaded.kafka, clientId: "lifeline-doctor" }).partitionReader();
  try {
    const authz = await reader.authorizedOperations(loaded.topics.map((need) => need.topic));
    checks.push(...judgeTopics(loaded.component, loaded.topics, authz));
  } catch (error) {
    checks.push({
      status: "FAIL",
      subject: "kafka topic",
      detail: `metadata refused: ${describeError(error)}`,
    });
  } finally {
    await reader.close().catch(() => {});
  }
  if (loaded.group)
    checks.push({
      status: "?",
      subject: "kafka group",
      detail: `${loaded.group}: not checked (Kafka tells a principal's group rights only when it joins): the indexer needs READ on it`,
    });
  return checks;
}

async function checkElastic(elastic: NonNullable<Loaded["elastic"]>): Promise<Check[]> {
  const checks: Check[] = [];
  const { settings } = elastic;
  try {
    const info = await describeElastic(settings);
    const major = Number(info.version.split(".")[0]);
    checks.push({
      status: major >= 8 ? "ok" : "FAIL",
      subject: "elasticsearch",
      detail: `${settings.url} answers: version ${info.version}, cluster ${info.clusterName} ${info.status} (set by ${elastic.setting})${major >= 8 ? "" : ": Lifeline needs 8 or later"}`,
    });
  } catch (error) {
    checks.push({
      status: "FAIL",
      subject: "elasticsearch",
      detail: `${describeError(error).replace("\n  hint:", ";")} (set by ${elastic.setting})`,
    });
    return checks;
  }
  const client = createElastic(settings);
  try {
    const cluster = ["monitor", "manage_index_templates"];
    const index = ["create_doc", "auto_configure", "view_index_metadata"];
    try {
      const answer = await client.security.hasPrivileges({
        cluster,
        index: [{ names: elastic.targets, privileges: index }],
      });
      const missing = [
        ...Object.entries(answer.cluster)
          .filter(([, granted]) => !granted)
          .map(([name]) => `cluster ${name}`),
        ...Object.entries(answer.index).flatMap(([target, privileges]) =>
          Object.entries(privileges)
            .filter(([, granted]) => !granted)
            .map(([name]) => `${name} on ${target}`),
        ),
      ];
      checks.push(
        missing.length === 0
          ? {
              status: "ok",
              subject: "elasticsearch",
              detail: `user ${answer.username} may ${cluster.join(", ")}, and ${index.join(", ")} on ${elastic.targets.join(", ")}`,
            }
          : {
              status: "FAIL",
              subject: "elasticsearch",
              detail: `user ${answer.username} lacks ${missing.join("; ")}: grant them in its role`,
            },
      );
    } catch (error) {
      const reason = describeError(error);
      checks.push({
        status: "?",
        subject: "elasticsearch",
        detail: /security.*(not enabled|disabled)/i.test(reason)
          ? "privileges not checked: security is off on this cluster (every request is allowed)"
          : `privileges not checked: ${reason}`,
      });
    }
    for (const name of elastic.templates) {
      const exists = await client.indices.existsIndexTemplate({ name });
      checks.push(
        exists
          ? { status: "ok", subject: "elasticsearch", detail: `index template ${name} exists` }
          : {
              status: "WARN",
              subject: "elasticsearch",
              detail: `index template ${name} missing: the indexer creates it at start (or now: lifeline indexer setup)`,
            },
      );
    }
  } finally {
    await client.close();
  }
  return checks;
}

export async function runDoctor(
  file: string | undefined,
  values: { kind?: Component; json: boolean },
): Promise<number> {
  const checks: Check[] = [];
  if (file) {
    let document: unknown;
    try {
      document = parse(readFileSync(file, "utf8"));
    } catch {
      // The loader says precisely what is wrong.
    }
    const guessed = values.kind ?? guessKind(file, document);
    if (guessed === "plan" || guessed === "fleet" || !guessed) {
      throw new UsageError(
        `${file}: ${guessed ? `a ${guessed} file` : "cannot tell which component it configures"}; doctor checks agent, shipper, indexer and collector configs (--kind names one)`,
      );
    }
    let loaded: Loaded | undefined;
    try {
      loaded = await load(file, guessed);
      checks.push({ status: "ok", subject: "config", detail: `${file}: valid ${loaded.summary}` });
    } catch (error) {
      checks.push({
        status: "FAIL",
        subject: "config",
        detail: describeError(error).replace("\n  hint:", ";"),
      });
    }
    if (loaded) {
      checks.push(...(await checkKafka(loaded)));
      if (loaded.elastic) checks.push(...(await checkElastic(loaded.elastic)));
    }
  } else {
    // No config: the servers every component would use from this environment.
    const prefix = process.env.LIFELINE_TOPIC_PREFIX ?? "lifeline";
    try {
      checks.push(
        ...(await checkKafka({
          component: "shipper",
          kafka: resolveKafka(),
          kafkaSetting: settingSource("kafka", { inConfig: false }),
          topics: [],
        })),
      );
    } catch (error) {
      checks.push({
        status: "FAIL",
        subject: "kafka",
        detail: describeError(error).replace("\n  hint:", ";"),
      });
    }
    try {
      checks.push(
        ...(await checkElastic({
          settings: resolveElastic(),
          setting: settingSource("elasticsearch", { inConfig: false }),
          targets: [`logs-lifeline.*`, `traces-lifeline-*`, `metrics-lifeline-*`],
          templates: [],
        })),
      );
    } catch (error) {
      checks.push({
        status: "FAIL",
        subject: "elasticsearch",
        detail: describeError(error).replace("\n  hint:", ";"),
      });
    }
    checks.push({
      status: "?",
      subject: "topics",
      detail: `not checked without a component's config (prefix would be ${prefix}): lifeline doctor <config file>`,
    });
  }
  const failed = checks.filter((check) => check.status === "FAIL").length;
  const warned = checks.filter((check) => check.status === "WARN").length;
  if (values.json) process.stdout.write(`${JSON.stringify({ checks, failed, warnings: warned }, null, 2)}\n`);
  else {
    for (const check of checks)
      process.stdout.write(`${check.status.padEnd(5)} ${check.subject.padEnd(14)} ${check.detail}\n`);
    process.stdout.write(
      failed === 0
        ? `no problem found${warned ? ` (${warned} warning${warned > 1 ? "s" : ""})` : ""}\n`
        : `${failed} failed${warned ? `, ${warned} warning${warned > 1 ? "s" : ""}` : ""}\n`,
    );
  }
  return failed === 0 ? 0 : 1;
}
