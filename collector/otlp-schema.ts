import protobuf from "protobufjs";

/**
 * The parts of the OTLP protocol (opentelemetry-proto v1: collector/{trace,logs}/v1, trace/v1, logs/v1,
 * common/v1, resource/v1) and google.rpc.Status that the receiver reads and writes, as a protobufjs
 * descriptor. Field numbers are the specification's; fields not listed are skipped on decode.
 */
const keyValue = {
  fields: { key: { type: "string", id: 1 }, value: { type: "AnyValue", id: 2 } },
};
const descriptor = {
  nested: {
    otlp: {
      nested: {
        AnyValue: {
          oneofs: {
            value: {
              oneof: [
                "stringValue",
                "boolValue",
                "intValue",
                "doubleValue",
                "arrayValue",
                "kvlistValue",
                "bytesValue",
              ],
            },
          },
          fields: {
            stringValue: { type: "string", id: 1 },
            boolValue: { type: "bool", id: 2 },
            intValue: { type: "int64", id: 3 },
            doubleValue: { type: "double", id: 4 },
            arrayValue: { type: "ArrayValue", id: 5 },
            kvlistValue: { type: "KeyValueList", id: 6 },
            bytesValue: { type: "bytes", id: 7 },
          },
        },
        ArrayValue: { fields: { values: { rule: "repeated", type: "AnyValue", id: 1 } } },
        KeyValueList: { fields: { values: { rule: "repeated", type: "KeyValue", id: 1 } } },
        KeyValue: keyValue,
        Resource: {
          fields: {
            attributes: { rule: "repeated", type: "KeyValue", id: 1 },
            droppedAttributesCount: { type: "uint32", id: 2 },
          },
        },
        InstrumentationScope: {
          fields: {
            name: { type: "string", id: 1 },
            version: { type: "string", id: 2 },
            attributes: { rule: "repeated", type: "KeyValue", id: 3 },
          },
        },
        ExportTraceServiceRequest: {
          fields: { resourceSpans: { rule: "repeated", type: "ResourceSpans", id: 1 } },
        },
        ResourceSpans: {
          fields: {
            resource: { type: "Resource", id: 1 },
            scopeSpans: { rule: "repeated", type: "ScopeSpans", id: 2 },
            schemaUrl: { type: "string", id: 3 },
          },
        },
        ScopeSpans: {
          fields: {
            scope: { type: "InstrumentationScope", id: 1 },
            spans: { rule: "repeated", type: "Span", id: 2 },
            schemaUrl: { type: "string", id: 3 },
          },
        },
        Span: {
          fields: {
            traceId: { type: "bytes", id: 1 },
            spanId: { type: "bytes", id: 2 },
            traceState: { type: "string", id: 3 },
            parentSpanId: { type: "bytes", id: 4 },
            name: { type: "string", id: 5 },
            kind: { type: "int32", id: 6 },
            startTimeUnixNano: { type: "fixed64", id: 7 },
            endTimeUnixNano: { type: "fixed64", id: 8 },
            attributes: { rule: "repeated", type: "KeyValue", id: 9 },
            droppedAttributesCount: { type: "uint32", id: 10 },
            events: { rule: "repeated", type: "SpanEvent", id: 11 },
            links: { rule: "repeated", type: "SpanLink", id: 13 },
            status: { type: "Status", id: 15 },
            flags: { type: "fixed32", id: 16 },
          },
        },
        SpanEvent: {
          fields: {
            timeUnixNano: { type: "fixed64", id: 1 },
            name: { type: "string", id: 2 },
            attributes: { rule: "repeated", type: "KeyValue", id: 3 },
          },
        },
        SpanLink: {
          fields: {
            traceId: { type: "bytes", id: 1 },
            spanId: { type: "bytes", id: 2 },
            traceState: { type: "string", id: 3 },
            attributes: { rule: "repeated", type: "KeyValue", id: 4 },
          },
        },
        Status: { fields: { message: { type: "string", id: 2 }, code: { type: "int32", id: 3 } } },
        ExportLogsServiceRequest: {
          fields: { resourceLogs: { rule: "repeated", type: "ResourceLogs", id: 1 } },
        },
        ResourceLogs: {
          fields: {
            resource: { type: "Resource", id: 1 },
            scopeLogs: { rule: "repeated", type: "ScopeLogs", id: 2 },
            schemaUrl: { type: "string", id: 3 },
          },
        },
        ScopeLogs: {
          fields: {
            scope: { type: "InstrumentationScope", id: 1 },
            logRecords: { rule: "repeated", type: "LogRecord", id: 2 },
            schemaUrl: { type: "string", id: 3 },
          },
        },
        LogRecord: {
          fields: {
            timeUnixNano: { type: "fixed64", id: 1 },
            severityNumber: { type: "int32", id: 2 },
            severityText: { type: "string", id: 3 },
            body: { type: "AnyValue", id: 5 },
            attributes: { rule: "repeated", type: "KeyValue", id: 6 },
            flags: { type: "fixed32", id: 8 },
            traceId: { type: "bytes", id: 9 },
            spanId: { type: "bytes", id: 10 },
            observedTimeUnixNano: { type: "fixed64", id: 11 },
            eventName: { type: "string", id: 12 },
          },
        },
        ExportMetricsServiceRequest: {
          fields: { resourceMetrics: { rule: "repeated", type: "ResourceMetrics", id: 1 } },
        },
        ResourceMetrics: {
          fields: {
            resource: { type: "Resource", id: 1 },
            scopeMetrics: { rule: "repeated", type: "ScopeMetrics", id: 2 },
            schemaUrl: { type: "string", id: 3 },
          },
        },
        ScopeMetrics: {
          fields: {
            scope: { type: "InstrumentationScope", id: 1 },
            metrics: { rule: "repeated", type: "Metric", id: 2 },
            schemaUrl: { type: "string", id: 3 },
          },
        },
        Metric: {
          oneofs: { data: { oneof: ["gauge", "sum", "histogram", "exponentialHistogram", "summary"] } },
          fields: {
            name: { type: "string", id: 1 },
            description: { type: "string", id: 2 },
            unit: { type: "string", id: 3 },
            gauge: { type: "Gauge", id: 5 },
            sum: { type: "Sum", id: 7 },
            histogram: { type: "Histogram", id: 9 },
            exponentialHistogram: { type: "ExponentialHistogram", id: 10 },
            summary: { type: "Summary", id: 11 },
          },
        },
        Gauge: { fields: { dataPoints: { rule: "repeated", type: "NumberDataPoint", id: 1 } } },
        Sum: {
          fields: {
            dataPoints: { rule: "repeated", type: "NumberDataPoint", id: 1 },
            aggregationTemporality: { type: "int32", id: 2 },
            isMonotonic: { type: "bool", id: 3 },
          },
        },
        Histogram: {
          fields: {
            dataPoints: { rule: "repeated", type: "HistogramDataPoint", id: 1 },
            aggregationTemporality: { type: "int32", id: 2 },
          },
        },
        ExponentialHistogram: {
          fields: {
            dataPoints: { rule: "repeated", type: "ExponentialHistogramDataPoint", id: 1 },
            aggregationTemporality: { type: "int32", id: 2 },
          },
        },
        Summary: { fields: { dataPoints: { rule: "repeated", type: "SummaryDataPoint", id: 1 } } },
        NumberDataPoint: {
          oneofs: { value: { oneof: ["asDouble", "asInt"] } },
          fields: {
            attributes: { rule: "repeated", type: "KeyValue", id: 7 },
            startTimeUnixNano: { type: "fixed64", id: 2 },
            timeUnixNano: { type: "fixed64", id: 3 },
            asDouble: { type: "double", id: 4 },
            asInt: { type: "sfixed64", id: 6 },
            exemplars: { rule: "repeated", type: "Exemplar", id: 5 },
            flags: { type: "uint32", id: 8 },
          },
        },
        HistogramDataPoint: {
          fields: {
            attributes: { rule: "repeated", type: "KeyValue", id: 9 },
            startTimeUnixNano: { type: "fixed64", id: 2 },
            timeUnixNano: { type: "fixed64", id: 3 },
            count: { type: "fixed64", id: 4 },
            sum: { type: "double", id: 5 },
            bucketCounts: { rule: "repeated", type: "fixed64", id: 6 },
            explicitBounds: { rule: "repeated", type: "double", id: 7 },
            exemplars: { rule: "repeated", type: "Exemplar", id: 8 },
            flags: { type: "uint32", id: 10 },
            min: { type: "double", id: 11 },
            max: { type: "double", id: 12 },
          },
        },
        ExponentialHistogramDataPoint: {
          fields: {
            attributes: { rule: "repeated", type: "KeyValue", id: 1 },
            startTimeUnixNano: { type: "fixed64", id: 2 },
            timeUnixNano: { type: "fixed64", id: 3 },
            count: { type: "fixed64", id: 4 },
            sum: { type: "double", id: 5 },
            scale: { type: "sint32", id: 6 },
            zeroCount: { type: "fixed64", id: 7 },
            flags: { type: "uint32", id: 10 },
            exemplars: { rule: "repeated", type: "Exemplar", id: 11 },
            min: { type: "double", id: 12 },
            max: { type: "double", id: 13 },
          },
        },
        SummaryDataPoint: {
          fields: {
            attributes: { rule: "repeated", type: "KeyValue", id: 7 },
            startTimeUnixNano: { type: "fixed64", id: 2 },
            timeUnixNano: { type: "fixed64", id: 3 },
            count: { type: "fixed64", id: 4 },
            sum: { type: "double", id: 5 },
            quantileValues: { rule: "repeated", type: "ValueAtQuantile", id: 6 },
            flags: { type: "uint32", id: 8 },
          },
        },
        ValueAtQuantile: {
          fields: { quantile: { type: "double", id: 1 }, value: { type: "double", id: 2 } },
        },
        Exemplar: {
          oneofs: { value: { oneof: ["asDouble", "asInt"] } },
          fields: {
            filteredAttributes: { rule: "repeated", type: "KeyValue", id: 7 },
            timeUnixNano: { type: "fixed64", id: 2 },
            asDouble: { type: "double", id: 3 },
            asInt: { type: "sfixed64", id: 6 },
            spanId: { type: "bytes", id: 4 },
            traceId: { type: "bytes", id: 5 },
          },
        },
        ExportMetricsServiceResponse: {
          fields: { partialSuccess: { type: "ExportMetricsPartialSuccess", id: 1 } },
        },
        ExportMetricsPartialSuccess: {
          fields: { rejectedDataPoints: { type: "int64", id: 1 }, errorMessage: { type: "string", id: 2 } },
        },
        ExportTraceServiceResponse: {
          fields: { partialSuccess: { type: "ExportTracePartialSuccess", id: 1 } },
        },
        ExportTracePartialSuccess: {
          fields: { rejectedSpans: { type: "int64", id: 1 }, errorMessage: { type: "string", id: 2 } },
        },
        ExportLogsServiceResponse: {
          fields: { partialSuccess: { type: "ExportLogsPartialSuccess", id: 1 } },
        },
        ExportLogsPartialSuccess: {
          fields: { rejectedLogRecords: { type: "int64", id: 1 }, errorMessage: { type: "string", id: 2 } },
        },
        // google.rpc.Status, the body of an OTLP/HTTP error response (and gRPC's grpc-status-details-bin).
        RpcStatus: {
          fields: {
            code: { type: "int32", id: 1 },
            message: { type: "string", id: 2 },
            details: { rule: "repeated", type: "ProtobufAny", id: 3 },
          },
        },
        // google.protobuf.Any, google.rpc.RetryInfo, google.protobuf.Duration: how long a client should wait.
        ProtobufAny: { fields: { typeUrl: { type: "string", id: 1 }, value: { type: "bytes", id: 2 } } },
        RetryInfo: { fields: { retryDelay: { type: "ProtobufDuration", id: 1 } } },
        ProtobufDuration: { fields: { seconds: { type: "int64", id: 1 }, nanos: { type: "int32", id: 2 } } },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(descriptor);
const type = (name: string) => root.lookupType(`otlp.${name}`);

export const otlpTypes = {
  traceRequest: type("ExportTraceServiceRequest"),
  logsRequest: type("ExportLogsServiceRequest"),
  traceResponse: type("ExportTraceServiceResponse"),
  metricsRequest: type("ExportMetricsServiceRequest"),
  metricsResponse: type("ExportMetricsServiceResponse"),
  logsResponse: type("ExportLogsServiceResponse"),
  status: type("RpcStatus"),
  retryInfo: type("RetryInfo"),
};
