// A small HTTP service for `lifeline demo`. It logs in logfmt with trace ids (its start carries the command's
// TRACEPARENT, every request its own trace) and stops the way DEMO_STOP says:
//   graceful  closes the listener, finishes in-flight requests, exits
//   slow      flushes its buffer for DEMO_FLUSH_MS first (a database, a queue)
//   stubborn  ignores SIGTERM: only the agent's escalation (SIGKILL) ends it
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";

const name = process.env.DEMO_SERVICE ?? "demo";
const behaviour = process.env.DEMO_STOP ?? "graceful";
const flushMs = Number(process.env.DEMO_FLUSH_MS ?? 2_000);
const port = Number(process.env.PORT);
const hex = (bytes) => randomBytes(bytes).toString("hex");

function log(level, msg, fields = {}) {
  const extra = Object.entries(fields).map(([key, value]) => ` ${key}=${value}`);
  process.stdout.write(`time=${new Date().toISOString()} level=${level} msg="${msg}"${extra.join("")}\n`);
}

const server = createServer((request, response) => {
  const traceparent = request.headers.traceparent ?? `00-${hex(16)}-${hex(8)}-01`;
  setTimeout(() => {
    response.end(JSON.stringify({ service: name, ok: true }));
    log("info", `${request.method} ${request.url} 200`, { traceparent });
  }, 5);
});
server.listen(port, "127.0.0.1", () => {
  const started = process.env.TRACEPARENT ? { traceparent: process.env.TRACEPARENT } : {};
  log("info", `${name} listening on 127.0.0.1:${port} pid ${process.pid}`, started);
});

// Traffic, so that the log around a restart shows work stopping and resuming.
const traffic = setInterval(() => {
  log("info", `${name} handled a request`, {
    trace_id: hex(16),
    duration_ms: 3 + (Number.parseInt(hex(1), 16) % 40),
  });
}, 400);

process.on("SIGTERM", () => {
  if (behaviour === "stubborn") {
    log("warn", `${name} ignores SIGTERM: busy with a batch job`);
    return;
  }
  clearInterval(traffic);
  const close = () => {
    server.close(() => {
      log("info", `${name} stopped cleanly`);
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  if (behaviour === "slow") {
    log("info", `${name} got SIGTERM: flushing its buffer (${flushMs} ms) before exiting`);
    setTimeout(close, flushMs);
  } else {
    log("info", `${name} got SIGTERM: closing the listener, draining in-flight requests`);
    close();
  }
});
