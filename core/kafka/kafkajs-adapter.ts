import "./kafkajs-setup.ts";
import { CompressionTypes, type Kafka } from "kafkajs";
import { murmur2Partitioner } from "./partitioner.ts";
import {
  type Compression,
  type KafkaAdmin,
  type KafkaConsumer,
  type KafkaPort,
  type KafkaProducer,
  OffsetOutOfRangeError,
  type PartitionReader,
} from "./port.ts";

export const KAFKAJS_COMPRESSION = {
  zstd: CompressionTypes.ZSTD,
  gzip: CompressionTypes.GZIP,
  none: CompressionTypes.None,
} as const satisfies Record<Compression, CompressionTypes>;

/** The clients behind ports made here, for core/kafka's own modules (the batch producer) and nothing else. */
const clients = new WeakMap<KafkaPort, Kafka>();

/** The port over a kafkajs client (kafkajs 2.2.4 with Lifeline's patch, core/kafka/kafkajs-setup.ts). */
export function kafkajsPort(kafka: Kafka): KafkaPort {
  const port: KafkaPort = {
    partitionReader(): PartitionReader {
      // The patch's addition: kafkajs's own Metadata, ListOffsets and Fetch, without a consumer group.
      const reader = kafka.partitionReader();
      const TIMESTAMP = { earliest: -2, latest: -1 } as const;
      return {
        partitions: (topic) => reader.partitions(topic),
        authorizedOperations: async (topics) => (await reader.authorizedOperations(topics)) ?? undefined,
        async offset(topic, partition, at) {
          if (typeof at === "string") return reader.offset(topic, partition, TIMESTAMP[at]);
          const found = await reader.offset(topic, partition, at.timestampMs);
          return found === "-1" ? reader.offset(topic, partition, TIMESTAMP.latest) : found;
        },
        async fetch({ topic, partition, offset, maxWaitMs, maxBytes = 1 << 20 }) {
          try {
            const { messages, highWatermark } = await reader.fetch({
              topic,
              partition,
              offset,
              maxWaitTime: maxWaitMs,
              maxBytes,
            });
            return { messages, highWatermark };
          } catch (error) {
            if ((error as { type?: string }).type === "OFFSET_OUT_OF_RANGE")
              throw new OffsetOutOfRangeError(topic, partition, offset);
            throw error;
          }
        },
        async fetchMany({ topic, positions, maxWaitMs, maxBytes = 1 << 20 }) {
          try {
            return await reader.fetchMany({ topic, positions, maxWaitTime: maxWaitMs, maxBytes });
          } catch (error) {
            const { type, partition } = error as { type?: string; partition?: number };
            if (type === "OFFSET_OUT_OF_RANGE" && partition !== undefined)
              throw new OffsetOutOfRangeError(
                topic,
                partition,
                positions.find((p) => p.partition === partition)?.offset ?? "?",
              );
            throw error;
          }
        },
        close: () => reader.disconnect(),
      };
    },
    producer(options = {}): KafkaProducer {
      const producer = kafka.producer({
        idempotent: options.idempotent ?? true,
        maxInFlightRequests: options.maxInFlightRequests ?? 1,
        // Keyed messages where kafkajs's default partitioner puts them, hashed without its 64-bit Long objects.
        createPartitioner: murmur2Partitioner,
      });
      return {
        connect: () => producer.connect(),
        disconnect: () => producer.disconnect(),
        send: ({ topic, messages, acks = -1, compression = "none" }) =>
          producer.send({ topic, messages, acks, compression: KAFKAJS_COMPRESSION[compression] }),
      };
    },
    consumer(options): KafkaConsumer {
      const consumer = kafka.consumer(options);
      return {
        connect: () => consumer.connect(),
        disconnect: () => consumer.disconnect(),
        stop: () => consumer.stop(),
        subscribe: (subscription) => consumer.subscribe(subscription),
        run: (handlers) => consumer.run(handlers),
        commitOffsets: (offsets) => consumer.commitOffsets(offsets),
        seek: (position) => consumer.seek(position),
        firstFetch: () =>
          new Promise<void>((resolve) => {
            const remove = consumer.on(consumer.events.FETCH, () => {
              remove();
              resolve();
            });
          }),
        onGroupJoin: (listener) =>
          consumer.on(consumer.events.GROUP_JOIN, ({ payload }) =>
            listener({
              groupId: payload.groupId,
              memberId: payload.memberId,
              memberAssignment: payload.memberAssignment,
            }),
          ),
      };
    },
    admin(): KafkaAdmin {
      const admin = kafka.admin();
      return {
        connect: () => admin.connect(),
        disconnect: () => admin.disconnect(),
        listTopics: () => admin.listTopics(),
        createTopics: (request) => admin.createTopics(request),
        deleteTopics: (request) => admin.deleteTopics(request),
        fetchTopicMetadata: (request) => admin.fetchTopicMetadata(request),
        fetchTopicOffsets: (topic) => admin.fetchTopicOffsets(topic),
        fetchTopicOffsetsByTimestamp: (topic, timestampMs) =>
          admin.fetchTopicOffsetsByTimestamp(topic, timestampMs),
        fetchOffsets: (request) => admin.fetchOffsets(request),
        describeCluster: () => admin.describeCluster(),
        listGroups: async () => (await admin.listGroups()).groups.map((g) => g.groupId),
        deleteGroups: async (groupIds) => void (await admin.deleteGroups(groupIds)),
      };
    },
  };
  clients.set(port, kafka);
  return port;
}

/** The kafkajs client behind a port, for core/kafka's batch producer; a port from elsewhere has none. */
export function kafkajsOf(port: KafkaPort): Kafka {
  const kafka = clients.get(port);
  if (!kafka) throw new Error("this Kafka port has no kafkajs client behind it");
  return kafka;
}
