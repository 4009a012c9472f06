import { readFileSync } from "node:fs";
import {
  Metadata,
  Server,
  ServerCredentials,
  type ServerErrorResponse,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
  status,
} from "@grpc/grpc-js";
import type { Component } from "../core/lifecycle.ts";
import { encodeStatus, encodeSuccess, type Signal } from "./otlp.ts";
import { Refusal, RPC } from "./pipeline.ts";
import { OtlpReceiverBase } from "./receiver-base.ts";

const SERVICES: Record<Signal, string> = {
  traces: "opentelemetry.proto.collector.trace.v1.TraceService",
  logs: "opentelemetry.proto.collector.logs.v1.LogsService",
  metrics: "opentelemetry.proto.collector.metrics.v1.MetricsService",
};

/**
 * The service's one method, Export, with the request and response as raw protobuf bytes: the body is decoded by
 * the same code as an OTLP/HTTP protobuf body (collector/otlp.ts), not by a second generated schema.
 */
function exportService(signal: Signal): ServiceDefinition {
  const identity = (bytes: Buffer) => bytes;
  return {
    Export: {
      path: `/${SERVICES[signal]}/Export`,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
      originalName: "export",
    },
  };
}

/**
 * The OTLP/gRPC receiver: the same pipeline and semantics as OTLP/HTTP. OK (with partial success) only once Kafka
 * acknowledged every record; UNAVAILABLE or RESOURCE_EXHAUSTED with a google.rpc.RetryInfo while Kafka cannot
 * take data, so the client keeps the data and retries; INVALID_ARGUMENT for a message that is not OTLP;
 * UNAUTHENTICATED without the configured bearer token. Message size is limited by grpc-js (RESOURCE_EXHAUSTED
 * beyond limits.maxRequestBytes); gzip-compressed messages are accepted.
 */
export class OtlpGrpcReceiver extends OtlpReceiverBase implements Component {
  readonly name = "otlp-grpc-receiver";
  private server: Server | undefined;

  get listening(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<void> {
    const server = new Server({
      "grpc.max_receive_message_length": this.config.limits.maxRequestBytes,
      "grpc-node.flow_control_window": flowControlWindow(this.config.limits.maxRequestBytes),
    });
    for (const signal of ["traces", "logs", "metrics"] as const) {
      server.addService(exportService(signal), {
        Export: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) =>
          void this.handle(signal, call, callback),
      });
    }
    const { tls } = this.config;
    const credentials = tls
      ? ServerCredentials.createSsl(null, [
          { cert_chain: readFileSync(tls.certFile), private_key: readFileSync(tls.keyFile) },
        ])
      : ServerCredentials.createInsecure();
    const { host, port } = this.config.grpc;
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${host.includes(":") ? `[${host}]` : host}:${port}`, credentials, (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    this.server = server;
    this.logger.info({ host, port: this.port, tls: Boolean(tls) }, "OTLP/gRPC receiver listening");
  }

  /** No new calls; those in progress get their answer within the deadline, then the rest are cancelled. */
  async stop(deadline: AbortSignal): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const force = () => {
        server.forceShutdown();
        resolve();
      };
      deadline.addEventListener("abort", force, { once: true });
      server.tryShutdown(() => {
        deadline.removeEventListener("abort", force);
        resolve();
      });
    });
  }

  private async handle(
    signal: Signal,
    call: ServerUnaryCall<Buffer, Buffer>,
    callback: sendUnaryData<Buffer>,
  ): Promise<void> {
    const began = performance.now();
    let code: number = status.OK;
    try {
      const authorization = call.metadata.get("authorization")[0];
      if (!this.authorized(typeof authorization === "string" ? authorization : undefined)) {
        code = status.UNAUTHENTICATED;
        callback({ code, details: "missing or wrong bearer token (Authorization metadata)" });
        return;
      }
      const conversion = await this.pipeline.export(signal, "protobuf", call.request);
      callback(null, encodeSuccess(signal, "protobuf", conversion) as Buffer);
    } catch (error) {
      const refusal =
        error instanceof Refusal
          ? error
          : new Refusal(500, RPC.unavailable, `internal error: ${(error as Error).message}`);
      code = refusal.rpcCode;
      if (refusal.rpcCode !== RPC.invalidArgument)
        this.logger.warn({ err: refusal.message, signal }, "OTLP/gRPC request refused");
      callback(grpcError(refusal));
    } finally {
      this.metrics.requests.inc({ signal, status: `grpc_${code}` });
      this.metrics.requestSeconds.observe({ signal }, (performance.now() - began) / 1000);
    }
  }
}

/**
 * The HTTP/2 receive window the server advertises, for each call and for the connection: room for a whole
 * request of the largest size taken. Node's default is 64 KiB, so a client sending a 160 KB export waited three
 * times for a WINDOW_UPDATE; with this, gRPC is about as fast as OTLP/HTTP (bench/tuning.md). grpc-js reads the
 * option only on the client; patches/@grpc+grpc-js+1.14.7.patch makes its server read it too (grpc/grpc-node#3058,
 * not yet released). HTTP/2 bounds a window to 64 KiB - 1 ... 2^31 - 1 bytes.
 */
export function flowControlWindow(maxRequestBytes: number): number {
  return Math.min(2 ** 31 - 1, Math.max(65_535, maxRequestBytes));
}

/** The refusal as a gRPC status: google.rpc codes are gRPC's; RetryInfo in the status details when retryable. */
function grpcError(refusal: Refusal): Partial<ServerErrorResponse> {
  const metadata = new Metadata();
  if (refusal.retryAfterSeconds !== undefined) {
    metadata.set(
      "grpc-status-details-bin",
      encodeStatus("protobuf", refusal.rpcCode, refusal.message, refusal.retryAfterSeconds) as Buffer,
    );
  }
  return { code: refusal.rpcCode, details: refusal.message, metadata };
}
