// Weights for an imported network from a safetensors file of a PyTorch state dict. torch.onnx.export
// names initializers after the state dict, so names map directly (a 'module.' or 'model.' prefix, as
// DataParallel and wrappers add, is tolerated); every parameter must be found with its exact shape.
// Floating tensors of any width are read to float32; integer entries (BatchNorm's num_batches_tracked)
// are not weights and are ignored.

import type { TensorMap } from '../checkpoint/tensors.ts';
import type { ImportedNetwork } from './onnx-import.ts';

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const WIDTH: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Reads every floating tensor of a safetensors file as float32. */
export function readStateDict(bytes: Uint8Array, source: string): TensorMap {
  if (bytes.length < 8) throw new Error(`${source}: not a safetensors file (${bytes.length} bytes, truncated?)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > bytes.length - 8 || headerLen > 100_000_000) throw new Error(`${source}: safetensors header of ${headerLen} bytes does not fit the file (${bytes.length} bytes, truncated?)`);
  let header: Record<string, Entry | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new Error(`${source}: safetensors header is not JSON (${(e as Error).message})`);
  }
  const base = 8 + headerLen;
  const out: TensorMap = new Map();
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const t = raw as Entry;
    const width = WIDTH[t.dtype];
    if (!width) throw new Error(`${source}: tensor '${name}' has dtype ${t.dtype}, which is not supported`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    const [begin, end] = t.data_offsets;
    if (end - begin !== n * width) throw new Error(`${source}: tensor '${name}' occupies ${end - begin} bytes, its shape [${t.shape}] of ${t.dtype} needs ${n * width}`);
    if (base + end > bytes.length) throw new Error(`${source}: tensor '${name}' ends at byte ${base + end}, past the end of the file (${bytes.length} bytes, truncated?)`);
    if (!t.dtype.startsWith('F') && t.dtype !== 'BF16') continue;
    const data = new Float32Array(n);
    const at = base + begin;
    for (let i = 0; i < n; i++) {
      if (t.dtype === 'F32') data[i] = view.getFloat32(at + 4 * i, true);
      else if (t.dtype === 'F64') data[i] = view.getFloat64(at + 8 * i, true);
      else if (t.dtype === 'F16') data[i] = halfToFloat(view.getUint16(at + 2 * i, true));
      else data[i] = new Float32Array(new Uint32Array([view.getUint16(at + 2 * i, true) << 16]).buffer)[0];
    }
    out.set(name, { shape: t.shape, data });
  }
  return out;
}

/** The network's parameters taken from a state dict; a missing or misshapen tensor is named. */
export function weightsFromStateDict(net: ImportedNetwork, bytes: Uint8Array, source: string): TensorMap {
  const dict = readStateDict(bytes, source);
  const find = (name: string) => dict.get(name) ?? dict.get(`module.${name}`) ?? dict.get(`model.${name}`);
  const weights: TensorMap = new Map();
  const missing: string[] = [];
  for (const p of net.params) {
    const t = find(p.name);
    if (!t) {
      missing.push(p.name);
      continue;
    }
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw new Error(`${source}: tensor '${p.name}' has shape [${t.shape}], but ${net.source} needs [${p.shape}] (read by ${p.usedBy})`);
    }
    weights.set(p.name, t);
  }
  if (missing.length) {
    const shown = missing.slice(0, 8).map((m) => `'${m}'`).join(', ');
    throw new Error(`${source}: missing ${missing.length} tensor(s) that ${net.source} needs: ${shown}${missing.length > 8 ? ', ...' : ''} (the state dict has ${dict.size} floating tensors; names must match the ONNX initializers)`);
  }
  return weights;
}
