// A direct codec for the hot messages of Orchestrator.Connect: tasks, results, heartbeats, and (round 29) TrainBatch (issue #15).
//
// proto-loader's serializer turns a plain object into protobufjs message instances (fromObject), encodes them
// through a Writer that allocates an operation object per field, and its deserializer decodes into instances
// (int64 as Long objects) that toObject then copies into a second set of plain objects. Per task that is a few
// microseconds and most of the orchestrator's garbage. This codec:
//
// - encode: protobufjs's own generated encoder on the plain object (a keepCase root; no fromObject copy): the
//   library's bytes, the same as proto-loader's;
// - decode (hand-written, one pass): bytes straight to the plain object proto-loader produces with LOADER_OPTIONS (lib/transport/proto.ts:
//   keepCase, longs String, enums String, defaults, oneofs: every field present with its zero value when absent,
//   messages null, int64 as decimal strings, `kind` naming the oneof member set, and proto3 `optional` fields
//   absent when unset, with the synthetic `_<name>` oneof key when set), bytes as views into the received buffer.
//
// The schema is read from proto/recovery.proto through protobufjs's reflection (the same file and parser that
// proto-loader uses), so a field added to the .proto is handled without code here. Enum fields (TrainBatch.kind,
// Hello.role) are handled since round 29 (wire29): decoded to proto-loader's `enums: String` form (a known number as
// its name, an unknown one as the number, absent as the name of 0), encoded from a name or an int32 number as
// protobufjs's fromObject takes them (anything else, an unknown name among them, is left to proto-loader's serializer,
// which drops it). Message types with a map anywhere below them (Hello, through Capabilities.labels) are not handled:
// their envelopes go through proto-loader as before (envelopeCodec decides per oneof member). Bytes are identical to
// proto-loader's for every message it can encode, except that a tensor's data of 256 bytes or more is written between
// two unknown padding fields that place it 4-byte aligned in the receiver's buffer (see "alignment" below;
// proto-loader decodes them to the same object), and decoded objects deep-equal its output
// (test/transport/wire-codec.test.ts, on random messages of every handled type, TrainBatch with its flow rows and
// every TrainKind included). protobufjs has no decoder that yields proto-loader's object shape without the toObject
// copy, which is why the decode side is written here; a truncated or malformed message is refused with a RangeError.
import protobuf from 'protobufjs';
import { MAX_RANK } from './tensor.ts';

/** The field types handled; 'enum' is any enum type (its values in Field.enumType), on the wire an int32 varint. */
type Scalar = 'double' | 'float' | 'uint32' | 'int64' | 'uint64' | 'bool' | 'string' | 'bytes' | 'enum';
const SCALARS: readonly string[] = ['double', 'float', 'uint32', 'int64', 'uint64', 'bool', 'string', 'bytes'];
const WIRE: Record<Scalar, number> = { double: 1, float: 5, uint32: 0, int64: 0, uint64: 0, bool: 0, string: 2, bytes: 2, enum: 0 };
/** The most bytes one entry of a packed field takes (a varint: 10). */
const ENTRY_BYTES: Record<Scalar, number> = { double: 8, float: 4, uint32: 10, int64: 10, uint64: 10, bool: 10, string: 0, bytes: 0, enum: 10 };

/**
 * An enum type's values both ways. Decoded as proto-loader's `enums: String` gives them: a known number as its name,
 * an unknown one as the number itself (protobufjs reads an int32 and toObject keeps what it has no name for). Encoded
 * from what protobufjs's fromObject takes and writes the same way: a name, or an int32 number (an unknown number is
 * written as it is).
 */
interface EnumValues {
  readonly name: string;
  readonly byId: ReadonlyMap<number, string>;
  readonly byName: ReadonlyMap<string, number>;
  /** The name of the type's default (proto3: the value 0), what an absent field reads as. */
  readonly absent: string;
}

/**
 * Cached per enum type, so `absent` is taken from the first field of that type seen: right in proto3, where every
 * field of an enum type reads as the type's value 0 when absent; a proto2 field that sets its own `[default = ...]`
 * would need the cache keyed by field (no .proto here is proto2; review29 F11).
 */
const enums = new Map<protobuf.Enum, EnumValues>();
function enumOf(e: protobuf.Enum, typeDefault: unknown): EnumValues {
  let v = enums.get(e);
  if (!v) {
    const byId = new Map<number, string>();
    // valuesById keeps the first name of an aliased number, as toObject reads it
    for (const [id, name] of Object.entries(e.valuesById)) byId.set(Number(id), name);
    const byName = new Map(Object.entries(e.values));
    const d = typeof typeDefault === 'number' ? typeDefault : 0;
    v = { name: e.fullName, byId, byName, absent: byId.get(d) ?? String(d) };
    enums.set(e, v);
  }
  return v;
}

/**
 * Repeated scalar fields whose entries the validation after decoding limits, by full name: the limit and where it
 * comes from. A packed run is otherwise bounded only by maxMessageBytes (a 64 MiB shape is 64 Mi entries decoded
 * before checkShape refuses its rank), so readMessage refuses one that surely holds more before decoding it.
 */
const ENTRY_LIMITS: ReadonlyMap<string, { max: number; source: string }> = new Map([
  ['.recovery.v1.Tensor.shape', { max: MAX_RANK, source: "a tensor's rank, MAX_RANK in lib/transport/tensor.ts" }],
]);

interface Field {
  readonly name: string;
  readonly id: number;
  readonly scalar: Scalar | undefined;
  readonly message: Schema | undefined;
  /** An enum field's values (scalar 'enum'). */
  readonly enumType: EnumValues | undefined;
  readonly repeated: boolean;
  readonly packed: boolean;
  /** The oneof (real, or the synthetic one of a proto3 optional field) this field is a member of. */
  readonly oneof: string | undefined;
  /** What the field reads as when absent, as JavaScript source (not for oneof members, which stay absent). */
  readonly absent: string;
  /** Full name for errors: .recovery.v1.Type.field */
  readonly path: string;
  /** The most entries a repeated scalar field may hold (ENTRY_LIMITS), if limited. */
  readonly limit: { max: number; source: string } | undefined;
  /** A bytes field whose content the encoder places 4-byte aligned in the receiver's buffer (ALIGNED_BYTES). */
  readonly align: boolean;
}

export interface Schema {
  readonly name: string;
  /** Fields by ascending id (the order protobufjs writes them). */
  readonly fields: Field[];
  readonly byId: Map<number, Field>;
  /** The same, as an array indexed by field number (a lookup per decoded field). */
  readonly byNumber: Array<Field | undefined>;
  readonly oneofs: { name: string; members: Field[] }[];
  /** A new decoded object with every non-oneof field at its absent value (one literal: one hidden class). */
  fresh: () => Record<string, unknown>;
  /** False when a map field lies anywhere below (such messages go through proto-loader). */
  handled: boolean;
  /**
   * True when an enum field lies anywhere below: a value the two-pass encoder declines is then left to proto-loader's
   * serializer (fromObject maps enum names to numbers; protobufjs's encoder alone would not).
   */
  enums: boolean;
}

const schemas = new Map<protobuf.Type, Schema>();

function schemaOf(type: protobuf.Type): Schema {
  const known = schemas.get(type);
  if (known) return known;
  const s: Schema = { name: type.fullName, fields: [], byId: new Map(), byNumber: [], oneofs: [], fresh: () => ({}), handled: true, enums: false };
  schemas.set(type, s); // before the fields: a recursive type sees itself (handled unless shown otherwise)
  for (const f of [...type.fieldsArray].sort((a, b) => a.id - b.id)) {
    f.resolve();
    if (f.map) {
      s.handled = false;
      continue;
    }
    const enumType = f.resolvedType instanceof protobuf.Enum ? enumOf(f.resolvedType, f.typeDefault) : undefined;
    const message = f.resolvedType instanceof protobuf.Type ? schemaOf(f.resolvedType) : undefined;
    if (message && !message.handled) s.handled = false;
    if (enumType || message?.enums) s.enums = true;
    if (!message && !enumType && !SCALARS.includes(f.type)) {
      s.handled = false;
      continue;
    }
    const scalar = message ? undefined : enumType ? 'enum' : (f.type as Scalar);
    const packed = f.repeated && f.packed && scalar !== undefined && scalar !== 'string' && scalar !== 'bytes';
    const field: Field = {
      name: f.name,
      id: f.id,
      scalar,
      message,
      enumType,
      repeated: f.repeated,
      packed,
      oneof: f.partOf?.name,
      absent: absentValue(f.repeated, scalar, enumType),
      path: `${type.fullName}.${f.name}`,
      limit: ENTRY_LIMITS.get(`${type.fullName}.${f.name}`),
      align: scalar === 'bytes' && !f.repeated && f.partOf === null && ALIGNED_BYTES.has(`${type.fullName}.${f.name}`),
    };
    s.fields.push(field);
    s.byId.set(f.id, field);
    if (f.id < 1024) s.byNumber[f.id] = field;
  }
  for (const o of type.oneofsArray) s.oneofs.push({ name: o.name, members: s.fields.filter((f) => f.oneof === o.name) });
  s.fresh = freshOf(s.fields);
  return s;
}

const EMPTY_BYTES = Buffer.alloc(0);
/**
 * The factory of decoded objects: an object literal made by generated code (as protobufjs makes its decoders), so
 * that every decoded message of a type shares one hidden class instead of growing one property at a time.
 */
function freshOf(fields: readonly Field[]): () => Record<string, unknown> {
  const body = fields.filter((f) => f.oneof === undefined).map((f) => `${JSON.stringify(f.name)}: ${f.absent}`).join(', ');
  return new Function('EMPTY_BYTES', `return () => ({ ${body} });`)(EMPTY_BYTES) as () => Record<string, unknown>;
}

/** Source text of the value an absent field reads as (proto-loader's defaults; empty bytes: one shared empty Buffer). */
function absentValue(repeated: boolean, scalar: Scalar | undefined, enumType: EnumValues | undefined): string {
  if (repeated) return '[]';
  switch (scalar) {
    case 'enum': return JSON.stringify(enumType!.absent);
    case undefined: return 'null';
    case 'string': return "''";
    case 'bool': return 'false';
    case 'int64':
    case 'uint64': return "'0'";
    case 'bytes': return 'EMPTY_BYTES';
    default: return '0';
  }
}

// ---------------------------------------------------------------------------------------------------- decode

class In {
  pos: number;
  constructor(readonly buf: Buffer, start: number, readonly end: number) {
    this.pos = start;
  }
  fail(what: string): never {
    throw new RangeError(`wire codec: ${what} at offset ${this.pos} (truncated or malformed message)`);
  }
  /** A varint's low 32 bits (unsigned); reads all of it (up to 10 bytes). */
  varint(): number {
    const b = this.buf;
    let v = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('varint past the end');
      const c = b[this.pos++]!;
      if (shift < 32) v |= (c & 127) << shift;
      if (c < 128) return v >>> 0;
      shift += 7;
    }
    this.fail('varint longer than 10 bytes');
  }
  /** A varint as a decimal string, as int64 (signed) or uint64. */
  varint64(signed: boolean): string {
    const b = this.buf;
    let lo = 0;
    let hi = 0;
    let i = 0;
    for (;; i++) {
      if (i >= 10) this.fail('varint longer than 10 bytes');
      if (this.pos >= this.end) this.fail('varint past the end');
      const c = b[this.pos++]!;
      if (i < 4) lo |= (c & 127) << (7 * i);
      else if (i === 4) {
        lo |= (c & 15) << 28;
        hi |= (c & 127) >> 4;
      } else hi |= (c & 127) << (7 * i - 32);
      if (c < 128) break;
    }
    lo >>>= 0;
    hi >>>= 0;
    if (hi === 0) return String(lo);
    if (hi < 0x200000) return String(hi * 0x100000000 + lo);
    const big = (BigInt(hi) << 32n) | BigInt(lo);
    return String(signed ? BigInt.asIntN(64, big) : big);
  }
  skip(wire: number, depth = 0): void {
    switch (wire) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2: {
        const n = this.varint(); // not `this.pos += this.varint()`: that adds to the position before the length
        this.pos += n;
        break;
      }
      case 3: {
        if (depth > 64) this.fail('groups nested too deep');
        for (;;) {
          const key = this.varint();
          if ((key & 7) === 4) return;
          this.skip(key & 7, depth + 1);
        }
      }
      case 5:
        this.pos += 4;
        break;
      default:
        this.fail(`invalid wire type ${wire}`);
    }
    if (this.pos > this.end) this.fail('field past the end');
  }
}

function readScalar(r: In, f: Field): unknown {
  switch (f.scalar!) {
    case 'double': {
      if (r.pos + 8 > r.end) r.fail(`${f.path} past the end`);
      const v = r.buf.readDoubleLE(r.pos);
      r.pos += 8;
      return v;
    }
    case 'float': {
      if (r.pos + 4 > r.end) r.fail(`${f.path} past the end`);
      const v = r.buf.readFloatLE(r.pos);
      r.pos += 4;
      return v;
    }
    case 'bool': return r.varint() !== 0;
    case 'uint32': return r.varint();
    case 'enum': {
      const v = r.varint() | 0; // protobufjs reads an enum as int32: the low 32 bits, signed
      return f.enumType!.byId.get(v) ?? v;
    }
    case 'int64': return r.varint64(true);
    case 'uint64': return r.varint64(false);
    case 'string': {
      const n = r.varint();
      const end = r.pos + n;
      if (end > r.end) r.fail(`${f.path} past the end`);
      const v = n === 0 ? '' : r.buf.toString('utf8', r.pos, end);
      r.pos = end;
      return v;
    }
    case 'bytes': {
      const n = r.varint();
      const end = r.pos + n;
      if (end > r.end) r.fail(`${f.path} past the end`);
      const v = n === 0 ? EMPTY_BYTES : r.buf.subarray(r.pos, end);
      r.pos = end;
      return v;
    }
  }
}

/**
 * A packed run of `n` bytes holds at least n / ENTRY_BYTES entries: with the `before` already read, more than the
 * field's limit, so the validation would refuse it; refused here instead of decoding them all first.
 */
function tooMany(r: In, f: Field, n: number, before: number): never {
  const least = before + Math.ceil(n / ENTRY_BYTES[f.scalar!]);
  throw new RangeError(
    `wire codec: ${f.path}: a packed run of ${n} bytes${before ? ` after ${before} entries` : ''} at offset ${r.pos} holds at least ${least} entries, over the limit of ${f.limit!.max} (${f.limit!.source})`,
  );
}

/**
 * Unpacked entries (a key each) are counted exactly. Refused here past `max * ENTRY_BYTES` of them, the count a packed
 * run of that many bytes may hold (80 for a shape), so that a shape of rank 9 to 80 is left to the validation as a
 * packed one of up to 80 bytes is, and a field of millions of entries is not decoded first.
 */
function tooManyUnpacked(r: In, f: Field, before: number): never {
  throw new RangeError(`wire codec: ${f.path}: more than ${before} unpacked entries at offset ${r.pos}, over the limit of ${f.limit!.max} (${f.limit!.source})`);
}

function wireOf(f: Field): number {
  return f.message ? 2 : WIRE[f.scalar!];
}

function readMessage(r: In, s: Schema, end: number): Record<string, unknown> {
  const out = s.fresh();
  let members = false;
  while (r.pos < end) {
    const key = r.varint();
    const id = key >>> 3;
    const f = id < 1024 ? s.byNumber[id] : s.byId.get(id);
    const wire = key & 7;
    if (!f) {
      r.skip(wire);
      if (r.pos > end) r.fail('field past the end');
      continue;
    }
    if (f.oneof !== undefined) members = true;
    if (f.message) {
      if (wire !== 2) r.fail(`${f.path}: wire type ${wire}, expected 2`);
      const n = r.varint();
      const stop = r.pos + n;
      if (stop > end) r.fail(`${f.path} past the end`);
      const v = readMessage(r, f.message, stop);
      if (r.pos !== stop) r.fail(`${f.path} overruns its length`);
      if (f.repeated) (out[f.name] as unknown[]).push(v);
      else out[f.name] = v;
    } else if (f.repeated) {
      const list = out[f.name] as unknown[];
      if (wire === 2 && f.scalar !== 'string' && f.scalar !== 'bytes') {
        const n = r.varint();
        const stop = r.pos + n;
        if (stop > end) r.fail(`${f.path} past the end`);
        if (f.limit && list.length + Math.ceil(n / ENTRY_BYTES[f.scalar!]) > f.limit.max) tooMany(r, f, n, list.length);
        while (r.pos < stop) list.push(readScalar(r, f));
        if (r.pos !== stop) r.fail(`${f.path} overruns its length`);
      } else {
        if (wire !== wireOf(f)) r.fail(`${f.path}: wire type ${wire}, expected ${wireOf(f)}`);
        if (f.limit && list.length >= f.limit.max * ENTRY_BYTES[f.scalar!]) tooManyUnpacked(r, f, list.length);
        list.push(readScalar(r, f));
      }
    } else {
      if (wire !== wireOf(f)) r.fail(`${f.path}: wire type ${wire}, expected ${wireOf(f)}`);
      out[f.name] = readScalar(r, f);
    }
    if (r.pos > end) r.fail(`${f.path} past the end`);
  }
  if (members) {
    // As protobufjs's toObject: a oneof's key names its set member (the one with the highest id if several are).
    for (let i = 0; i < s.oneofs.length; i++) {
      const o = s.oneofs[i]!;
      for (let j = 0; j < o.members.length; j++) if (out[o.members[j]!.name] !== undefined) out[o.name] = o.members[j]!.name;
    }
  }
  return out;
}

/** Bytes of message `s` as the plain object proto-loader's deserializer gives (LOADER_OPTIONS). */
export function decodeMessage(s: Schema, buf: Buffer): Record<string, unknown> {
  if (!s.handled) throw new Error(`wire codec: ${s.name} has a map field; it is not handled here`);
  return readMessage(new In(buf, 0, buf.length), s, buf.length);
}

// ---------------------------------------------------------------------------------------------------- encode

// A two-pass encoder over the same schema: the first pass sizes every message (the lengths of nested messages and
// packed fields are kept in `lens`, in the order the second pass meets them), the second writes into one Buffer of
// exactly that size. No writer operations, no forks, no Long objects: protobufjs's Writer allocates an operation
// object per field and a state per nested message (~3 KB per task of the load bench, the largest share of the
// orchestrator's garbage). The bytes are protobufjs's own, rule for rule: a field is written when it is present (not
// null or undefined), zero values included; repeated fields when non-empty, numeric ones packed; fields in id order;
// int64 from a number as LongBits.fromNumber, from a decimal string as Long.fromString (modulo 2^64); strings of
// fewer than 40 UTF-16 units by protobufjs's JavaScript UTF-8 writer, longer ones by Buffer's (they differ only on
// lone surrogates), their length as Buffer.byteLength counts it. Anything else (a string for bytes, a Long object, a number
// given for a string, a non-array for a repeated field) makes encodeFast return undefined and the caller uses
// protobufjs, so the output never differs from it.

let fastEncoder = true;
/** Turns the two-pass encoder off (protobufjs's for every message) or on, process-wide: the load bench's arm. */
export function useFastEncoder(on: boolean): void {
  fastEncoder = on;
}

/** Lengths of nested messages and packed fields, in first-meeting order (reused between messages). */
let lens: number[] = [];
let lenAt = 0;
/** A 64-bit value as two unsigned 32-bit halves (reused: no allocation per int64). */
const bits = { lo: 0, hi: 0 };

/** Sets `bits` from an int64/uint64 field value; false when it is not a number or a decimal string. */
function toBits(v: unknown): boolean {
  if (typeof v === 'number') {
    // LongBits.fromNumber
    let x = v;
    const neg = x < 0;
    if (neg) x = -x;
    let lo = x >>> 0;
    let hi = ((x - lo) / 4294967296) >>> 0;
    if (x === 0) lo = hi = 0;
    setBits(lo, hi, neg && x !== 0);
    return true;
  }
  if (typeof v !== 'string') return false;
  // Long.fromString (radix 10): the decimal value modulo 2^64, negated for a leading '-'.
  const neg = v.charCodeAt(0) === 45;
  const start = neg ? 1 : 0;
  if (v.length === start) return false;
  let lo = 0;
  let hi = 0;
  for (let i = start; i < v.length; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    const l = lo * 10 + d;
    const carry = Math.floor(l / 4294967296);
    lo = l >>> 0;
    hi = (hi * 10 + carry) >>> 0;
  }
  setBits(lo, hi, neg && (lo !== 0 || hi !== 0));
  return true;
}

/** bits = (hi, lo), or its two's complement negation (mod 2^64) with `negate`. */
function setBits(lo: number, hi: number, negate: boolean): void {
  if (negate) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
    if (++lo > 4294967295) {
      lo = 0;
      if (++hi > 4294967295) hi = 0;
    }
  }
  bits.lo = lo;
  bits.hi = hi;
}

function varint32Size(v: number): number {
  return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : v < 268435456 ? 4 : 5;
}

function varint64Size(lo: number, hi: number): number {
  // LongBits.prototype.length
  const p1 = ((lo >>> 28) | (hi << 4)) >>> 0;
  const p2 = hi >>> 24;
  if (p2 !== 0) return p2 < 128 ? 9 : 10;
  if (p1 !== 0) return p1 < 16384 ? (p1 < 128 ? 5 : 6) : p1 < 2097152 ? 7 : 8;
  return lo < 16384 ? (lo < 128 ? 1 : 2) : lo < 2097152 ? 3 : 4;
}

/**
 * The number an enum field's value is written as, as protobufjs's fromObject takes it: a name of the enum, or an
 * integer number in int32 range (one the enum does not name included: fromObject passes it through). Undefined for
 * anything else (an unknown name, which fromObject drops, a fraction, a number out of range): left to proto-loader.
 */
function enumNumber(f: Field, v: unknown): number | undefined {
  if (typeof v === 'string') return f.enumType!.byName.get(v);
  if (typeof v === 'number' && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647) return v;
  return undefined;
}

/** Size of one scalar value (without its key); -1 when this encoder does not take it. */
function scalarSize(f: Field, v: unknown): number {
  switch (f.scalar!) {
    case 'enum': {
      const n = enumNumber(f, v);
      return n === undefined ? -1 : n < 0 ? 10 : varint32Size(n); // a negative int32: sign-extended to 10 bytes
    }
    case 'double': return 8;
    case 'float': return 4;
    case 'bool': return 1;
    case 'uint32': return varint32Size((v as number) >>> 0);
    case 'int64':
    case 'uint64': return toBits(v) ? varint64Size(bits.lo, bits.hi) : -1;
    case 'string': {
      if (typeof v !== 'string') return -1;
      const n = utf8Length(v);
      return varint32Size(n) + n;
    }
    case 'bytes': {
      if (!(v instanceof Uint8Array)) return -1;
      return varint32Size(v.length) + v.length;
    }
  }
}

/** Body size of message `s` (fields only), recording nested lengths; -1 when not taken. */
function messageSize(s: Schema, msg: unknown): number {
  if (typeof msg !== 'object' || msg === null) return -1;
  const m = msg as Record<string, unknown>;
  let size = 0;
  const fields = s.fields;
  for (let i = 0; i < fields.length; i++) {
    // indexed loops: for-of allocated an iterator per list in the allocation profile
    const f = fields[i]!;
    const v = m[f.name];
    if (v === undefined || v === null) continue;
    const key = varint32Size((f.id << 3) >>> 0);
    if (f.repeated) {
      if (!Array.isArray(v)) return -1;
      if (v.length === 0) continue;
      if (f.message) {
        for (let j = 0; j < v.length; j++) {
          const at = lenAt++;
          const n = messageSize(f.message, v[j]);
          if (n < 0) return -1;
          lens[at] = n;
          size += key + varint32Size(n) + n;
        }
      } else if (f.packed) {
        const at = lenAt++;
        let n = 0;
        for (let j = 0; j < v.length; j++) {
          const k = scalarSize(f, v[j]);
          if (k < 0) return -1;
          n += k;
        }
        lens[at] = n;
        size += key + varint32Size(n) + n;
      } else {
        for (let j = 0; j < v.length; j++) {
          const k = scalarSize(f, v[j]);
          if (k < 0) return -1;
          size += key + k;
        }
      }
    } else if (f.message) {
      const at = lenAt++;
      const n = messageSize(f.message, v);
      if (n < 0) return -1;
      lens[at] = n;
      size += key + varint32Size(n) + n;
    } else {
      const k = scalarSize(f, v);
      if (k < 0) return -1;
      size += key + k;
      if (f.align && aligning && k >= ALIGN_MIN_BYTES) size += PAD_BYTES;
    }
  }
  return size;
}

function writeVarint32(buf: Buffer, pos: number, v: number): number {
  while (v > 127) {
    buf[pos++] = (v & 127) | 128;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

function writeVarint64(buf: Buffer, pos: number, lo: number, hi: number): number {
  while (hi) {
    buf[pos++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 127) {
    buf[pos++] = (lo & 127) | 128;
    lo >>>= 7;
  }
  buf[pos++] = lo;
  return pos;
}

/**
 * UTF-8 length as Buffer.byteLength gives it (a lone surrogate counts 3: Node writes U+FFFD, protobufjs's short-string
 * writer the surrogate's own 3 bytes); counted in JavaScript below 40 units (no call into C++ per field).
 */
function utf8Length(s: string): number {
  if (s.length >= 40) return Buffer.byteLength(s);
  let n = 0;
  for (let i = 0; i < s.length; ++i) {
    const c = s.charCodeAt(i);
    if (c < 128) n += 1;
    else if (c < 2048) n += 2;
    else if ((c & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      ++i;
      n += 4;
    } else n += 3;
  }
  return n;
}

/** protobufjs's JavaScript UTF-8 writer (used by it for strings of fewer than 40 units). */
function writeUtf8Short(s: string, buf: Buffer, pos: number): number {
  for (let i = 0; i < s.length; ++i) {
    let c1 = s.charCodeAt(i);
    let c2: number;
    if (c1 < 128) buf[pos++] = c1;
    else if (c1 < 2048) {
      buf[pos++] = (c1 >> 6) | 192;
      buf[pos++] = (c1 & 63) | 128;
    } else if ((c1 & 0xfc00) === 0xd800 && ((c2 = s.charCodeAt(i + 1)) & 0xfc00) === 0xdc00) {
      c1 = 0x10000 + ((c1 & 0x03ff) << 10) + (c2 & 0x03ff);
      ++i;
      buf[pos++] = (c1 >> 18) | 240;
      buf[pos++] = ((c1 >> 12) & 63) | 128;
      buf[pos++] = ((c1 >> 6) & 63) | 128;
      buf[pos++] = (c1 & 63) | 128;
    } else {
      buf[pos++] = (c1 >> 12) | 224;
      buf[pos++] = ((c1 >> 6) & 63) | 128;
      buf[pos++] = (c1 & 63) | 128;
    }
  }
  return pos;
}

function writeScalar(f: Field, v: unknown, buf: Buffer, pos: number): number {
  switch (f.scalar!) {
    case 'double': return buf.writeDoubleLE(v as number, pos);
    case 'float': return buf.writeFloatLE(v as number, pos);
    case 'bool':
      buf[pos] = v ? 1 : 0;
      return pos + 1;
    case 'uint32': return writeVarint32(buf, pos, (v as number) >>> 0);
    case 'enum': {
      const n = enumNumber(f, v)!;
      return n < 0 ? writeVarint64(buf, pos, n >>> 0, 0xffffffff) : writeVarint32(buf, pos, n);
    }
    case 'int64':
    case 'uint64':
      toBits(v);
      return writeVarint64(buf, pos, bits.lo, bits.hi);
    case 'string': {
      const str = v as string;
      const n = utf8Length(str);
      pos = writeVarint32(buf, pos, n);
      if (n === 0) return pos;
      if (str.length < 40) writeUtf8Short(str, buf, pos);
      else buf.write(str, pos);
      return pos + n;
    }
    case 'bytes': {
      const b = v as Uint8Array;
      pos = writeVarint32(buf, pos, b.length);
      buf.set(b, pos);
      return pos + b.length;
    }
  }
}

function writeMessage(s: Schema, m: Record<string, unknown>, buf: Buffer, pos: number): number {
  const fields = s.fields;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const v = m[f.name];
    if (v === undefined || v === null) continue;
    const key = (f.id << 3) >>> 0;
    if (f.repeated) {
      const list = v as unknown[];
      if (list.length === 0) continue;
      if (f.message) {
        for (let j = 0; j < list.length; j++) {
          pos = writeVarint32(buf, pos, key | 2);
          pos = writeVarint32(buf, pos, lens[lenAt++]!);
          pos = writeMessage(f.message, list[j] as Record<string, unknown>, buf, pos);
        }
      } else if (f.packed) {
        pos = writeVarint32(buf, pos, key | 2);
        pos = writeVarint32(buf, pos, lens[lenAt++]!);
        for (let j = 0; j < list.length; j++) pos = writeScalar(f, list[j], buf, pos);
      } else {
        for (let j = 0; j < list.length; j++) {
          pos = writeVarint32(buf, pos, key | WIRE[f.scalar!]);
          pos = writeScalar(f, list[j], buf, pos);
        }
      }
    } else if (f.message) {
      pos = writeVarint32(buf, pos, key | 2);
      pos = writeVarint32(buf, pos, lens[lenAt++]!);
      pos = writeMessage(f.message, v as Record<string, unknown>, buf, pos);
    } else if (f.align && aligning && (v as Uint8Array).length + varint32Size((v as Uint8Array).length) >= ALIGN_MIN_BYTES) {
      pos = writeAligned(key | 2, v as Uint8Array, buf, pos);
    } else {
      pos = writeVarint32(buf, pos, key | WIRE[f.scalar!]);
      pos = writeScalar(f, v, buf, pos);
    }
  }
  return pos;
}

// ---------------------------------------------------------------------------------------------------- alignment

/**
 * Bytes fields whose content is laid out 4-byte aligned where the receiver reads it (issue #15, round 28): a
 * tensor's float32 data is then decoded as a view of the received message instead of a copy (lib/transport/tensor.ts
 * decodeTensor; round 27 found the reward worker's score tasks aligned 3 times in 208, the orchestrator's results one
 * in four: where a field lies followed from the lengths before it, a task id's among them).
 */
const ALIGNED_BYTES: ReadonlySet<string> = new Set(['.recovery.v1.Tensor.data']);
/**
 * Smaller fields (length prefix and content, the key not counted) are written as before: a copy of a few values costs
 * less than the padding.
 */
const ALIGN_MIN_BYTES = 256;
/**
 * Where the message's first byte lies in the receiver's buffer, modulo 4: grpc-js (server and client) hands the
 * deserializer `frame.subarray(5)` of a Buffer.concat of the 5-byte frame header and the message, and that Buffer is a
 * fresh allocation or a slice of Node's pool, both 8-byte aligned. Another receiver may read it elsewhere: then its
 * tensors are copies, as before, never wrong values.
 */
const RECEIVE_OFFSET = 5;
/**
 * The padding: every aligned field carries exactly PAD_BYTES more, split between an unknown field before it and one
 * after it (so a message's size, and every length before the field, is known before its place is: the sizing pass
 * stays one pass). Each part is 0 bytes or an unknown length-delimited field of 2 to 7 bytes (key PAD_KEY, a length,
 * zeros), which every protobuf decoder skips (proto3; field 15 is `reserved` in Tensor for it); the parts before
 * that give each residue modulo 4: 0, 5, 2, 3.
 */
const PAD_BYTES = 7;
const PAD_FIELD = 15;
const PAD_KEY = (PAD_FIELD << 3) | 2;
const PAD_BEFORE = [0, 5, 2, 3] as const;

let aligning = true;
/** Turns the alignment padding off (the bytes are then protobufjs's for every message) or on, process-wide: tests. */
export function alignTensorData(on: boolean): void {
  aligning = on;
}

function writePad(buf: Buffer, pos: number, n: number): number {
  if (n === 0) return pos;
  buf[pos++] = PAD_KEY;
  buf[pos++] = n - 2;
  buf.fill(0, pos, pos + n - 2);
  return pos + n - 2;
}

/** Bytes field `b` (its key `key`) between its two paddings, its content at a multiple of 4 in the receiver's buffer. */
function writeAligned(key: number, b: Uint8Array, buf: Buffer, pos: number): number {
  const start = RECEIVE_OFFSET + pos + varint32Size(key) + varint32Size(b.length);
  const before = PAD_BEFORE[(4 - (start & 3)) & 3]!;
  pos = writePad(buf, pos, before);
  pos = writeVarint32(buf, pos, key);
  pos = writeVarint32(buf, pos, b.length);
  buf.set(b, pos);
  return writePad(buf, pos + b.length, PAD_BYTES - before);
}

/**
 * `msg` as message `s` in protobufjs's bytes, or undefined when it holds a value this encoder leaves to protobufjs
 * (see above). Not reentrant (one shared length list), which it need not be: nothing it calls encodes.
 */
export function encodeFast(s: Schema, msg: object): Buffer | undefined {
  if (!s.handled || !fastEncoder) return undefined;
  lenAt = 0;
  const size = messageSize(s, msg);
  if (size < 0) return undefined;
  if (lens.length > 4096) lens = lens.slice(0, lenAt); // a huge message once: do not keep its list
  const buf = Buffer.allocUnsafe(size);
  lenAt = 0;
  const end = writeMessage(s, msg as Record<string, unknown>, buf, 0);
  if (end !== size) throw new Error(`wire codec: encoded ${end} bytes of ${s.name}, sized ${size} (a value changed while encoding?)`);
  return buf;
}

// ---------------------------------------------------------------------------------------------------- envelopes

/**
 * The codec of a oneof envelope (WorkerMessage, OrchestratorMessage): messages whose member types are handled go
 * through this codec, others (Hello: a map below it) through `fallback`.
 */
export interface EnvelopeCodec {
  encode(msg: object): Buffer;
  decode(buf: Buffer): unknown;
  /** The member names handled here (the others use the fallback). */
  readonly handled: readonly string[];
}

let root: protobuf.Root | undefined;
function rootOf(protoPath: string): protobuf.Root {
  if (!root) {
    root = new protobuf.Root();
    root.loadSync(protoPath, { keepCase: true });
    root.resolveAll();
  }
  return root;
}

/** The schema of a message type of the .proto (for tests). */
export function schemaFor(protoPath: string, fullName: string): Schema {
  return schemaOf(rootOf(protoPath).lookupType(fullName));
}

export function envelopeCodec(
  protoPath: string,
  fullName: string,
  fallback: { encode: (msg: unknown) => Buffer; decode: (buf: Buffer) => unknown },
): EnvelopeCodec {
  const type = rootOf(protoPath).lookupType(fullName);
  const top = schemaOf(type);
  const oneof = top.oneofs.find((o) => o.members.length === top.fields.length);
  if (!oneof) throw new Error(`wire codec: ${fullName} must be a single oneof`);
  // A schema for the envelope without the unhandled members: each handled member is encoded/decoded through it.
  const members = new Map<string, Field>();
  for (const f of type.fieldsArray) {
    f.resolve();
    const member = top.byId.get(f.id);
    if (member && (!member.message || member.message.handled)) members.set(member.name, member);
  }
  const byIdHandled = new Set([...members.values()].map((f) => f.id));
  const env: Schema = {
    name: fullName,
    fields: [...members.values()].sort((a, b) => a.id - b.id),
    byId: new Map([...members.values()].map((f) => [f.id, f])),
    byNumber: Object.assign([], Object.fromEntries([...members.values()].map((f) => [f.id, f]))) as Array<Field | undefined>,
    oneofs: [{ name: oneof.name, members: [...members.values()] }],
    fresh: () => ({}),
    handled: true,
    enums: [...members.values()].some((f) => f.enumType !== undefined || f.message?.enums === true),
  };
  // members with an enum below: a message the two-pass encoder declines goes to proto-loader (see Schema.enums)
  const withEnums = [...members.values()].filter((f) => f.enumType !== undefined || f.message?.enums === true).map((f) => f.name);
  const names = [...members.keys()];
  const unhandled = top.fields.filter((f) => !members.has(f.name)).map((f) => f.name);
  return {
    handled: names,
    encode(msg: object): Buffer {
      for (const n of unhandled) {
        const v = (msg as Record<string, unknown>)[n];
        if (v !== undefined && v !== null) return fallback.encode(msg);
      }
      const fast = encodeFast(env, msg);
      if (fast) return fast;
      for (const n of withEnums) {
        const v = (msg as Record<string, unknown>)[n];
        if (v !== undefined && v !== null) return fallback.encode(msg);
      }
      return type.encode(msg).finish() as Buffer;
    },
    decode(buf: Buffer): unknown {
      // Every top-level field must be a handled member; else (Hello) the fallback decodes it all.
      const r = new In(buf, 0, buf.length);
      while (r.pos < buf.length) {
        const key = r.varint();
        const id = key >>> 3;
        if (!byIdHandled.has(id) && top.byId.has(id)) return fallback.decode(buf);
        r.skip(key & 7);
      }
      return readMessage(new In(buf, 0, buf.length), env, buf.length);
    },
  };
}
