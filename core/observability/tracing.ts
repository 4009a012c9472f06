import {
  type Attributes,
  ROOT_CONTEXT,
  type Span,
  type SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { Logger } from "../logger.ts";
import { formatTraceparent, newSpanId, newTraceId, type TraceContext } from "../trace-context.ts";

let tracer: Tracer | undefined;

/** Where our own spans go: <endpoint>/v1/traces, or nowhere (tracing off). */
export function tracingEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (/^(0|false|off|no)$/i.test(env.LIFELINE_TRACING ?? "") || /^true$/i.test(env.OTEL_SDK_DISABLED ?? "")) {
    return undefined;
  }
  const base = env.LIFELINE_OTLP_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return base ? `${base.replace(/\/+$/, "")}/v1/traces` : undefined;
}

/**
 * Starts the OpenTelemetry Node SDK for one Lifeline component, exporting spans over OTLP/HTTP protobuf to the
 * collector (LIFELINE_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT; LIFELINE_TRACING=off turns it off). The SDK
 * is loaded only when tracing is on, so an agent without it stays small. Returns the flush-and-stop function.
 */
export async function startTracing(
  component: string,
  options: { hostName?: string; logger?: Logger; env?: NodeJS.ProcessEnv } = {},
): Promise<() => Promise<void>> {
  const url = tracingEndpoint(options.env);
  if (!url) return async () => {};
  // Traces only: the SDK would otherwise start OTLP metric and log exporters from the environment.
  process.env.OTEL_METRICS_EXPORTER ??= "none";
  process.env.OTEL_LOGS_EXPORTER ??= "none";
  const [{ NodeSDK }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import("@opentelemetry/sdk-node"),
    import("@opentelemetry/exporter-trace-otlp-proto"),
    import("@opentelemetry/resources"),
  ]);
  const sdk = new NodeSDK({
    autoDetectResources: false,
    resource: resourceFromAttributes({
      "service.name": `lifeline-${component}`,
      ...(options.hostName ? { "host.name": options.hostName } : {}),
    }),
    traceExporter: new OTLPTraceExporter({ url }),
    instrumentations: [],
  });
  sdk.start();
  tracer = trace.getTracer("lifeline");
  options.logger?.info({ url }, "tracing: exporting our spans");
  return async () => {
    tracer = undefined;
    await sdk
      .shutdown()
      .catch((error: Error) => options.logger?.warn({ err: error.message }, "tracing flush failed"));
  };
}

/** Runs `work` in a span of its own (a new trace), ended with its outcome. */
export async function traced<T>(
  name: string,
  options: { kind?: SpanKind; attributes?: Attributes },
  work: (span: LifelineSpan) => Promise<T>,
): Promise<T> {
  if (!tracer) return work(NO_SPAN);
  const span = startSpan(name, options);
  try {
    const result = await work(span);
    span.end("success");
    return result;
  } catch (error) {
    span.end("failure", (error as Error).message);
    throw error;
  }
}

export type SpanOutcome = "success" | "failure" | "unknown";

/**
 * A span of ours. Its ids exist whether tracing is on or off: lifecycle events and commands carry them either
 * way, so the events of one rollout share a trace id even with no SDK loaded.
 */
export class LifelineSpan implements TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentId: string | undefined;
  readonly flags = 1;
  private readonly span: Span | undefined;

  constructor(ids: { traceId: string; spanId: string; parentId?: string | undefined }, span?: Span) {
    this.traceId = ids.traceId;
    this.spanId = ids.spanId;
    this.parentId = ids.parentId;
    this.span = span;
  }

  get traceparent(): string {
    return formatTraceparent(this);
  }

  setAttributes(attributes: Attributes): void {
    this.span?.setAttributes(attributes);
  }

  end(outcome: SpanOutcome = "success", message?: string): void {
    if (!this.span) return;
    if (outcome === "failure")
      this.span.setStatus({ code: SpanStatusCode.ERROR, ...(message ? { message } : {}) });
    else if (outcome === "success") this.span.setStatus({ code: SpanStatusCode.OK });
    this.span.end();
  }
}

/** A new span: a child of `parent` (ours, or a traceparent received from elsewhere), or a new trace's root. */
export function startSpan(
  name: string,
  options: { parent?: TraceContext | undefined; kind?: SpanKind; attributes?: Attributes } = {},
): LifelineSpan {
  const parent = options.parent;
  if (!tracer) {
    return new LifelineSpan({
      traceId: parent?.traceId ?? newTraceId(),
      spanId: newSpanId(),
      parentId: parent?.spanId,
    });
  }
  const context = parent
    ? trace.setSpanContext(ROOT_CONTEXT, {
        traceId: parent.traceId,
        spanId: parent.spanId,
        traceFlags: parent.flags ?? 1,
        isRemote: true,
      })
    : ROOT_CONTEXT;
  const span = tracer.startSpan(
    name,
    {
      ...(options.kind !== undefined ? { kind: options.kind } : {}),
      ...(options.attributes ? { attributes: options.attributes } : {}),
    },
    context,
  );
  const ids = span.spanContext();
  return new LifelineSpan({ traceId: ids.traceId, spanId: ids.spanId, parentId: parent?.spanId }, span);
}

const NO_SPAN = new LifelineSpan({ traceId: "0".repeat(32), spanId: "0".repeat(16) });
