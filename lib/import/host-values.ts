// Values an imported graph computes from constants and static shapes alone (Shape, Gather, Unsqueeze,
// Concat, ... as torch.onnx.export writes them around Reshape and Resize). The importer evaluates them on
// the host, so the built graph only holds the tensor computation; a dimension known only at run time
// (the batch, 'N') travels through them as its symbol, or times a static size as 'N*3' (dimParts).

import { dimParts, scaledDim } from '../graph/graph.ts';

export type HostScalar = number | string;

export interface HostValue {
  kind: 'host';
  /** 'float' is float32 (every result rounded to it, as onnxruntime computes), 'double' float64 (a Cast to it). */
  dtype: 'float' | 'double' | 'int' | 'bool';
  dims: number[];
  data: HostScalar[];
}

export function hostValue(dtype: HostValue['dtype'], dims: number[], data: HostScalar[]): HostValue {
  const n = dims.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw new Error(`host value of shape [${dims}] needs ${n} values, got ${data.length}`);
  return { kind: 'host', dtype, dims, data };
}

export const scalarOf = (v: HostValue): HostScalar => {
  if (v.data.length !== 1) throw new Error(`expected a single value, got shape [${v.dims}]`);
  return v.data[0];
};

export function numbersOf(v: HostValue, what: string): number[] {
  return v.data.map((x) => {
    if (typeof x !== 'number') throw new Error(`${what}: needs static values, but one is the run-time dimension '${x}'`);
    return x;
  });
}

function arith(op: string, a: HostScalar, b: HostScalar, dtype: HostValue['dtype']): HostScalar {
  if (typeof a === 'number' && typeof b === 'number') {
    // float32 results rounded as onnxruntime's float32 kernels round them: floor(10 * 0.7f) is 7, not 6.
    const round = dtype === 'float' ? Math.fround : (x: number) => x;
    switch (op) {
      case 'Add': return round(a + b);
      case 'Sub': return round(a - b);
      case 'Mul': return round(a * b);
      case 'Div': return dtype === 'int' ? Math.trunc(a / b) : round(a / b);
      case 'Equal': return a === b ? 1 : 0;
    }
  }
  // A symbol survives the identities, and integer products and exact quotients by a static size ('N' * 3 is
  // 'N*3', x.view(B * C, H, W); 'N*3' / 3 is 'N'): shape arithmetic, which Reshape reads exactly.
  if (dtype === 'int' && op === 'Mul' && (typeof a === 'number') !== (typeof b === 'number')) {
    const [s, k] = typeof a === 'number' ? [dimParts(b), a] : [dimParts(a), b as number];
    if (Number.isInteger(k) && k > 0) return scaledDim(s.symbol!, s.factor * k);
  }
  if (dtype === 'int' && op === 'Div' && typeof a === 'string' && typeof b === 'number') {
    const s = dimParts(a);
    if (Number.isInteger(b) && b > 0 && s.factor % b === 0) return scaledDim(s.symbol!, s.factor / b);
  }
  if (op === 'Mul' && b === 1) return a;
  if (op === 'Mul' && a === 1) return b;
  if ((op === 'Add' || op === 'Sub') && b === 0) return a;
  if (op === 'Div' && b === 1) return a;
  if (op === 'Equal') return a === b ? 1 : 0;
  throw new Error(`${op} of '${a}' and '${b}' depends on a run-time dimension`);
}

/** The numpy broadcast of several shapes, and for each operand a map from an output flat index to its own. */
function broadcast(shapes: number[][], what: string): { dims: number[]; at: Array<(flat: number) => number> } {
  const r = Math.max(...shapes.map((d) => d.length));
  const padded = shapes.map((d) => [...new Array<number>(r - d.length).fill(1), ...d]);
  const dims = Array.from({ length: r }, (_, i) => Math.max(...padded.map((d) => d[i])));
  for (const d of padded) {
    if (d.some((x, i) => x !== 1 && x !== dims[i])) throw new Error(`${what}: static shapes [${shapes.map((s) => `[${s}]`).join(', ')}] do not broadcast`);
  }
  const at = padded.map((d) => (flat: number): number => {
    let idx = 0;
    let stride = 1;
    let rem = flat;
    for (let i = r - 1; i >= 0; i--) {
      const c = rem % dims[i];
      rem = Math.floor(rem / dims[i]);
      idx += (d[i] === 1 ? 0 : c) * stride;
      stride *= d[i];
    }
    return idx;
  });
  return { dims, at };
}

/** Elementwise binary op with numpy broadcasting on host values. */
function binary(op: string, a: HostValue, b: HostValue): HostValue {
  const { dims, at } = broadcast([a.dims, b.dims], op);
  const n = dims.reduce((p, q) => p * q, 1);
  const dtype = op === 'Equal' ? 'bool' : a.dtype;
  const data = Array.from({ length: n }, (_, i) => arith(op, a.data[at[0](i)], b.data[at[1](i)], a.dtype));
  return hostValue(dtype, dims, data);
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Gathers along axis 0 of a host value (the only use torch exports make of Gather on shapes). */
function gather(data: HostValue, indices: HostValue, axis: number): HostValue {
  if (normAxis(axis, data.dims.length) !== 0) throw new Error('Gather on a static value is supported along axis 0 only');
  const inner = data.dims.slice(1).reduce((p, q) => p * q, 1);
  const out: HostScalar[] = [];
  for (const i of numbersOf(indices, 'Gather indices')) {
    const k = i < 0 ? i + data.dims[0] : i;
    out.push(...data.data.slice(k * inner, (k + 1) * inner));
  }
  return hostValue(data.dtype, [...indices.dims, ...data.dims.slice(1)], out);
}

/** Slice of a 1-D host value (starts, ends and steps clamped as ONNX does). */
function slice1d(x: HostValue, start: number, end: number, step: number): HostValue {
  if (x.dims.length !== 1) throw new Error('Slice on a static value is supported for 1-D values only');
  const n = x.dims[0];
  const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v < 0 ? v + n : v));
  const out: HostScalar[] = [];
  if (step > 0) for (let i = clamp(start, 0, n); i < clamp(end, 0, n); i += step) out.push(x.data[i]);
  else for (let i = clamp(start, 0, n - 1); i > clamp(end, -1, n - 1); i += step) out.push(x.data[i]);
  return hostValue(x.dtype, [out.length], out);
}

/** A float rounded to the nearest value with `mantissa` bits after the point (ties to even), exponent >= `minExp`. */
function roundToFormat(x: number, mantissa: number, minExp: number, max: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  let e = Math.max(minExp, Math.floor(Math.log2(a)));
  if (e > minExp && 2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const q = 2 ** (e - mantissa);
  const v = a / q;
  let r = Math.round(v);
  if (r - v === 0.5 && r % 2 !== 0) r--;
  const out = r * q;
  return Math.sign(x) * (out > max ? Infinity : out);
}

/** float16 and bfloat16 values as a float32 Cast to them rounds (to nearest, ties to even). */
export const toFloat16 = (x: number): number => roundToFormat(Math.fround(x), 10, -14, 65504);
export const toBfloat16 = (x: number): number => roundToFormat(Math.fround(x), 7, -126, 3.3895313892515355e38);

/** ONNX Cast of a static value: float types rounded to their precision, integer types truncated. */
function castHost(a: HostValue, to: number): HostValue {
  const each = (f: (x: number) => number) => a.data.map((x) => (typeof x === 'number' ? f(x) : x));
  switch (to) {
    case 1: return hostValue('float', a.dims, each(Math.fround));
    case 11: return hostValue('double', a.dims, a.data);
    // float16 / bfloat16 values are float32 values too; the arithmetic after them is float32 in this graph
    case 10: return hostValue('float', a.dims, each(toFloat16));
    case 16: return hostValue('float', a.dims, each(toBfloat16));
    case 9: return hostValue('bool', a.dims, each((x) => (x !== 0 ? 1 : 0)));
    case 2: case 3: case 4: case 5: case 6: case 7: case 12: case 13:
      return hostValue('int', a.dims, each(Math.trunc));
    default: throw new Error(`Cast of a static value to ONNX type ${to} is not supported`);
  }
}

export interface HostArgs {
  op: string;
  inputs: Array<HostValue | null>;
  attr: (name: string) => unknown;
  opset: number;
}

/** The ops evaluated on the host when every input is static; null when `op` is not one of them. */
export function evalHost({ op, inputs, attr, opset }: HostArgs): HostValue | null {
  const [a, b] = inputs;
  switch (op) {
    case 'Identity':
      return a;
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
    case 'Equal':
      return binary(op, a!, b!);
    case 'Cast':
      return castHost(a!, Number(attr('to')));
    case 'Floor':
    case 'Ceil':
    case 'Neg': {
      const f = op === 'Floor' ? Math.floor : op === 'Ceil' ? Math.ceil : (x: number) => -x;
      return hostValue(a!.dtype, a!.dims, numbersOf(a!, op).map(f));
    }
    case 'Gather':
      return gather(a!, b!, Number(attr('axis') ?? 0));
    case 'Unsqueeze': {
      const axes = opset >= 13 ? numbersOf(b!, 'Unsqueeze axes') : (attr('axes') as number[]);
      const rank = a!.dims.length + axes.length;
      const dims = [...a!.dims];
      for (const ax of axes.map((x) => normAxis(x, rank)).sort((p, q) => p - q)) dims.splice(ax, 0, 1);
      return hostValue(a!.dtype, dims, a!.data);
    }
    case 'Squeeze': {
      const axes = opset >= 13 && b ? numbersOf(b, 'Squeeze axes') : ((attr('axes') as number[] | undefined) ?? a!.dims.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0));
      const drop = axes.map((x) => normAxis(x, a!.dims.length));
      return hostValue(a!.dtype, a!.dims.filter((_, i) => !drop.includes(i)), a!.data);
    }
    case 'Concat': {
      const parts = inputs as HostValue[];
      if (parts.some((p) => p.dims.length !== 1)) throw new Error('Concat of static values is supported for 1-D values only');
      const data = parts.flatMap((p) => p.data);
      return hostValue(parts[0].dtype, [data.length], data);
    }
    case 'Slice': {
      const [starts, ends, axes, steps] = opset >= 10
        ? [numbersOf(inputs[1]!, 'Slice'), numbersOf(inputs[2]!, 'Slice'), inputs[3] ? numbersOf(inputs[3], 'Slice') : [0], inputs[4] ? numbersOf(inputs[4], 'Slice') : [1]]
        : [attr('starts') as number[], attr('ends') as number[], (attr('axes') as number[] | undefined) ?? [0], [1]];
      if (axes.length !== 1 || normAxis(axes[0], 1) !== 0) throw new Error('Slice on a static value is supported along axis 0 only');
      return slice1d(a!, starts[0], ends[0], steps[0]);
    }
    case 'Reshape': {
      const shape = numbersOf(b!, 'Reshape shape');
      const n = a!.data.length;
      const known = shape.reduce((p, d, i) => (d === -1 ? p : p * (d === 0 ? a!.dims[i] : d)), 1);
      return hostValue(a!.dtype, shape.map((d, i) => (d === -1 ? n / known : d === 0 ? a!.dims[i] : d)), a!.data);
    }
    case 'ConstantOfShape': {
      // a shape holding the run-time batch (torch.zeros_like(x)) is built as a tensor instead
      if (a!.data.some((d) => typeof d !== 'number')) return null;
      const dims = numbersOf(a!, 'ConstantOfShape shape');
      const t = attr('value') as HostValue | undefined;
      const fill = t ? t.data[0] : 0;
      return hostValue(t?.dtype ?? 'float', dims, new Array(dims.reduce((p, q) => p * q, 1)).fill(fill));
    }
    case 'Range': {
      const [start, limit, delta] = inputs.map((v) => Number(scalarOf(v!)));
      const out: number[] = [];
      for (let v = start; delta > 0 ? v < limit : v > limit; v += delta) out.push(v);
      return hostValue(a!.dtype, [out.length], out);
    }
    case 'Where': {
      const [c, x, y] = inputs as HostValue[];
      const { dims, at } = broadcast([c.dims, x.dims, y.dims], 'Where');
      const n = dims.reduce((p, q) => p * q, 1);
      return hostValue(x.dtype, dims, Array.from({ length: n }, (_, i) => (c.data[at[0](i)] ? x.data[at[1](i)] : y.data[at[2](i)])));
    }
    default:
      return null;
  }
}
