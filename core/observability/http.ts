import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Component } from "../lifecycle.ts";
import type { Logger } from "../logger.ts";

export interface HealthReport {
  healthy: boolean;
  /** Component-specific state, shown as JSON by /health. */
  details: Record<string, unknown>;
}

/**
 * The operations endpoint every long-running component exposes: GET /metrics (Prometheus text format) and
 * GET /health (200 when healthy, 503 otherwise, with details as JSON). A component of its own: started first,
 * stopped last, so the endpoint answers for as long as the process works.
 */
export class ObservabilityServer implements Component {
  readonly name = "http";
  /** The bound port once started (the configured one, or the system's pick for 0). */
  listeningPort = 0;
  private server: Server | undefined;
  private readonly logger: Logger | undefined;
  private readonly registry: Registry;
  private readonly health: () => HealthReport;
  private readonly host: string;
  private readonly port: number;

  constructor(options: {
    registry: Registry;
    health: () => HealthReport;
    host?: string;
    port: number;
    logger?: Logger;
  }) {
    this.logger = options.logger;
    this.registry = options.registry;
    this.health = options.health;
    this.host = options.host ?? "127.0.0.1";
    this.port = options.port;
  }

  async start(): Promise<void> {
    const server = createServer((request, response) => {
      const path = (request.url ?? "/").split("?")[0];
      if (request.method !== "GET") {
        response.writeHead(405, { allow: "GET" }).end();
      } else if (path === "/metrics") {
        this.registry.metrics().then(
          (text) => response.writeHead(200, { "content-type": this.registry.contentType }).end(text),
          (error: Error) => response.writeHead(500).end(error.message),
        );
      } else if (path === "/health") {
        const report = this.health();
        response
          .writeHead(report.healthy ? 200 : 503, { "content-type": "application/json" })
          .end(JSON.stringify({ status: report.healthy ? "ok" : "unhealthy", ...report.details }));
      } else {
        response.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, this.host, () => resolve());
    });
    this.server = server;
    this.listeningPort = (server.address() as AddressInfo).port;
    this.logger?.info({ port: this.listeningPort }, "metrics and health endpoint listening");
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
