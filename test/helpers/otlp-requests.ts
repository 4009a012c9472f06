type Loose = Record<string, unknown>;

/** A small deterministic generator (xorshift), so a failure names its seed. */
function generator(seed: number) {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x100000000;
  };
  const int = (n: number) => Math.floor(next() * n);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const text = () =>
    ["", "a", "GET /orders/:id", "é ü 漢字 🚀", 'quote " and \\ and \n', "x".repeat(int(300))][
      int(6)
    ] as string;
  const u64 = () => (BigInt(int(0x100000000)) << 32n) | BigInt(int(0x100000000));
  const i64 = () =>
    [
      0n,
      1n,
      -1n,
      2n ** 53n,
      -(2n ** 53n) - 7n,
      2n ** 63n - 1n,
      -(2n ** 63n),
      BigInt(int(1e9)) - 500_000_000n,
    ][int(8)] as bigint;
  const anyValue = (depth: number): Loose => {
    switch (int(depth > 2 ? 5 : 7)) {
      case 0:
        return { stringValue: text() };
      case 1:
        return { boolValue: next() < 0.5 };
      case 2:
        return { intValue: i64().toString() };
      case 3:
        return { doubleValue: [0, -0.5, 1e300, Math.PI, -123456.789][int(5)] };
      case 4:
        return { bytesValue: bytes(int(20)) };
      case 5:
        return { arrayValue: { values: Array.from({ length: int(4) }, () => anyValue(depth + 1)) } };
      default:
        return { kvlistValue: { values: keyValues(depth + 1) } };
    }
  };
  const keyValues = (depth: number): Loose[] =>
    Array.from({ length: int(4) }, (_, i) => ({
      key: `k${i}.${text().slice(0, 8)}`,
      value: anyValue(depth),
    }));
  const span = (): Loose => ({
    traceId: next() < 0.05 ? bytes(int(32)) : bytes(16),
    spanId: next() < 0.05 ? bytes(0) : bytes(8),
    ...(next() < 0.6 ? { parentSpanId: bytes(8) } : {}),
    name: text(),
    kind: int(7),
    startTimeUnixNano: (next() < 0.1 ? BigInt(int(1e9)) : u64() >> BigInt(int(4))).toString(),
    endTimeUnixNano: u64().toString(),
    attributes: keyValues(0),
    traceState: "k=v",
    flags: 1,
    droppedAttributesCount: int(3),
    events: Array.from({ length: int(3) }, () => ({
      timeUnixNano: u64().toString(),
      name: text(),
      attributes: keyValues(1),
    })),
    links: Array.from({ length: int(3) }, () => ({
      traceId: bytes(16),
      spanId: bytes(8),
      traceState: "a=b",
    })),
    ...(next() < 0.7 ? { status: { code: int(4), message: text() } } : {}),
  });
  return {
    request: (): Loose => ({
      resourceSpans: Array.from({ length: 1 + int(3) }, () => ({
        resource: { attributes: [{ key: "service.name", value: { stringValue: text() } }, ...keyValues(1)] },
        schemaUrl: "https://opentelemetry.io/schemas/1.26.0",
        scopeSpans: Array.from({ length: int(3) }, () => ({
          ...(next() < 0.8 ? { scope: { name: text(), version: text(), attributes: keyValues(2) } } : {}),
          spans: Array.from({ length: int(6) }, span),
        })),
      })),
    }),
  };
}

/**
 * An OTLP ExportTraceServiceRequest as protobufjs's fromObject takes it, made from a seed: several resources and
 * scopes, spans with every kind of attribute value (nested arrays and maps, bytes, 64-bit integers at the edges,
 * non-ASCII and escaped text), events, links, statuses, some invalid ids.
 */
export function randomTraceRequest(seed: number): Loose {
  return generator(seed).request();
}
