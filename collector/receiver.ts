import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { PermanentError } from "../core/errors.ts";
import type { Component } from "../core/lifecycle.ts";
import { type Encoding, encodeStatus, encodeSuccess, type Signal } from "./otlp.ts";
import { Refusal, RPC } from "./pipeline.ts";
import { OtlpReceiverBase } from "./receiver-base.ts";

const gunzipAsync = promisify(gunzip);
const ROUTES: Record<string, Signal> = {
  "/v1/traces": "traces",
  "/v1/logs": "logs",
  "/v1/metrics": "metrics",
};
const CONTENT_TYPES: Record<string, Encoding> = {
  "application/x-protobuf": "protobuf",
  "application/protobuf": "protobuf",
  "application/json": "json",
};
/**
 * The OTLP/HTTP receiver. A request is answered 200 only after Kafka acknowledged every record it produced;
 * while Kafka cannot take data the answer is 503 (or 429 when the in-flight budget is spent), with Retry-After,
 * so the client keeps the data and retries. A retried request yields the same document ids (derived from trace
 * and span ids), so the index stays exact.
 */
export class OtlpReceiver extends OtlpReceiverBase implements Component {
  readonly name = "otlp-receiver";
  private server: Server | undefined;
  private readonly active = new Set<Promise<void>>();

  async start(): Promise<void> {
    const listener = (request: IncomingMessage, response: ServerResponse) => {
      const handled = this.handle(request, response);
      this.active.add(handled);
      void handled.finally(() => this.active.delete(handled));
    };
    const { tls } = this.config;
    const server: Server = tls
      ? createTlsServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, listener)
      : createServer(listener);
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

  get listening(): boolean {
    return this.server !== undefined;
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
          `no OTLP endpoint at ${path}; use /v1/traces, /v1/logs or /v1/metrics`,
        );
      if (request.method !== "POST") {
        response.setHeader("allow", "POST");
        throw new Refusal(405, RPC.invalidArgument, `${request.method} is not allowed; OTLP/HTTP uses POST`);
      }
      if (!this.authorized(request.headers.authorization)) {
        response.setHeader("www-authenticate", "Bearer");
        throw new Refusal(401, RPC.unauthenticated, "missing or wrong bearer token (Authorization header)");
      }
      if (!CONTENT_TYPES[mediaType]) {
        throw new Refusal(
          415,
          RPC.invalidArgument,
          `unsupported content type "${mediaType}"; use application/x-protobuf or application/json`,
        );
      }
      const body = await this.readBody(request);
      const conversion = await this.pipeline.export(signal, encoding, body);
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
        .end(encodeStatus(encoding, refusal.rpcCode, refusal.message, refusal.retryAfterSeconds));
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
}

const CONTENT_TYPE_OF: Record<Encoding, string> = {
  protobuf: "application/x-protobuf",
  json: "application/json",
};
