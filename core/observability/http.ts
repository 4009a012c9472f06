import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface HealthReport {
  healthy: boolean;
  /** Component-specific state, shown as JSON by /health. */
  details: Record<string, unknown>;
}

/**
 * The operations endpoint every long-running component exposes: GET /metrics (Prometheus text format) and
 * GET /health (200 when healthy, 503 otherwise, with details as JSON).
 */
export class ObservabilityServer {
  private server: Server | undefined;
  private readonly registry: Registry;
  private readonly health: () => HealthReport;
  private readonly host: string;
  private readonly port: number;

  constructor(options: { registry: Registry; health: () => HealthReport; host?: string; port: number }) {
    this.registry = options.registry;
    this.health = options.health;
    this.host = options.host ?? "127.0.0.1";
    this.port = options.port;
  }

  async start(): Promise<number> {
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
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
