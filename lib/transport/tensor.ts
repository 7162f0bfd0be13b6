// Tensors on the wire: `message Tensor { string dtype; repeated int64 shape; bytes data }`, little-endian raw.
//
// In memory a tensor is `{ dtype, shape, data: Float32Array }`: dtype is the WIRE type it was / will be sent as.
// - float32: exact.
// - float16: IEEE binary16, round-to-nearest-even on encode (~3 significant digits). The reward workers sent
//   SSIM maps in it until round 24; they send float32 now (docs/grpo.md section 3: float16 put 2-10% error on the
//   dense advantages). It is still decoded.
// - uint8: raw integers 0..255 (NOT scaled: an image in [0,1] must be multiplied by 255 by the caller, who
//   then owns the quantisation). Encode refuses values that are not integers in range.
// Validation is strict both ways and every error names the field (e.g. `rollout_task.items[2].image`).
import type { Tensor, Tensor__Output } from './proto.ts';
import { DEFAULT_MAX_MESSAGE_BYTES } from './proto.ts';
import { quoteForLog } from '../log/quote.ts';

export const DTYPES = ['float32', 'float16', 'uint8'] as const;
export type DType = (typeof DTYPES)[number];
export const ITEMSIZE: Readonly<Record<DType, number>> = { float32: 4, float16: 2, uint8: 1 };
export const MAX_RANK = 8;

export interface HostTensor {
  dtype: DType;
  shape: number[];
  data: Float32Array;
}

/** A tensor that failed validation; `field` is the message path that held it. */
export class TensorError extends Error {
  readonly field: string;
  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.name = 'TensorError';
    this.field = field;
  }
}

export interface TensorCheckOptions {
  /** Message path used in errors. Default 'tensor'. */
  field?: string;
  /** Largest accepted data size in bytes. Default 64 MiB (the default gRPC message limit). */
  maxBytes?: number;
  /** Accept NaN / Infinity in the data. Default false: a non-finite value is an error naming its index. */
  allowNonFinite?: boolean;
}

export interface EncodeOptions extends TensorCheckOptions {
  /**
   * float32 only: the wire bytes are a view of `data` instead of a copy. For a caller that made `data` for this
   * message and never changes it afterwards (the orchestrator's tasks and TrainBatches): one copy fewer per
   * tensor, which in the pipeline is garbage the orchestrator would otherwise collect.
   */
  share?: boolean;
}

export interface DecodeOptions extends TensorCheckOptions {
  /** Expected shape; null entries are wildcards. The rank must match. */
  expectShape?: ReadonlyArray<number | null>;
  /** Accepted wire dtypes. Default: all. */
  expectDtype?: DType | readonly DType[];
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isDType(x: unknown): x is DType {
  return typeof x === 'string' && (DTYPES as readonly string[]).includes(x);
}

function describe(x: unknown): string {
  if (typeof x === 'string') return quoteForLog(x, 40);
  return String(x);
}

/** Validates a shape (numbers, decimal strings as protobuf int64 arrive, or Long-likes) and returns numbers. */
export function checkShape(shape: unknown, field = 'tensor'): number[] {
  if (!Array.isArray(shape)) throw new TensorError(field, `shape must be an array, got ${describe(shape)}`);
  if (shape.length > MAX_RANK) throw new TensorError(field, `rank ${shape.length} exceeds the maximum ${MAX_RANK}`);
  return shape.map((d: unknown, i: number) => {
    let n: number;
    if (typeof d === 'number') n = d;
    else if (typeof d === 'string' && /^-?\d+$/.test(d)) n = Number(d);
    else if (typeof d === 'bigint') n = Number(d);
    else if (d !== null && typeof d === 'object' && typeof (d as { toString(): string }).toString === 'function') {
      const s = String(d);
      n = /^-?\d+$/.test(s) ? Number(s) : NaN;
    } else n = NaN;
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new TensorError(field, `shape[${i}] must be a non-negative integer, got ${describe(d)}`);
    }
    return n;
  });
}

/** Number of elements of a validated shape, refusing sizes above maxBytes for the given dtype. */
function checkedSize(shape: number[], dtype: DType, field: string, maxBytes: number): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n * ITEMSIZE[dtype] > maxBytes) {
      throw new TensorError(
        field,
        `shape [${shape.join(',')}] (${dtype}) needs more than the ${maxBytes}-byte limit`,
      );
    }
  }
  return n;
}

/** Throws TensorError naming `field` and the first infinity or NaN of `data` (decodeTensor's check, for a caller that decoded with allowNonFinite and checks in a pass of its own). */
export function checkFinite(data: Float32Array, field: string): void {
  const i = firstNonFinite(data);
  if (i >= 0) throw new TensorError(field, `non-finite value ${data[i]} at flat index ${i}`);
}

const EXPONENT = 0x7f800000;
const EXPONENT_ONE = 0x00800000;

/**
 * The index of the first infinity or NaN of `data`, or -1. Read as bits, four values a test: a float32 is
 * non-finite exactly when its exponent bits are all ones, and then (bits & EXPONENT) + EXPONENT_ONE is 2^31,
 * negative as an int32 (every finite exponent stays below). 2-3x faster than reading each value as a number
 * (v - v !== 0), and every role checks every tensor it sends or receives (docs/performance-history/pipeline.md, "Round 13: orch13").
 */
export function firstNonFinite(data: Float32Array): number {
  const w = new Int32Array(data.buffer, data.byteOffset, data.length); // a Float32Array is always 4-byte aligned
  const n = w.length;
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    if ((((w[i]! & EXPONENT) + EXPONENT_ONE) | ((w[i + 1]! & EXPONENT) + EXPONENT_ONE) | ((w[i + 2]! & EXPONENT) + EXPONENT_ONE) | ((w[i + 3]! & EXPONENT) + EXPONENT_ONE)) < 0) break;
  }
  for (; i < n; i++) if ((w[i]! & EXPONENT) === EXPONENT) return i;
  return -1;
}

// ------------------------------------------------------------------------------------------------
// float16

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** binary16 bits of a number (rounded to float32 first), round-to-nearest-even; overflow gives +-Infinity. */
export function float16Bits(value: number): number {
  f32[0] = value;
  return float16BitsOfFloat32Bits(u32[0]!);
}

/** float16Bits of the float32 whose bit pattern is `x` (a uint32). */
function float16BitsOfFloat32Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp32 = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp32 === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const exp = exp32 - 127 + 15;
  if (exp >= 0x1f) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (exp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++; // a carry into the exponent is correct
  return sign | half;
}

/**
 * float16Bits of every value of `src` into `dst`, read as bit patterns (no number round trip per value: 3x
 * faster, the reward worker's SSIM maps; docs/performance-history/pipeline.md, "Round 11: pipe11"); a NaN's payload does not
 * matter (any NaN gives sign | 0x7e00) and its sign is the same either way. Returns the index of the first value
 * that is an infinity or NaN in binary16 (overflow included), or -1.
 */
function float16Into(src: Float32Array, dst: Uint16Array): number {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  let bad = -1;
  for (let i = 0; i < bits.length; i++) {
    const h = float16BitsOfFloat32Bits(bits[i]!);
    if (bad < 0 && (h & 0x7c00) === 0x7c00) bad = i;
    dst[i] = h;
  }
  return bad;
}

let halfTable: Float32Array | undefined;
function float16Table(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      halfTable[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
    }
  }
  return halfTable;
}

/** The number a binary16 bit pattern stands for. */
export function float16Value(bits: number): number {
  return float16Table()[bits & 0xffff]!;
}

/** The values a float16 tensor carries: each rounded to the nearest binary16, as encode + decode would. */
export function roundToFloat16(data: Float32Array): Float32Array {
  return Float32Array.from(data, (v) => float16Value(float16Bits(v)));
}

// ------------------------------------------------------------------------------------------------
// encode / decode

/**
 * In-memory tensor -> proto Tensor. Validates dtype, shape, data length, size, finiteness (float16 overflow
 * counts as non-finite), and for uint8 that every value is an integer in 0..255.
 */
export function encodeTensor(t: HostTensor, opts: EncodeOptions = {}): Tensor {
  const field = opts.field ?? 'tensor';
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (!isDType(t.dtype)) throw new TensorError(field, `dtype must be one of ${DTYPES.join(', ')}, got ${describe(t.dtype)}`);
  const shape = checkShape(t.shape, field);
  const n = checkedSize(shape, t.dtype, field, maxBytes);
  if (!(t.data instanceof Float32Array)) throw new TensorError(field, 'data must be a Float32Array');
  if (t.data.length !== n) {
    throw new TensorError(field, `data has ${t.data.length} elements, shape [${shape.join(',')}] needs ${n}`);
  }
  const src = t.data;
  if (!opts.allowNonFinite) checkFinite(src, field);
  let buf: Buffer;
  if (t.dtype === 'float32' && opts.share && LITTLE_ENDIAN) {
    buf = Buffer.from(src.buffer, src.byteOffset, n * 4);
  } else if (t.dtype === 'float32') {
    buf = Buffer.allocUnsafe(n * 4);
    if (LITTLE_ENDIAN) buf.set(new Uint8Array(src.buffer, src.byteOffset, n * 4));
    else for (let i = 0; i < n; i++) buf.writeFloatLE(src[i]!, i * 4);
  } else if (t.dtype === 'float16') {
    buf = Buffer.allocUnsafe(n * 2);
    if (LITTLE_ENDIAN && buf.byteOffset % 2 === 0) {
      const bad = float16Into(src, new Uint16Array(buf.buffer, buf.byteOffset, n));
      if (bad >= 0 && !opts.allowNonFinite) throw new TensorError(field, `value ${src[bad]} at flat index ${bad} overflows float16 (max 65504)`);
    } else for (let i = 0; i < n; i++) {
      const h = float16Bits(src[i]!);
      if (!opts.allowNonFinite && (h & 0x7c00) === 0x7c00) {
        throw new TensorError(field, `value ${src[i]} at flat index ${i} overflows float16 (max 65504)`);
      }
      buf.writeUInt16LE(h, i * 2);
    }
  } else {
    buf = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) {
      const v = src[i]!;
      if (!Number.isInteger(v) || v < 0 || v > 255) {
        throw new TensorError(field, `uint8 value at flat index ${i} must be an integer in 0..255, got ${v}`);
      }
      buf[i] = v;
    }
  }
  return { dtype: t.dtype, shape, data: buf };
}

/**
 * proto Tensor -> in-memory tensor. Throws TensorError naming the field for: a missing tensor, unknown dtype, bad
 * shape, byte length != elements * itemsize, size over maxBytes, non-finite values (unless allowed), and shape/dtype
 * differing from expectShape/expectDtype.
 *
 * float32 whose bytes start at a multiple of 4 in their buffer (little-endian host): `data` is a VIEW of the message's
 * bytes, not a copy (issue #15: one copy per tensor fewer in every role that receives tensors). Safe because the
 * received bytes belong to that one message: grpc-js assembles each message into a Buffer of its own
 * (Buffer.concat: a fresh allocation or a slice of Node's pool, never handed out again) and both wire codecs return
 * bytes fields as views of it; no role writes into a decoded tensor (docs/performance-history/pipeline.md, "Round 27:
 * wire27"). A caller that wants to write into `data` while the message is still read (the learner's batch digest
 * reads a TrainBatch's bytes after training on it) must copy it first; the learner never writes into one (its
 * exclusion of forged rows copies: lib/grpo/logp-check.ts excludeRows; test/roles/learner-harness.ts checks every
 * TrainResult's digest against the sent batch). A view keeps its whole message alive (for a TrainBatch about 1 MB,
 * which the learner holds until the batch's result is sent in any case). The direct wire codec places every tensor's
 * data of 256 bytes or more 4-byte aligned (lib/transport/wire-codec.ts, "alignment"; since round 29 the TrainBatch's
 * too), so in the pipeline those are views; a message decoded in the process that built it (no wire between) gives a
 * view of the sender's array where encodeTensor shared it. Other float32 bytes (smaller tensors, which lie wherever
 * the protobuf framing puts them; proto-loader's unpadded bytes), float16 and uint8 give a fresh array.
 */
export function decodeTensor(msg: Tensor | Tensor__Output | null | undefined, opts: DecodeOptions = {}): HostTensor {
  const field = opts.field ?? 'tensor';
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (msg === null || msg === undefined || typeof msg !== 'object') throw new TensorError(field, 'tensor is missing');
  const dtype = msg.dtype;
  if (!isDType(dtype)) throw new TensorError(field, `dtype must be one of ${DTYPES.join(', ')}, got ${describe(dtype)}`);
  if (opts.expectDtype !== undefined) {
    const ok = typeof opts.expectDtype === 'string' ? [opts.expectDtype] : opts.expectDtype;
    if (!ok.includes(dtype)) throw new TensorError(field, `dtype ${dtype} is not accepted here (expected ${ok.join(' or ')})`);
  }
  const shape = checkShape(msg.shape ?? [], field);
  if (opts.expectShape) {
    const want = opts.expectShape;
    const wantText = `[${want.map((d) => (d === null ? '*' : d)).join(',')}]`;
    if (want.length !== shape.length || want.some((d, i) => d !== null && d !== shape[i])) {
      throw new TensorError(field, `shape [${shape.join(',')}] does not match the expected ${wantText}`);
    }
  }
  const n = checkedSize(shape, dtype, field, maxBytes);
  const raw = msg.data;
  if (!(raw instanceof Uint8Array)) throw new TensorError(field, 'data must be bytes');
  const want = n * ITEMSIZE[dtype];
  if (raw.length !== want) {
    throw new TensorError(
      field,
      `data has ${raw.length} bytes, shape [${shape.join(',')}] x ${dtype} (${ITEMSIZE[dtype]} B) needs ${want}`,
    );
  }
  if (dtype === 'float32' && LITTLE_ENDIAN && raw.byteOffset % 4 === 0) {
    const view = new Float32Array(raw.buffer, raw.byteOffset, n);
    if (!opts.allowNonFinite) checkFinite(view, field);
    return { dtype, shape, data: view };
  }
  const out = new Float32Array(n);
  if (dtype === 'float32') {
    if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(raw);
    else {
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.length);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
    }
  } else if (dtype === 'float16') {
    const table = float16Table();
    if (LITTLE_ENDIAN && raw.byteOffset % 2 === 0) {
      // one 16-bit read per value instead of two bytes put together (the orchestrator's SSIM maps)
      const h = new Uint16Array(raw.buffer, raw.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = table[h[i]!]!;
    } else for (let i = 0; i < n; i++) out[i] = table[raw[2 * i]! | (raw[2 * i + 1]! << 8)]!;
  } else {
    for (let i = 0; i < n; i++) out[i] = raw[i]!;
  }
  if (!opts.allowNonFinite && dtype !== 'uint8') checkFinite(out, field);
  return { dtype, shape, data: out };
}

/** Like decodeTensor, but an absent tensor (null / undefined / proto default) gives undefined. */
export function decodeOptionalTensor(
  msg: Tensor | Tensor__Output | null | undefined,
  opts: DecodeOptions = {},
): HostTensor | undefined {
  return msg === null || msg === undefined ? undefined : decodeTensor(msg, opts);
}

/** Element count of a shape (no validation). */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
