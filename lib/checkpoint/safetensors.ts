// The safetensors file layout (https://github.com/huggingface/safetensors), float32 only:
//
//   u64 little-endian N | N bytes of UTF-8 JSON header | data section
//
// The header maps tensor name -> { dtype: "F32", shape: [...], data_offsets: [begin, end] } (offsets are
// relative to the start of the data section) plus an optional "__metadata__": { string: string }.
// Writer rules follow the reference implementation so Python's `safetensors.numpy.load_file` /
// `safetensors.torch.load_file` read our files: the header is padded with spaces so the data section starts
// on an 8-byte boundary, tensors are laid out contiguously in header order with no gaps, and the data
// section ends exactly at the end of the last tensor. The reader applies the same checks as the reference
// reader (header starts with '{', offsets contiguous from 0, sizes match shapes, no trailing bytes) and in
// addition refuses any dtype other than F32.

import { formatShape, numel, type TensorMap } from './tensors.ts';

/** The reference implementation refuses headers above 100 MB; so do we. */
export const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  /** The tensor or header field the error is about, when there is one. */
  readonly field?: string;
  constructor(message: string, field?: string) {
    super(message);
    this.name = 'SafetensorsError';
    if (field !== undefined) this.field = field;
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function f32ToLeBytes(src: Float32Array, dst: Uint8Array, offset: number): void {
  if (LITTLE_ENDIAN) {
    dst.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength), offset);
    return;
  }
  const dv = new DataView(dst.buffer, dst.byteOffset + offset, src.byteLength);
  for (let i = 0; i < src.length; i++) dv.setFloat32(i * 4, src[i]!, true);
}

function leBytesToF32(src: Uint8Array, begin: number, count: number, view: boolean): Float32Array {
  // a view where the caller allows it and the bytes are 4-byte aligned: no fresh allocation (page faults cost
  // ~3 ms per MB on a VM, docs/performance-history/broadcast.md) and no copy
  if (view && LITTLE_ENDIAN && (src.byteOffset + begin) % 4 === 0) return new Float32Array(src.buffer, src.byteOffset + begin, count);
  const out = new Float32Array(count);
  if (LITTLE_ENDIAN) {
    // Copy bytes (never a view: the caller's buffer may be reused, and may not be 4-byte aligned).
    new Uint8Array(out.buffer).set(src.subarray(begin, begin + count * 4));
    return out;
  }
  const dv = new DataView(src.buffer, src.byteOffset + begin, count * 4);
  for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, true);
  return out;
}

/**
 * Serialise tensors and string metadata to safetensors bytes. Tensors are written in sorted name order so
 * the same content always gives the same bytes (and digest).
 */
export function encodeSafetensors(tensors: TensorMap, metadata: Record<string, string> = {}): Uint8Array {
  const names = [...tensors.keys()].sort();
  // Null-prototype objects: a tensor or metadata key named "__proto__" must become a key, not a prototype.
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const meta: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const key of Object.keys(metadata).sort()) {
    const value = metadata[key];
    if (typeof value !== 'string') throw new SafetensorsError(`metadata "${key}" must be a string, got ${typeof value}`, key);
    meta[key] = value;
  }
  if (Object.keys(meta).length > 0) header.__metadata__ = meta;
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new SafetensorsError('a tensor may not be named "__metadata__"', name);
    if (name.length === 0) throw new SafetensorsError('a tensor may not have an empty name', name);
    const t = tensors.get(name)!;
    if (!(t.data instanceof Float32Array)) throw new SafetensorsError(`tensor "${name}": data must be a Float32Array`, name);
    let n: number;
    try {
      n = numel(t.shape);
    } catch (e) {
      throw new SafetensorsError(`tensor "${name}": ${(e as Error).message}`, name);
    }
    if (n !== t.data.length) {
      throw new SafetensorsError(
        `tensor "${name}": shape ${formatShape(t.shape)} needs ${n} elements, data has ${t.data.length}`, name);
    }
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + n * 4] };
    offset += n * 4;
  }
  let json = JSON.stringify(header);
  let jsonBytes = new TextEncoder().encode(json);
  const pad = (8 - ((8 + jsonBytes.length) % 8)) % 8;
  if (pad > 0) {
    json += ' '.repeat(pad);
    jsonBytes = new TextEncoder().encode(json);
  }
  const out = new Uint8Array(8 + jsonBytes.length + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(jsonBytes.length), true);
  out.set(jsonBytes, 8);
  const dataStart = 8 + jsonBytes.length;
  for (const name of names) {
    const t = tensors.get(name)!;
    const [begin] = (header[name] as { data_offsets: [number, number] }).data_offsets;
    f32ToLeBytes(t.data, out, dataStart + begin);
  }
  return out;
}

export interface DecodedSafetensors {
  tensors: TensorMap;
  metadata: Record<string, string>;
}

function isNonNegInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Parse safetensors bytes. `source` (a file name, or 'checkpoint') prefixes every error message.
 * Throws SafetensorsError naming the tensor or field on: truncated bytes, an oversized or malformed header,
 * a non-F32 dtype, a bad shape, offsets that are outside the data section, overlapping, gapped or
 * inconsistent with the shape, and trailing bytes after the last tensor.
 * `views`: tensors are views of `bytes` where they are 4-byte aligned (copies elsewhere), for a caller that
 * neither writes the tensors nor reuses `bytes`; default: every tensor is a copy.
 */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors', opts: { views?: boolean } = {}): DecodedSafetensors {
  const fail = (msg: string, field?: string): never => {
    throw new SafetensorsError(`${source}: ${msg}`, field);
  };
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, the 8-byte header length is missing`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) fail(`malformed header: header length ${n64} exceeds ${MAX_HEADER_BYTES} bytes`);
  const n = Number(n64);
  if (8 + n > bytes.length) fail(`truncated: header length is ${n} bytes but only ${bytes.length - 8} bytes follow`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail('malformed header: not valid UTF-8');
  }
  if (!text.startsWith('{')) fail(`malformed header: does not start with '{'`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`malformed header: invalid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('malformed header: not a JSON object');
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (info === null) continue; // the reference reader accepts null (no metadata)
      if (typeof info !== 'object' || Array.isArray(info)) fail('malformed header: "__metadata__" must be an object of strings', '__metadata__');
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`malformed header: metadata "${k}" must be a string, got ${JSON.stringify(v)}`, k);
        metadata[k] = v as string;
      }
      continue;
    }
    if (info === null || typeof info !== 'object' || Array.isArray(info)) fail(`tensor "${name}": header entry is not an object`, name);
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (dtype !== 'F32') fail(`tensor "${name}": dtype ${JSON.stringify(dtype)} is not supported (only F32)`, name);
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) fail(`tensor "${name}": malformed shape ${JSON.stringify(shape)}`, name);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt)) {
      fail(`tensor "${name}": malformed data_offsets ${JSON.stringify(offsets)}`, name);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`tensor "${name}": data_offsets [${begin}, ${end}] end before begin`, name);
    if (end > dataLength) {
      fail(`tensor "${name}": data_offsets [${begin}, ${end}] outside the data section of ${dataLength} bytes (truncated?)`, name);
    }
    const count = numel(shape as number[]);
    if ((end - begin) !== count * 4) {
      fail(`tensor "${name}": data_offsets [${begin}, ${end}] span ${end - begin} bytes, shape ${formatShape(shape as number[])} F32 needs ${count * 4}`, name);
    }
    entries.push({ name, shape: shape as number[], begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of entries) {
    if (e.begin !== expected) {
      fail(`tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] ${e.begin < expected ? 'overlap the previous tensor' : 'leave a gap after the previous tensor'} (expected begin ${expected})`, e.name);
    }
    expected = e.end;
  }
  if (expected !== dataLength) fail(`malformed: ${dataLength - expected} trailing bytes after the last tensor (data section ${dataLength} bytes, tensors cover ${expected})`);
  const tensors: TensorMap = new Map();
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    tensors.set(e.name, { shape: e.shape, data: leBytesToF32(bytes, dataStart + e.begin, (e.end - e.begin) / 4, opts.views === true) });
  }
  return { tensors, metadata };
}
