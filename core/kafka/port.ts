/**
 * Lifeline's Kafka port: the only Kafka API components, tests' helpers and benchmarks see. Its shape follows the
 * KafkaJS-style API that kafkajs and @confluentinc/kafka-javascript's compatibility layer share, narrowed to what
 * Lifeline uses, in Lifeline's own types; one adapter implements it (core/kafka/kafkajs-adapter.ts). Only files in
 * core/kafka import a Kafka client. docs/kafka-client.md says which client and why.
 */

export type Compression = "zstd" | "gzip" | "none";

export interface OutboundMessage {
  key?: string | Buffer | null;
  value: string | Buffer | null;
  headers?: Record<string, string | Buffer>;
  partition?: number;
}

export interface KafkaProducer {
  connect(): Promise<void>;
  /** Resolves once Kafka acknowledged every message (acks: -1 = all in-sync replicas, the default here). */
  send(request: {
    topic: string;
    messages: OutboundMessage[];
    acks?: -1 | 0 | 1;
    compression?: Compression;
  }): Promise<unknown>;
  disconnect(): Promise<void>;
}

export type InboundHeaders = Record<string, Buffer | string | Array<Buffer | string> | undefined>;

export interface InboundMessage {
  key: Buffer | null;
  value: Buffer | null;
  offset: string;
  timestamp: string;
  headers?: InboundHeaders;
}

export interface InboundBatch {
  topic: string;
  partition: number;
  highWatermark: string;
  messages: InboundMessage[];
}

/** One fetched batch of one partition, and what its handler may do while it works on it. */
export interface BatchContext {
  batch: InboundBatch;
  /** Keeps the group membership while a batch takes long (retries). */
  heartbeat(): Promise<void>;
  /** False once the consumer is stopping. */
  isRunning(): boolean;
  /** True once a rebalance took the partition away: its new owner gets the batch again. */
  isStale(): boolean;
  /** Moves the fetch position past `offset` (the commit makes it survive a restart). */
  resolveOffset(offset: string): void;
}

export interface ConsumerOptions {
  groupId: string;
  sessionTimeout?: number;
  heartbeatInterval?: number;
  maxBytesPerPartition?: number;
  maxBytes?: number;
}

export interface GroupJoin {
  groupId: string;
  memberId: string;
  memberAssignment: Record<string, number[]>;
}

export interface KafkaConsumer {
  connect(): Promise<void>;
  subscribe(
    subscription: { topic: string; fromBeginning: boolean } | { topics: string[]; fromBeginning: boolean },
  ): Promise<void>;
  run(handlers: {
    autoCommit?: boolean;
    eachBatchAutoResolve?: boolean;
    partitionsConsumedConcurrently?: number;
    eachMessage?: (payload: { topic: string; partition: number; message: InboundMessage }) => Promise<void>;
    eachBatch?: (context: BatchContext) => Promise<void>;
  }): Promise<void>;
  /** Commits the offsets of the next messages to read. */
  commitOffsets(offsets: Array<{ topic: string; partition: number; offset: string }>): Promise<void>;
  /** Moves a partition's position (once `run` has started). */
  seek(position: { topic: string; partition: number; offset: string }): void;
  /**
   * Resolves after the next completed fetch: the readiness signal. Once `run` has started, the first one proves
   * the group's positions are resolved, so a message sent after it is seen (a new group starts at the end).
   */
  firstFetch(): Promise<void>;
  onGroupJoin(listener: (joined: GroupJoin) => void): () => void;
  /** Stops fetching, after the batches being handled return; the group membership is kept until disconnect. */
  stop(): Promise<void>;
  disconnect(): Promise<void>;
}

export interface PartitionOffsets {
  partition: number;
  /** The next offset to be written (the end). */
  high: string;
  low: string;
}

export interface KafkaAdmin {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  listTopics(): Promise<string[]>;
  createTopics(request: {
    topics: Array<{
      topic: string;
      numPartitions?: number;
      replicationFactor?: number;
      configEntries?: Array<{ name: string; value: string }>;
    }>;
    waitForLeaders?: boolean;
  }): Promise<boolean>;
  deleteTopics(request: { topics: string[]; timeout?: number }): Promise<void>;
  fetchTopicMetadata(request: { topics: string[] }): Promise<{
    topics: Array<{
      name: string;
      partitions: Array<{ partitionId: number; leader: number; partitionErrorCode: number }>;
    }>;
  }>;
  fetchTopicOffsets(topic: string): Promise<PartitionOffsets[]>;
  /** Per partition, the first offset at or after `timestampMs` ("-1": none yet). */
  fetchTopicOffsetsByTimestamp(
    topic: string,
    timestampMs?: number,
  ): Promise<Array<{ partition: number; offset: string }>>;
  /** A group's committed offsets ("-1": none). */
  fetchOffsets(request: {
    groupId: string;
    topics: string[];
  }): Promise<Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>>;
  /** Every consumer group's id the cluster knows. */
  listGroups(): Promise<string[]>;
  /** Deletes groups with no members (their committed offsets with them). */
  deleteGroups(groupIds: string[]): Promise<void>;
  describeCluster(): Promise<{
    clusterId: string;
    brokers: Array<{ nodeId: number; host: string; port: number }>;
  }>;
}

/** A fetch position that is no longer (or not yet) in the partition: retention removed it, or the topic was made again. */
export class OffsetOutOfRangeError extends Error {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  constructor(topic: string, partition: number, offset: string) {
    super(`offset ${offset} is out of range in ${topic} partition ${partition}`);
    this.name = "OffsetOutOfRangeError";
    this.topic = topic;
    this.partition = partition;
    this.offset = offset;
  }
}

/**
 * One partition read without a consumer group: the reader keeps its position itself, and the broker keeps nothing
 * for it (no group, no committed offsets). The agent reads its host's partition of the control topic this way.
 */
export interface PartitionReader {
  /** The topic's partition count, from fresh metadata. */
  partitions(topic: string): Promise<number>;
  /** The partition's first offset, its end (the next offset to be written), or the first offset at or after a time (the end if none). */
  offset(
    topic: string,
    partition: number,
    at: "earliest" | "latest" | { timestampMs: number },
  ): Promise<string>;
  /**
   * The messages at and after `offset`, waiting up to `maxWaitMs` for the first (then empty). Throws
   * OffsetOutOfRangeError when the position is not in the partition.
   */
  fetch(request: {
    topic: string;
    partition: number;
    offset: string;
    maxWaitMs: number;
    maxBytes?: number;
  }): Promise<{ messages: InboundMessage[]; highWatermark: string }>;
  /**
   * Several partitions of one topic in one long poll (one request per leader broker): what each has at and after
   * its offset, waiting up to `maxWaitMs` for the first message of any. Throws OffsetOutOfRangeError naming the
   * partition whose position is not in it.
   */
  fetchMany(request: {
    topic: string;
    positions: Array<{ partition: number; offset: string }>;
    maxWaitMs: number;
    maxBytes?: number;
  }): Promise<Array<{ partition: number; messages: InboundMessage[]; highWatermark: string }>>;
  /**
   * What the broker lets this client do to each topic (its authorized operations: READ, WRITE, DESCRIBE ...) and
   * whether each exists, asked without creating a missing topic and without writing anything. undefined when the
   * broker cannot say (older than Metadata v8).
   */
  authorizedOperations(topics: string[]): Promise<TopicAuthorizations | undefined>;
  close(): Promise<void>;
}

export interface TopicAuthorizations {
  clusterId: string;
  /** The cluster's authorized operations (CREATE lets a component create its missing topics); null: not said. */
  cluster: string[] | null;
  topics: Array<{
    topic: string;
    /** The broker's error for this topic: UNKNOWN_TOPIC_OR_PARTITION, TOPIC_AUTHORIZATION_FAILED ...; null when none. */
    error: string | null;
    partitions: number;
    /** Partitions without a leader (nothing can be written to or read from them now). */
    leaderless: number;
    operations: string[] | null;
  }>;
}

export interface KafkaPort {
  /** Idempotent producers with acks=all are what Lifeline sends with; one request in flight each. */
  producer(options?: { idempotent?: boolean; maxInFlightRequests?: number }): KafkaProducer;
  consumer(options: ConsumerOptions): KafkaConsumer;
  admin(): KafkaAdmin;
  /** A group-less reader of single partitions (a connection of its own). */
  partitionReader(): PartitionReader;
}
