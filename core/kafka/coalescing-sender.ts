/**
 * Sends one topic's messages in batches without a linger: a message sent while a request is in flight goes in
 * the next request, with everything else that arrived meanwhile, and each caller's promise settles with the
 * request that carried its message (acks=all). One request in flight per topic keeps the messages in the order
 * they were sent. What 10,000 concurrent steps cost becomes a handful of requests instead of 10,000 round trips.
 */
import type { KafkaProducer, OutboundMessage } from "./port.ts";

interface Waiting {
  message: OutboundMessage;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class CoalescingSender {
  private queue: Waiting[] = [];
  private sending = false;
  private readonly producer: KafkaProducer;
  readonly topic: string;
  /** At most this many messages in one request. */
  private readonly maxBatch: number;
  /**
   * At most about this many bytes of keys and values in one request: a partition's batch must stay under the
   * broker's message.max.bytes (1 MiB by default), and one message alone may be as large as that allows.
   */
  private readonly maxBytes: number;

  constructor(
    producer: KafkaProducer,
    topic: string,
    options: { maxBatch?: number; maxBytes?: number } = {},
  ) {
    this.producer = producer;
    this.topic = topic;
    this.maxBatch = options.maxBatch ?? 2_000;
    this.maxBytes = options.maxBytes ?? 512 * 1024;
  }

  /** Resolves once Kafka acknowledged this message; rejects with the error of the request that carried it. */
  send(message: OutboundMessage): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ message, resolve, reject });
      if (!this.sending) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.sending = true;
    // What the current turn of the event loop sends joins the first request too.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.takeCount());
      try {
        await this.producer.send({ topic: this.topic, acks: -1, messages: batch.map((w) => w.message) });
        for (const waiting of batch) waiting.resolve();
      } catch (error) {
        for (const waiting of batch) waiting.reject(error as Error);
      }
    }
    this.sending = false;
  }

  /** How many queued messages the next request carries: at least one, within maxBatch and maxBytes. */
  private takeCount(): number {
    let bytes = 0;
    let count = 0;
    for (const { message } of this.queue) {
      const size = sizeOf(message.value) + sizeOf(message.key) + 64;
      if (count > 0 && (count >= this.maxBatch || bytes + size > this.maxBytes)) break;
      bytes += size;
      count++;
    }
    return count;
  }
}

function sizeOf(value: string | Buffer | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === "string" ? Buffer.byteLength(value) : value.length;
}
