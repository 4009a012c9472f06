/**
 * OTLP trace export requests read straight from the protobuf wire format into the plain shape the converter reads
 * (the OTLP/JSON mapping's: lowerCamelCase names, ids as lowercase hex, 64-bit times as decimal strings), without
 * protobufjs's message objects, Longs and toObject pass. The hot path of the collector: a span is read once.
 *
 * What it reads is the schema in otlp-schema.ts (opentelemetry-proto v1 trace/common/resource). Unknown fields, and
 * known fields with another wire type than the specification's, are skipped as protobuf parsers skip unknown
 * fields; a repeated singular field keeps its last value; a oneof (AnyValue) keeps the last member. Broken input
 * (a length past the end, a truncated varint, wire types 3, 4, 6, 7) throws.
 */

type Loose = Record<string, unknown>;

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

/** A position in one buffer; every read moves it on. */
class Cursor {
  readonly buf: Buffer;
  pos: number;

  constructor(buf: Buffer, pos: number) {
    this.buf = buf;
    this.pos = pos;
  }

  /** An unsigned varint of up to 32 bits (tags, lengths, enums, counts); longer varints keep the low 32 bits. */
  uint32(): number {
    const buf = this.buf;
    let value = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= buf.length) throw new RangeError(`truncated varint at ${this.pos}`);
      const byte = buf[this.pos++] as number;
      if (shift < 32) value |= (byte & 0x7f) << shift;
      if (byte < 0x80) return value >>> 0;
      shift += 7;
    }
    throw new RangeError(`varint longer than 10 bytes at ${this.pos}`);
  }

  /** A signed 64-bit varint (int64): a number when it is a safe integer, else its exact decimal text. */
  int64(): number | string {
    const buf = this.buf;
    let low = 0;
    let high = 0;
    let i = 0;
    for (; i < 10; i++) {
      if (this.pos >= buf.length) throw new RangeError(`truncated varint at ${this.pos}`);
      const byte = buf[this.pos++] as number;
      const bits = byte & 0x7f;
      if (i < 4) low |= bits << (7 * i);
      else if (i === 4) {
        low |= (bits & 0x0f) << 28;
        high |= bits >>> 4;
      } else high |= bits << (7 * i - 32);
      if (byte < 0x80) break;
    }
    if (i === 10) throw new RangeError(`varint longer than 10 bytes at ${this.pos}`);
    low >>>= 0;
    high >>>= 0;
    if (high < 0x200000) return high * 0x100000000 + low;
    if (high > 0xffe00000) return (high - 0x100000000) * 0x100000000 + low;
    return BigInt.asIntN(64, (BigInt(high) << 32n) | BigInt(low)).toString();
  }

  /** A fixed64 as its exact decimal text. */
  fixed64(): string {
    const end = this.pos + 8;
    if (end > this.buf.length) throw new RangeError(`truncated fixed64 at ${this.pos}`);
    const low = this.buf.readUInt32LE(this.pos);
    const high = this.buf.readUInt32LE(this.pos + 4);
    this.pos = end;
    if (high < 0x200000) return String(high * 0x100000000 + low);
    return ((BigInt(high) << 32n) | BigInt(low)).toString();
  }

  double(): number {
    if (this.pos + 8 > this.buf.length) throw new RangeError(`truncated double at ${this.pos}`);
    const value = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return value;
  }

  /** A length-delimited field's end, after checking it lies within the buffer. */
  lengthEnd(): number {
    const length = this.uint32();
    const end = this.pos + length;
    if (end > this.buf.length) throw new RangeError(`length ${length} at ${this.pos} runs past the end`);
    return end;
  }

  string(): string {
    const end = this.lengthEnd();
    const text = this.buf.toString("utf8", this.pos, end);
    this.pos = end;
    return text;
  }

  hex(): string {
    const end = this.lengthEnd();
    const text = this.buf.toString("hex", this.pos, end);
    this.pos = end;
    return text;
  }

  bytes(): Buffer {
    const end = this.lengthEnd();
    const bytes = Buffer.from(this.buf.subarray(this.pos, end));
    this.pos = end;
    return bytes;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case VARINT:
        this.uint32();
        return;
      case I64:
        this.pos += 8;
        break;
      case LEN:
        this.pos = this.lengthEnd();
        return;
      case I32:
        this.pos += 4;
        break;
      default:
        throw new RangeError(`invalid wire type ${wireType} at ${this.pos}`);
    }
    if (this.pos > this.buf.length) throw new RangeError("truncated field at the end");
  }
}

/** Decodes an ExportTraceServiceRequest. Throws on broken input. */
export function decodeTraceRequest(body: Buffer): Loose {
  const cursor = new Cursor(body, 0);
  const resourceSpans: Loose[] = [];
  while (cursor.pos < body.length) {
    const tag = cursor.uint32();
    if (tag === ((1 << 3) | LEN)) resourceSpans.push(readResourceSpans(cursor, cursor.lengthEnd()));
    else cursor.skip(tag & 7);
  }
  return resourceSpans.length > 0 ? { resourceSpans } : {};
}

function readResourceSpans(cursor: Cursor, end: number): Loose {
  const out: Loose = {};
  const scopeSpans: Loose[] = [];
  while (cursor.pos < end) {
    const tag = cursor.uint32();
    if (tag === ((1 << 3) | LEN)) out.resource = readResource(cursor, cursor.lengthEnd());
    else if (tag === ((2 << 3) | LEN)) scopeSpans.push(readScopeSpans(cursor, cursor.lengthEnd()));
    else cursor.skip(tag & 7);
  }
  ended(cursor, end);
  if (scopeSpans.length > 0) out.scopeSpans = scopeSpans;
  return out;
}

function readResource(cursor: Cursor, end: number): Loose {
  const attributes: Loose[] = [];
  while (cursor.pos < end) {
    const tag = cursor.uint32();
    if (tag === ((1 << 3) | LEN)) attributes.push(readKeyValue(cursor, cursor.lengthEnd()));
    else cursor.skip(tag & 7);
  }
  ended(cursor, end);
  return attributes.length > 0 ? { attributes } : {};
}

function readScopeSpans(cursor: Cursor, end: number): Loose {
  const out: Loose = {};
  const spans: Loose[] = [];
  while (cursor.pos < end) {
    const tag = cursor.uint32();
    if (tag === ((1 << 3) | LEN)) out.scope = readScope(cursor, cursor.lengthEnd());
    else if (tag === ((2 << 3) | LEN)) spans.push(readSpan(cursor, cursor.lengthEnd()));
    else cursor.skip(tag & 7);
  }
  ended(cursor, end);
  if (spans.length > 0) out.spans = spans;
  return out;
}

function readScope(cursor: Cursor, end: number): Loose {
  const out: Loose = {};
  while (cursor.pos < end) {
    const tag = cursor.uint32();
    if (tag === ((1 << 3) | LEN)) out.name = cursor.string();
    else if (tag === ((2 << 3) | LEN)) out.version = cursor.string();
    else cursor.skip(tag & 7);
  }
  ended(cursor, end);
  return out;
}

function readSpan(cursor: Cursor, end: number): Loose {
  const out: Loose = {};
  const attributes: Loose[] = [];
  const events: Loose[] = [];
  const links: Loose[] = [];
  while (cursor.pos < end) {
    const tag = cursor.uint32();
    switch (tag) {
      case (1 << 3) | LEN:
        out.traceId = cursor.hex();
        break;
      case (2 << 3) | LEN:
        out.spanId = cursor.hex();
        break;
      case (4 << 3) | LEN:
        out.parentSpanId = cursor.hex();
        break;
      case (5 << 3) | LEN:
        out.name = cursor.string();
        break;
      case (6 << 3) | VARINT:
        out.kind = cursor.uint32() | 0;
        break;
      case (7 << 3) | I64:
        out.startTimeUnixNano = cursor.fixed64();
        break;
      case (8 << 3) | I64:
        out.endTimeUnixNano = cursor.fixed64();
        break;
      case (9 << 3) | LEN:
        attributes.push(readKeyValue(cursor, cursor.lengthEnd()));
        break;
      case (11 << 3) | LEN:
        events.push(readEvent(cursor, cursor.lengthEnd()));
        break;
      case (13 << 3) | LEN:
        links.push(readLink(cursor, cursor.lengthEnd()));
        break;
      case (15 << 3) | LEN:
        out.status = readStatus(cursor, cursor.lengthEnd());
        break;
      default:
        cursor.skip(tag & 7);
    }
  }
  ended(cursor, end);
  if (attributes.length > 0) out.attributes = attributes;
  if (events.length > 0) out.events = events;
  if (links.length > 0) out.links = links;
  return out;
}

function readEvent(cursor: Cursor, end: number): Loose {
  const out: Loose = {};
  const attributes: Loose[] = [];
  while (cursor.pos < end) {
    const tag = cursor.uint32();
    if (tag === ((1 << 3) | I64)) out.timeUnixNano = cursor.fixed64();
    else if (tag === ((2 << 3) | LEN)) out.name = cursor.string();
    else if (tag === ((3 << 3) | LEN)) attributes.push(readKeyValue(cursor, cursor.lengthEnd()));
    else cursor.skip(tag & 7);
  }
  ended(cursor, end);
  if (attributes.length > 0) out.attributes = attributes;
  return out;
}

function readLink(cursor: Cursor, end: number): Loose {
  const out: Loose = {};
  while (cursor.pos < end) {
    const tag = cursor.uint32();
    if (tag === ((1 << 3) | LEN)) out.traceId = cursor.hex();
    else if (tag === ((2 << 3) | LEN)) out.spanId = cursor.hex();
    else cursor.skip(tag & 7);
  }
  ended(cursor, end);
  return out;
}

function readStatus(cursor: Cursor, end: number): Loose {
  const out: Loose = {};
  while (cursor.pos < end) {
    const tag = cursor.uint32();
    if (tag === ((2 << 3) | LEN)) out.message = cursor.string();
    else if (tag === ((3 << 3) | VARINT)) out.code = cursor.uint32() | 0;
    else cursor.skip(tag & 7);
  }
  ended(cursor, end);
  return out;
}

function readKeyValue(cursor: Cursor, end: number): Loose {
  const out: Loose = {};
  while (cursor.pos < end) {
    const tag = cursor.uint32();
    if (tag === ((1 << 3) | LEN)) out.key = cursor.string();
    else if (tag === ((2 << 3) | LEN)) out.value = readAnyValue(cursor, cursor.lengthEnd());
    else cursor.skip(tag & 7);
  }
  ended(cursor, end);
  return out;
}

function readAnyValue(cursor: Cursor, end: number): Loose {
  let out: Loose = {};
  while (cursor.pos < end) {
    const tag = cursor.uint32();
    switch (tag) {
      case (1 << 3) | LEN:
        out = { stringValue: cursor.string() };
        break;
      case (2 << 3) | VARINT:
        out = { boolValue: cursor.uint32() !== 0 };
        break;
      case (3 << 3) | VARINT:
        out = { intValue: cursor.int64() };
        break;
      case (4 << 3) | I64:
        out = { doubleValue: cursor.double() };
        break;
      case (5 << 3) | LEN:
        out = { arrayValue: { values: readValues(cursor, cursor.lengthEnd(), readAnyValue) } };
        break;
      case (6 << 3) | LEN:
        out = { kvlistValue: { values: readValues(cursor, cursor.lengthEnd(), readKeyValue) } };
        break;
      case (7 << 3) | LEN:
        out = { bytesValue: cursor.bytes() };
        break;
      default:
        cursor.skip(tag & 7);
    }
  }
  ended(cursor, end);
  return out;
}

/** ArrayValue and KeyValueList: field 1, repeated. */
function readValues(cursor: Cursor, end: number, read: (cursor: Cursor, end: number) => Loose): Loose[] {
  const values: Loose[] = [];
  while (cursor.pos < end) {
    const tag = cursor.uint32();
    if (tag === ((1 << 3) | LEN)) values.push(read(cursor, cursor.lengthEnd()));
    else cursor.skip(tag & 7);
  }
  ended(cursor, end);
  return values;
}

/** A message's fields must end exactly where its length said. */
function ended(cursor: Cursor, end: number): void {
  if (cursor.pos !== end) throw new RangeError(`a field runs past its message's end at ${cursor.pos}`);
}
