/**
 * A small table-driven protobuf (proto3) codec for the RIFT schema (RIFT.md §5).
 *
 * Written by hand rather than generated: the RIFT messages are flat and few, the page decodes
 * thousands of datagrams a second and wants `bytes` fields as zero-copy views of the datagram,
 * and a generator would add a protoc step to the build. The tables in messages.ts are checked
 * against rift.proto's descriptor and against bytes produced by Python's protobuf in the tests
 * (tests/web/), so they cannot drift silently.
 *
 * Values: integers are JS numbers (every RIFT u64 — packet ids, µs timestamps, file ids — stays
 * below 2^53), `bool` is boolean, `bytes` a Uint8Array, `string` a string, nested messages plain
 * objects, repeated fields arrays. Encoding omits proto3 default values, as protobuf does.
 */

export type Kind = "uint" | "bool" | "sint" | "bytes" | "string" | "float" | "message";

export interface Field {
  readonly n: number;
  readonly name: string;
  readonly kind: Kind;
  readonly repeated?: boolean;
  /** for kind "message": the nested schema (a thunk: schemas refer to each other) */
  readonly msg?: () => Schema;
}

export interface Schema {
  readonly name: string;
  readonly fields: readonly Field[];
  /** by field number, filled lazily */
  byNumber?: Map<number, Field>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Pb = Record<string, any>;

export class ProtoError extends Error {}

// ---- encoding ------------------------------------------------------------------------------

class Writer {
  buf = new Uint8Array(256);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
  }

  varint(v: number): void {
    this.ensure(10);
    if (v < 0) throw new ProtoError("negative varint");
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  float(f: number): void {
    this.ensure(4);
    new DataView(this.buf.buffer).setFloat32(this.pos, f, true);
    this.pos += 4;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

const utf8e = new TextEncoder();
const utf8d = new TextDecoder("utf-8", { fatal: false });

function zigzag(v: number): number {
  return v >= 0 ? v * 2 : -v * 2 - 1;
}

function unzigzag(v: number): number {
  return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
}

function wireType(kind: Kind): number {
  switch (kind) {
    case "uint":
    case "bool":
    case "sint":
      return 0;
    case "float":
      return 5;
    default:
      return 2;
  }
}

function writeScalar(w: Writer, f: Field, v: unknown): void {
  switch (f.kind) {
    case "uint":
      w.varint(Number(v));
      break;
    case "bool":
      w.varint(v ? 1 : 0);
      break;
    case "sint":
      w.varint(zigzag(Number(v)));
      break;
    case "float":
      w.float(Number(v));
      break;
    case "bytes":
      w.bytes(v as Uint8Array);
      break;
    case "string":
      w.bytes(utf8e.encode(String(v)));
      break;
    case "message":
      w.bytes(encode(f.msg!(), v as Pb));
      break;
  }
}

function isDefault(f: Field, v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (f.kind === "message") return false; // presence: an empty nested message is still sent
  if (f.kind === "bytes") return (v as Uint8Array).length === 0;
  if (f.kind === "string") return v === "";
  if (f.kind === "bool") return !v;
  return v === 0;
}

export function encode(schema: Schema, value: Pb): Uint8Array {
  const w = new Writer();
  for (const f of schema.fields) {
    const v = value[f.name];
    if (f.repeated) {
      const arr = (v ?? []) as unknown[];
      if (!arr.length) continue;
      if (f.kind === "uint" || f.kind === "sint" || f.kind === "bool" || f.kind === "float") {
        const inner = new Writer(); // packed (proto3's default for scalars)
        for (const x of arr) writeScalar(inner, f, x);
        w.varint((f.n << 3) | 2);
        w.bytes(inner.finish());
      } else {
        for (const x of arr) {
          w.varint((f.n << 3) | wireType(f.kind));
          writeScalar(w, f, x);
        }
      }
      continue;
    }
    if (isDefault(f, v)) continue;
    w.varint((f.n << 3) | wireType(f.kind));
    writeScalar(w, f, v);
  }
  return w.finish();
}

// ---- decoding ------------------------------------------------------------------------------

class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoError("truncated varint");
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new ProtoError("varint too long");
  }

  skip(wt: number): void {
    switch (wt) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2: {
        const n = this.varint();
        this.pos += n;
        break;
      }
      case 5:
        this.pos += 4;
        break;
      default:
        throw new ProtoError(`unsupported wire type ${wt}`);
    }
    if (this.pos > this.end) throw new ProtoError("truncated field");
  }

  lengthDelimited(): [number, number] {
    const n = this.varint();
    const start = this.pos;
    if (start + n > this.end) throw new ProtoError("truncated field");
    this.pos += n;
    return [start, start + n];
  }

  float(): number {
    if (this.pos + 4 > this.end) throw new ProtoError("truncated float");
    const f = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return f;
  }
}

function numbered(schema: Schema): Map<number, Field> {
  if (!schema.byNumber) schema.byNumber = new Map(schema.fields.map((f) => [f.n, f]));
  return schema.byNumber;
}

function readScalar(r: Reader, f: Field): unknown {
  switch (f.kind) {
    case "uint":
      return r.varint();
    case "bool":
      return r.varint() !== 0;
    case "sint":
      return unzigzag(r.varint());
    case "float":
      return r.float();
    case "bytes": {
      const [s, e] = r.lengthDelimited();
      return r.buf.subarray(s, e);
    }
    case "string": {
      const [s, e] = r.lengthDelimited();
      return utf8d.decode(r.buf.subarray(s, e));
    }
    case "message": {
      const [s, e] = r.lengthDelimited();
      return decodeRange(f.msg!(), r.buf, s, e);
    }
  }
}

function decodeRange(schema: Schema, buf: Uint8Array, start: number, end: number): Pb {
  const out: Pb = {};
  const fields = numbered(schema);
  const r = new Reader(buf, start, end);
  while (r.pos < end) {
    const key = r.varint();
    const n = Math.floor(key / 8);
    const wt = key & 7;
    const f = fields.get(n);
    if (f === undefined) {
      r.skip(wt);
      continue;
    }
    const expected = wireType(f.kind);
    if (f.repeated) {
      const arr = (out[f.name] ??= []) as unknown[];
      if (wt === 2 && expected !== 2) {
        const [s, e] = r.lengthDelimited();
        const inner = new Reader(buf, s, e);
        while (inner.pos < e) arr.push(readScalar(inner, f));
      } else if (wt === expected) {
        arr.push(readScalar(r, f));
      } else {
        throw new ProtoError(`${schema.name}.${f.name}: wire type ${wt}`);
      }
      continue;
    }
    if (wt !== expected) throw new ProtoError(`${schema.name}.${f.name}: wire type ${wt}`);
    out[f.name] = readScalar(r, f);
  }
  if (r.pos !== end) throw new ProtoError("field runs past the end");
  return out;
}

/** Decode one message; throws ProtoError on malformed input (callers count and drop it). */
export function decode(schema: Schema, buf: Uint8Array): Pb {
  return decodeRange(schema, buf, 0, buf.length);
}
