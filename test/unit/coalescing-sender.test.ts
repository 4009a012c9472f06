import { describe, expect, it } from "vitest";
import { CoalescingSender } from "../../core/kafka/coalescing-sender.ts";
import type { KafkaProducer, OutboundMessage } from "../../core/kafka/port.ts";

/** A producer that records each request and answers when told: the batching logic alone, no Kafka. */
function recordingProducer() {
  const requests: Array<{ messages: OutboundMessage[]; answer: (error?: Error) => void }> = [];
  let notify = () => {};
  const producer: KafkaProducer = {
    connect: async () => {},
    disconnect: async () => {},
    send: (request) =>
      new Promise((resolve, reject) => {
        requests.push({
          messages: request.messages,
          answer: (error) => (error ? reject(error) : resolve(undefined)),
        });
        notify();
      }),
  };
  const next = (count: number) =>
    new Promise<void>((resolve) => {
      if (requests.length >= count) resolve();
      else notify = () => requests.length >= count && resolve();
    });
  return { producer, requests, next };
}

describe("CoalescingSender", () => {
  it("sends what arrives during a request in the next one, in order, each caller settled by its request", async () => {
    const { producer, requests, next } = recordingProducer();
    const sender = new CoalescingSender(producer, "t");
    const settled: string[] = [];
    const first = ["a", "b"].map((v) => sender.send({ value: v }).then(() => settled.push(v)));
    await next(1);
    expect(requests[0]?.messages.map((m) => m.value)).toEqual(["a", "b"]);
    const later = ["c", "d", "e"].map((v) => sender.send({ value: v }).then(() => settled.push(v)));
    requests[0]?.answer();
    await Promise.all(first);
    expect(settled).toEqual(["a", "b"]);
    await next(2);
    expect(requests[1]?.messages.map((m) => m.value)).toEqual(["c", "d", "e"]);
    requests[1]?.answer();
    await Promise.all(later);
    expect(settled).toEqual(["a", "b", "c", "d", "e"]);
  });

  it("keeps a request under maxBytes and maxBatch, and a failed request fails only its own messages", async () => {
    const { producer, requests, next } = recordingProducer();
    const sender = new CoalescingSender(producer, "t", { maxBatch: 3, maxBytes: 1_000 });
    const big = "x".repeat(600);
    const results = [big, big, "s1", "s2", "s3", "s4"].map((v) =>
      sender.send({ value: v }).then(
        () => "ok",
        (error: Error) => error.message,
      ),
    );
    await next(1);
    expect(requests[0]?.messages.length).toBe(1);
    requests[0]?.answer(new Error("too large"));
    await next(2);
    expect(requests[1]?.messages.map((m) => String(m.value).slice(0, 2))).toEqual(["xx", "s1", "s2"]);
    requests[1]?.answer();
    await next(3);
    expect(requests[2]?.messages.map((m) => m.value)).toEqual(["s3", "s4"]);
    requests[2]?.answer();
    expect(await Promise.all(results)).toEqual(["too large", "ok", "ok", "ok", "ok", "ok"]);
  });
});
