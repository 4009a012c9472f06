import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { PermanentError } from "../core/errors.ts";
import type { BatchProducer } from "../core/kafka/batch-producer.ts";
import type { Component } from "../core/lifecycle.ts";
import type { Logger } from "../core/logger.ts";
import type { HealthReport } from "../core/observability/http.ts";
import type { CollectorConfig } from "./config.ts";
import type { CollectorMetrics } from "./metrics.ts";
import {
  type Conversion,
  convertLogs,
  convertTraces,
  decodeRequest,
  type Encoding,
  encodeStatus,
  encodeSuccess,
  type Signal,
} from "./otlp.ts";

const gunzipAsync = promisify(gunzip);
const ROUTES: Record<string, Signal> = { "/v1/traces": "traces", "/v1/logs": "logs" };
const CONTENT_TYPES: Record<string, Encoding> = {
  "application/x-protobuf": "protobuf",
  "application/protobuf": "protobuf",
  "application/json": "json",
};
// google.rpc.Code values for the Status body.
const RPC = { invalidArgument: 3, resourceExhausted: 8, unavailable: 14 };

/** An answer other than 200: the HTTP status, a Status message, and Retry-After for the retryable ones. */
class Refusal extends Error {
  readonly status: number;
  readonly rpcCode: number;
  readonly retryAfterSeconds: number | undefined;
  constructor(status: number, rpcCode: number, message: string, retryAfterSeconds?: number) {
    super(message);
    this.status = status;
    this.rpcCode = rpcCode;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * The OTLP/HTTP receiver. A request is answered 200 only after Kafka acknowledged every record it produced;
 * while Kafka cannot take data the answer is 503 (or 429 when the in-flight budget is spent), with Retry-After,
 * so the client keeps the data and retries. A retried request yields the same document ids (derived from trace
 * and span ids), so the index stays exact.
 */
export class OtlpReceiver implements Component {
  readonly name = "otlp-receiver";
  private server: Server | undefined;
  private readonly active = new Set<Promise<void>>();
  private readonly config: CollectorConfig;
  private readonly producer: BatchProducer;
  private readonly logger: Logger;
  private readonly metrics: CollectorMetrics;
  port = 0;

  constructor(options: {
    config: CollectorConfig;
    producer: BatchProducer;
    logger: Logger;
    metrics: CollectorMetrics;
  }) {
    this.config = options.config;
    this.producer = options.producer;
    this.logger = options.logger;
    this.metrics = options.metrics;
  }

  async start(): Promise<void> {
    const server = createServer((request, response) => {
      const handled = this.handle(request, response);
      this.active.add(handled);
      void handled.finally(() => this.active.delete(handled));
    });
    server.requestTimeout = this.config.limits.ackTimeoutMs + 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.config.listen.port, this.config.listen.host, () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.logger.info({ host: this.config.listen.host, port: this.port }, "OTLP/HTTP receiver listening");
  }

  /** No new requests; those in progress get their answer (they wait for Kafka), then the server closes. */
  async stop(deadline: AbortSignal): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await Promise.race([
      Promise.all(this.active),
      new Promise((resolve) => deadline.addEventListener("abort", resolve, { once: true })),
    ]);
    server.closeAllConnections();
    await closed;
  }

  health(): HealthReport {
    return {
      healthy: this.server !== undefined && this.producer.healthy,
      details: {
        listening: this.server !== undefined,
        kafka: this.producer.healthy ? "ok" : (this.producer.lastError ?? "failing"),
        inflightBytes: this.producer.inflightBytes,
      },
    };
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const began = performance.now();
    const path = (request.url ?? "/").split("?")[0] ?? "/";
    const signal = ROUTES[path];
    const mediaType = (request.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
    const encoding: Encoding = CONTENT_TYPES[mediaType] ?? "json";
    let status = 200;
    try {
      if (!signal)
        throw new Refusal(
          404,
          RPC.invalidArgument,
          `no OTLP endpoint at ${path}; use /v1/traces or /v1/logs`,
        );
      if (request.method !== "POST") {
        response.setHeader("allow", "POST");
        throw new Refusal(405, RPC.invalidArgument, `${request.method} is not allowed; OTLP/HTTP uses POST`);
      }
      if (!CONTENT_TYPES[mediaType]) {
        throw new Refusal(
          415,
          RPC.invalidArgument,
          `unsupported content type "${mediaType}"; use application/x-protobuf or application/json`,
        );
      }
      const body = await this.readBody(request);
      const decoded = decodeRequest(signal, encoding, body);
      const conversion = signal === "traces" ? convertTraces(decoded) : convertLogs(decoded);
      if (conversion.rejected > 0) this.metrics.itemsRejected.inc({ signal }, conversion.rejected);
      await this.produce(signal, conversion);
      this.metrics.itemsAccepted.inc({ signal }, conversion.records.length);
      response
        .writeHead(200, { "content-type": CONTENT_TYPE_OF[encoding] })
        .end(encodeSuccess(signal, encoding, conversion));
    } catch (error) {
      const refusal =
        error instanceof Refusal
          ? error
          : error instanceof PermanentError
            ? new Refusal(400, RPC.invalidArgument, error.message)
            : new Refusal(500, RPC.unavailable, `internal error: ${(error as Error).message}`);
      status = refusal.status;
      if (refusal.status >= 500) this.logger.warn({ err: refusal.message, path }, "OTLP request refused");
      if (refusal.retryAfterSeconds !== undefined)
        response.setHeader("retry-after", String(refusal.retryAfterSeconds));
      // A body left unread (refused before reading) would stall a keep-alive connection: close it instead.
      if (!request.complete) response.setHeader("connection", "close");
      response
        .writeHead(refusal.status, { "content-type": CONTENT_TYPE_OF[encoding] })
        .end(encodeStatus(encoding, refusal.rpcCode, refusal.message));
    } finally {
      this.metrics.requests.inc({ signal: signal ?? "none", status });
      this.metrics.requestSeconds.observe({ signal: signal ?? "none" }, (performance.now() - began) / 1000);
    }
  }

  private async readBody(request: IncomingMessage): Promise<Buffer> {
    const limit = this.config.limits.maxRequestBytes;
    const declared = Number(request.headers["content-length"] ?? Number.NaN);
    const tooLarge = () =>
      new Refusal(413, RPC.invalidArgument, `request body larger than ${limit} bytes; send smaller batches`);
    if (declared > limit) throw tooLarge();
    const encodingHeader = (request.headers["content-encoding"] ?? "identity").toLowerCase();
    if (encodingHeader !== "gzip" && encodingHeader !== "identity") {
      throw new Refusal(
        415,
        RPC.invalidArgument,
        `unsupported content encoding "${encodingHeader}"; use gzip or none`,
      );
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw tooLarge();
      chunks.push(chunk);
    }
    const body = Buffer.concat(chunks, size);
    if (encodingHeader !== "gzip") return body;
    const maxOutputLength = this.config.limits.maxDecompressedBytes;
    try {
      return await gunzipAsync(body, { maxOutputLength });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE" || error instanceof RangeError) {
        throw new Refusal(
          413,
          RPC.invalidArgument,
          `request body larger than ${maxOutputLength} bytes once decompressed`,
        );
      }
      throw new Refusal(
        400,
        RPC.invalidArgument,
        `request body is not valid gzip: ${(error as Error).message}`,
      );
    }
  }

  /** Resolves once Kafka acknowledged every record; refuses (retryable) when Kafka cannot take them. */
  private async produce(signal: Signal, conversion: Conversion): Promise<void> {
    const records = conversion.records;
    if (records.length === 0) return;
    if (!this.producer.healthy) {
      throw new Refusal(
        503,
        RPC.unavailable,
        `Kafka is unavailable (${this.producer.lastError ?? "failing"}); retry later`,
        5,
      );
    }
    const bytes = records.reduce((sum, record) => sum + record.value.length, 0);
    if (this.producer.inflightBytes + bytes > this.config.limits.inflightBytes) {
      throw new Refusal(429, RPC.resourceExhausted, "too much data waiting for Kafka; retry later", 1);
    }
    const topic = `${this.config.topicPrefix}.${signal === "traces" ? "spans" : "logs"}`;
    let waiting = records.length;
    let timer: NodeJS.Timeout | undefined;
    const acknowledged = new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Refusal(
              503,
              RPC.unavailable,
              `Kafka did not acknowledge within ${this.config.limits.ackTimeoutMs} ms; retry later`,
              5,
            ),
          ),
        this.config.limits.ackTimeoutMs,
      );
      for (const record of records) {
        this.producer.enqueue({
          topic,
          key: record.key,
          value: record.value,
          onAck: () => {
            if (--waiting === 0) resolve();
          },
        });
      }
    });
    this.metrics.inflightBytes.set(this.producer.inflightBytes);
    try {
      await acknowledged;
    } finally {
      clearTimeout(timer);
      this.metrics.inflightBytes.set(this.producer.inflightBytes);
    }
  }
}

const CONTENT_TYPE_OF: Record<Encoding, string> = {
  protobuf: "application/x-protobuf",
  json: "application/json",
};
