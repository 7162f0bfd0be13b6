// ONNX op -> the graph builders, for the ops restoration networks exported by torch.onnx.export use
// (opsets 6-20, enforced at import). Older opsets' attribute forms (Pad/Slice/Split/Squeeze attributes, Upsample, coerced
// Softmax, limited broadcasting) are normalised here, so every graph is built with opset-17 semantics.
// Each translator reads static arguments (shapes, pads, axes, scales) as host values and refuses, naming
// the attribute, what it does not implement; nothing is approximated.

import { dimParts, scaledDim, type Graph, type Shape, type Value } from '../graph/graph.ts';
import * as op from '../graph/ops.ts';
import * as nn from '../graph/nn-ops.ts';
import { hostValue, numbersOf, scalarOf, type HostScalar, type HostValue } from './host-values.ts';

export interface NodeContext {
  g: Graph;
  opType: string;
  opset: number;
  /** `node 'name' (Op)` for messages. */
  what: string;
  inputCount: number;
  outputCount: number;
  has(i: number): boolean;
  isHost(i: number): boolean;
  /** A float initializer not yet read as a tensor (a static argument such as a Clip bound). */
  isInitializer(i: number): boolean;
  tensor(i: number): Value;
  host(i: number): HostValue;
  attr(name: string): unknown;
  /** Which graph input holds a run-time dimension, and at which axis (to read it while the graph runs). */
  runtimeDim: op.DimSource;
}

export type Translated = Value | HostValue;
type Translator = (c: NodeContext) => Translated[];

const FLT_MAX = 3.4028234663852886e38;

function fail(c: NodeContext, message: string): never {
  throw new Error(`${c.what}: ${message}`);
}

const int = (c: NodeContext, name: string, dflt: number): number => (c.attr(name) === undefined ? dflt : Number(c.attr(name)));
const float = (c: NodeContext, name: string, dflt: number): number => (c.attr(name) === undefined ? dflt : Number(c.attr(name)));
const ints = (c: NodeContext, name: string): number[] | undefined => c.attr(name) as number[] | undefined;
const str = (c: NodeContext, name: string, dflt: string): string => (c.attr(name) as string | undefined) ?? dflt;

function staticInts(c: NodeContext, i: number, what: string): number[] {
  try {
    return numbersOf(c.host(i), what);
  } catch (e) {
    return fail(c, (e as Error).message);
  }
}

function require2d(c: NodeContext, x: Value): void {
  if (x.rank !== 4) fail(c, `only 2-D (NCHW) inputs are supported, got shape [${x.shape}]`);
}

/** Before opset 7, Add/Sub/Mul/Div broadcast B against A from `axis` on. */
function legacyBroadcast(c: NodeContext, a: Value, b: Value): Value {
  if (c.opset >= 7 || !int(c, 'broadcast', 0) || c.attr('axis') === undefined) return b;
  const axis = int(c, 'axis', 0);
  const start = axis < 0 ? axis + a.rank : axis;
  const trailing = a.rank - start - b.rank;
  return trailing > 0 ? op.reshape(b, [...b.shape, ...new Array<number>(trailing).fill(1)]) : b;
}

const binary = (f: (a: Value, b: Value) => Value): Translator => (c) => {
  const a = c.tensor(0);
  return [f(a, legacyBroadcast(c, a, c.tensor(1)))];
};

const variadic = (f: (a: Value, b: Value) => Value): Translator => (c) => {
  let y = c.tensor(0);
  for (let i = 1; i < c.inputCount; i++) y = f(y, c.tensor(i));
  return [y];
};

/** SAME_UPPER / SAME_LOWER / VALID padding resolved to explicit [top, left, bottom, right]. */
function convPads(c: NodeContext, x: Value, kernel: number[], strides: number[], dilations: number[]): [number, number, number, number] {
  const autoPad = str(c, 'auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') return (ints(c, 'pads') ?? [0, 0, 0, 0]) as [number, number, number, number];
  if (autoPad === 'VALID') return [0, 0, 0, 0];
  const pads = [0, 0, 0, 0];
  for (let i = 0; i < 2; i++) {
    const size = x.shape[2 + i];
    if (typeof size !== 'number') fail(c, `auto_pad ${autoPad} needs a static spatial size`);
    const total = Math.max(0, (Math.ceil(size / strides[i]) - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size);
    const small = Math.floor(total / 2);
    [pads[i], pads[i + 2]] = autoPad === 'SAME_UPPER' ? [small, total - small] : [total - small, small];
  }
  return pads as [number, number, number, number];
}

function convLike(c: NodeContext, transposed: boolean): Value {
  const x = c.tensor(0);
  const w = c.tensor(1);
  require2d(c, x);
  const b = c.has(2) ? c.tensor(2) : undefined;
  const kernel = ints(c, 'kernel_shape') ?? (w.shape.slice(2) as number[]);
  const strides = ints(c, 'strides') ?? [1, 1];
  const dilations = ints(c, 'dilations') ?? [1, 1];
  const group = int(c, 'group', 1);
  if (!transposed) {
    return op.conv(x, w, b, { strides: strides as [number, number], dilations: dilations as [number, number], group, pads: convPads(c, x, kernel, strides, dilations) });
  }
  let pads = (ints(c, 'pads') ?? [0, 0, 0, 0]) as [number, number, number, number];
  let outputPadding = (ints(c, 'output_padding') ?? [0, 0]) as [number, number];
  const outputShape = ints(c, 'output_shape');
  const autoPad = str(c, 'auto_pad', 'NOTSET');
  if (outputShape || autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const target = outputShape?.slice(-2) ?? [0, 1].map((i) => (x.shape[2 + i] as number) * strides[i]);
    const p = [0, 0, 0, 0];
    for (let i = 0; i < 2; i++) {
      const total = strides[i] * ((x.shape[2 + i] as number) - 1) + outputPadding[i] + (kernel[i] - 1) * dilations[i] + 1 - target[i];
      if (total < 0) {
        outputPadding = outputPadding.map((v, j) => (j === i ? v - total : v)) as [number, number];
        continue;
      }
      const small = Math.floor(total / 2);
      // As the ONNX spec has it: only SAME_UPPER puts the larger half at the end.
      [p[i], p[i + 2]] = autoPad === 'SAME_UPPER' ? [small, total - small] : [total - small, small];
    }
    pads = p as [number, number, number, number];
  }
  return op.convTranspose(x, w, b, { strides: strides as [number, number], dilations: dilations as [number, number], group, pads, outputPadding });
}

function pool(c: NodeContext, kind: 'max' | 'average'): Value {
  const x = c.tensor(0);
  require2d(c, x);
  if (int(c, 'ceil_mode', 0)) fail(c, 'ceil_mode=1 is not supported (export with ceil_mode=False)');
  if (kind === 'max' && c.outputCount > 1) fail(c, 'the Indices output of MaxPool is not supported');
  const kernel = ints(c, 'kernel_shape')! as [number, number];
  const strides = (ints(c, 'strides') ?? [1, 1]) as [number, number];
  const dilations = (ints(c, 'dilations') ?? [1, 1]) as [number, number];
  const pads = convPads(c, x, kernel, strides, dilations);
  if (kind === 'max') return nn.maxPool(x, { kernel, strides, pads, dilations });
  if (dilations.some((d) => d !== 1)) fail(c, 'dilated average pooling is not supported');
  return nn.averagePool(x, { kernel, strides, pads, countIncludePad: int(c, 'count_include_pad', 0) === 1 });
}

/** Softmax before opset 13 flattens to 2-D at `axis`; from 13 on it works along `axis`. */
function softmaxLike(c: NodeContext, f: (x: Value, axis: number) => Value): Value {
  const x = c.tensor(0);
  if (c.opset >= 13) return f(x, int(c, 'axis', -1));
  const axis = int(c, 'axis', 1);
  const a = axis < 0 ? axis + x.rank : axis;
  if (a === x.rank - 1) return f(x, -1);
  const rows = x.shape.slice(0, a);
  const cols = x.shape.slice(a);
  if (![...rows, ...cols].every((d) => typeof d === 'number')) fail(c, `opset-${c.opset} ${c.opType} over axes ${a}.. needs static dimensions`);
  const prod = (d: Shape) => (d as number[]).reduce((p, q) => p * q, 1);
  return op.reshape(f(op.reshape(x, [prod(rows), prod(cols)]), 1), x.shape);
}

function reduce(c: NodeContext, f: (x: Value, axes: number[] | undefined, keep: boolean) => Value, axesInputFrom: number): Value {
  const x = c.tensor(0);
  const axes = c.opset >= axesInputFrom ? (c.has(1) ? staticInts(c, 1, 'axes') : undefined) : ints(c, 'axes');
  if ((!axes || axes.length === 0) && int(c, 'noop_with_empty_axes', 0)) return x;
  return f(x, axes && axes.length ? axes : undefined, int(c, 'keepdims', 1) === 1);
}

function padNode(c: NodeContext): Value {
  const x = c.tensor(0);
  const mode = str(c, 'mode', 'constant');
  if (mode !== 'constant' && mode !== 'reflect' && mode !== 'edge') fail(c, `pad mode '${mode}' is not supported (constant, reflect, edge)`);
  let pads = c.opset >= 11 ? staticInts(c, 1, 'pads') : (ints(c, 'pads') ?? ints(c, 'paddings'))!;
  const value = c.opset >= 11 ? (c.has(2) ? Number(scalarOf(c.host(2))) : 0) : float(c, 'value', 0);
  if (c.opset >= 18 && c.has(3)) {
    const axes = staticInts(c, 3, 'axes').map((a) => (a < 0 ? a + x.rank : a));
    const full = new Array<number>(2 * x.rank).fill(0);
    axes.forEach((a, i) => {
      full[a] = pads[i];
      full[a + x.rank] = pads[i + axes.length];
    });
    pads = full;
  }
  const r = x.rank;
  // Negative pads crop.
  let y = x;
  const crop = x.shape.map((_, i) => i).filter((i) => pads[i] < 0 || pads[i + r] < 0);
  if (crop.length) {
    y = op.slice(y, crop.map((i) => Math.max(0, -pads[i])), crop.map((i) => (x.shape[i] as number) - Math.max(0, -pads[i + r])), crop);
  }
  const before = pads.slice(0, r).map((p) => Math.max(0, p));
  const after = pads.slice(r).map((p) => Math.max(0, p));
  if (before.every((p) => !p) && after.every((p) => !p)) return y;
  return nn.padMode(y, before, after, mode, value);
}

function sliceNode(c: NodeContext): Value {
  const x = c.tensor(0);
  const [starts, ends, axesIn, steps] = c.opset >= 10
    ? [staticInts(c, 1, 'starts'), staticInts(c, 2, 'ends'), c.has(3) ? staticInts(c, 3, 'axes') : undefined, c.has(4) ? staticInts(c, 4, 'steps') : undefined]
    : [ints(c, 'starts')!, ints(c, 'ends')!, ints(c, 'axes'), undefined];
  if (steps && steps.some((s) => s !== 1)) fail(c, `slice steps [${steps}] are not supported (only 1)`);
  const axes = axesIn ?? starts.map((_, i) => i);
  return op.slice(x, starts, ends, axes);
}

function splitNode(c: NodeContext): Value[] {
  const x = c.tensor(0);
  const axis = int(c, 'axis', 0);
  const a = axis < 0 ? axis + x.rank : axis;
  const size = x.shape[a];
  if (typeof size !== 'number') fail(c, `split along the run-time dimension '${size}'`);
  let sizes = c.opset >= 13 ? (c.has(1) ? staticInts(c, 1, 'split') : undefined) : ints(c, 'split');
  if (!sizes) {
    const parts = c.opset >= 18 && c.attr('num_outputs') !== undefined ? int(c, 'num_outputs', 1) : c.outputCount;
    const chunk = Math.ceil(size / parts);
    sizes = Array.from({ length: parts }, (_, i) => Math.min(chunk, size - i * chunk));
  }
  return nn.split(x, sizes, a);
}

const NEAREST_MODES = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];
const COORDINATE_MODES = ['half_pixel', 'half_pixel_symmetric', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn'];

/**
 * Resize/Upsample of the spatial axes. The output size and the scale the coordinate transformation divides
 * by follow onnxruntime (float32 scales; floor(scale * in) from scales, round under a keep_aspect_ratio_policy).
 * `roi`, `extrapolation_value` (tf_crop_and_resize only) and `exclude_outside` (cubic and antialiased
 * filters only) cannot matter for what is accepted here.
 */
function resizeNode(c: NodeContext): Value {
  const x = c.tensor(0);
  require2d(c, x);
  const mode = str(c, 'mode', 'nearest');
  const [h, w] = [x.shape[2], x.shape[3]];
  if (typeof h !== 'number' || typeof w !== 'number') fail(c, 'resize needs static spatial sizes');
  const legacy = c.opType === 'Upsample' || c.opset === 10;
  // Upsample (opset 7: attribute, 9: input), Resize 10 (X, scales), Resize 11+ (X, roi, scales, sizes);
  // from opset 18 `axes` names the axes scales/sizes list. Both are spread over all four axes here.
  let scales: number[] | undefined;
  let sizes: HostScalar[] | undefined;
  const axes = c.opset >= 18 && ints(c, 'axes') ? ints(c, 'axes')!.map((a) => (a < 0 ? a + 4 : a)) : [0, 1, 2, 3];
  if (axes.some((a) => a < 0 || a > 3) || new Set(axes).size !== axes.length) fail(c, `axes [${ints(c, 'axes')}] must be distinct axes of the 4-D input`);
  const spread = <T,>(given: T[], rest: T[], what: string): T[] => {
    if (given.length !== axes.length) fail(c, `${what} [${given}] must give one value per axis in [${axes}]`);
    const all = [...rest];
    axes.forEach((a, i) => (all[a] = given[i]));
    return all;
  };
  if (c.opType === 'Upsample') scales = c.opset >= 9 ? numbersOf(c.host(1), 'scales') : (c.attr('scales') as number[]);
  else if (c.opset === 10) scales = numbersOf(c.host(1), 'scales');
  else if (c.has(3) && c.host(3).data.length) sizes = spread(c.host(3).data, x.shape, 'sizes');
  else if (c.has(2) && c.host(2).data.length) scales = spread(numbersOf(c.host(2), 'scales'), [1, 1, 1, 1], 'scales');
  else fail(c, 'needs scales or sizes');
  // The batch entry may be the run-time symbol (sizes computed from Shape); it must stay the batch.
  if (sizes && (sizes[0] !== x.shape[0] || sizes[1] !== x.shape[1])) fail(c, `resizing the batch or channel axes (sizes [${sizes}]) is not supported`);
  if (sizes && (typeof sizes[2] !== 'number' || typeof sizes[3] !== 'number')) fail(c, `sizes [${sizes}] must give static height and width`);
  const policy = c.opset >= 18 ? str(c, 'keep_aspect_ratio_policy', 'stretch') : 'stretch';
  if (sizes && policy !== 'stretch') {
    // One scale for every listed axis (an unchanged batch or channel axis counts as 1, so a policy over
    // all four axes that moves the scale from 1 resizes them too, which the check below refuses).
    if (policy !== 'not_larger' && policy !== 'not_smaller') fail(c, `keep_aspect_ratio_policy '${policy}' is not one of stretch, not_larger, not_smaller`);
    // onnxruntime leaves an axis given as negative unresized under a policy (the spec resizes it): refused.
    if (ints(c, 'axes')?.some((a) => a < 0)) fail(c, `keep_aspect_ratio_policy '${policy}' with negative axes [${ints(c, 'axes')}] is not supported`);
    const ratios = axes.map((a) => (a < 2 ? 1 : Math.fround((sizes![a] as number) / (x.shape[a] as number))));
    const s = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
    scales = x.shape.map((_, a) => (axes.includes(a) ? s : 1));
    sizes = undefined;
  }
  if (scales && (scales[0] !== 1 || scales[1] !== 1)) fail(c, `resizing the batch or channel axes (scales [${scales}]) is not supported`);
  const fromScale = (n: number, s: number) => (policy === 'stretch' ? Math.floor(Math.fround(s * n)) : Math.round(Math.fround(s * n)));
  const [outH, outW] = sizes ? [sizes[2] as number, sizes[3] as number] : [fromScale(h, scales![2]), fromScale(w, scales![3])];
  if (outH < 1 || outW < 1) fail(c, `the output would be empty (${outH} x ${outW})`);
  // a resize to the input's own size copies it, whatever its scales say (onnxruntime)
  if (outH === h && outW === w) return x;
  const stated: [number, number] | undefined = scales ? [scales[2], scales[3]] : undefined;
  const coord = legacy ? 'asymmetric' : str(c, 'coordinate_transformation_mode', 'half_pixel');
  if (mode === 'nearest') {
    const nearestMode = legacy ? 'simple' : str(c, 'nearest_mode', 'round_prefer_floor');
    if (!COORDINATE_MODES.includes(coord)) fail(c, `nearest resize with coordinate_transformation_mode '${coord}' is not supported`);
    if (nearestMode !== 'simple' && !NEAREST_MODES.includes(nearestMode)) fail(c, `nearest_mode '${nearestMode}' is not one of ${NEAREST_MODES.join(', ')}`);
    return nn.resizeNearestTo(x, outH, outW, coord as nn.CoordinateMode, nearestMode as nn.NearestMode, stated);
  }
  if (mode === 'linear' || mode === 'bilinear') {
    if (!COORDINATE_MODES.includes(coord)) fail(c, `linear resize with coordinate_transformation_mode '${coord}' is not supported`);
    // Antialiasing widens the filter only when down-sampling.
    const [sh, sw] = stated ?? [outH / h, outW / w];
    if (c.opset >= 18 && int(c, 'antialias', 0) !== 0 && (sh < 1 || sw < 1)) fail(c, 'antialias=1 when down-sampling is not supported');
    return nn.resizeBilinear(x, outH, outW, coord as nn.CoordinateMode, stated);
  }
  return fail(c, `resize mode '${mode}' is not supported (nearest, linear)`);
}

function constantNode(c: NodeContext): HostValue {
  for (const [name, dtype] of [['value_float', 'float'], ['value_int', 'int']] as const) {
    if (c.attr(name) !== undefined) return hostValue(dtype, [], [Number(c.attr(name))]);
  }
  for (const [name, dtype] of [['value_floats', 'float'], ['value_ints', 'int']] as const) {
    const v = c.attr(name) as number[] | undefined;
    if (v !== undefined) return hostValue(dtype, [v.length], v);
  }
  const t = c.attr('value') as HostValue | undefined;
  if (!t) fail(c, 'a Constant without a value, value_float(s) or value_int(s) attribute is not supported');
  return t;
}

function gatherNode(c: NodeContext): Value {
  const x = c.tensor(0);
  const axis = int(c, 'axis', 0);
  const a = axis < 0 ? axis + x.rank : axis;
  const idx = c.host(1);
  const picks = staticInts(c, 1, 'indices').map((i) => (i < 0 ? i + (x.shape[a] as number) : i));
  const parts = picks.map((i) => op.slice(x, [i], [i + 1], [a]));
  if (idx.dims.length === 0) return op.squeeze(parts[0], [a]);
  if (idx.dims.length !== 1) fail(c, 'Gather with multi-dimensional indices is not supported');
  return parts.length === 1 ? parts[0] : op.concat(parts, a);
}

function reshapeNode(c: NodeContext): Value {
  const x = c.tensor(0);
  const spec = c.host(1).data;
  const allowZero = int(c, 'allowzero', 0) === 1;
  const target: Shape = spec.map((d, i) => (d === 0 && !allowZero ? x.shape[i] : d));
  const known = target.filter((d) => d !== -1);
  if (target.length - known.length > 1) fail(c, `reshape to [${spec}] has more than one inferred dimension`);
  if (known.length < target.length) {
    // Infer the -1: the input's elements over the known ones, symbols cancelling by name ('N*3' counts as the
    // symbol N and a static 3), so view(-1, H, W) of [N,3,H,W] is [N*3,H,W].
    const syms: string[] = [];
    let num = 1;
    for (const d of x.shape) {
      const p = dimParts(d);
      if (p.symbol) syms.push(p.symbol);
      num *= p.factor;
    }
    for (const d of known) {
      const p = dimParts(d);
      if (p.symbol && !syms.includes(p.symbol)) fail(c, `reshape [${x.shape}] -> [${spec}]: the run-time dimension '${d}' does not come from the input`);
      if (p.symbol) syms.splice(syms.indexOf(p.symbol), 1);
      num /= p.factor;
    }
    if (!Number.isInteger(num)) fail(c, `reshape [${x.shape}] -> [${spec}]: the known sizes do not divide the input's elements`);
    const inferred = syms.length === 0 ? num : syms.length === 1 ? scaledDim(syms[0]!, num) : fail(c, `reshape [${x.shape}] -> [${spec}] cannot infer a dimension that mixes run-time sizes`);
    target[target.indexOf(-1)] = inferred;
  }
  try {
    return op.reshape(x, target);
  } catch (e) {
    return fail(c, (e as Error).message);
  }
}

function squeezeLike(c: NodeContext, kind: 'squeeze' | 'unsqueeze'): Value {
  const x = c.tensor(0);
  const axes = c.opset >= 13 ? (c.has(1) ? staticInts(c, 1, 'axes') : undefined) : ints(c, 'axes');
  if (kind === 'unsqueeze') return op.unsqueeze(x, axes!);
  return op.squeeze(x, axes ?? x.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0));
}

function matmulNode(c: NodeContext): Value {
  let a = c.tensor(0);
  let b = c.tensor(1);
  const [va, vb] = [a.rank === 1, b.rank === 1];
  if (va) a = op.unsqueeze(a, [0]);
  if (vb) b = op.unsqueeze(b, [1]);
  let y = op.matmul(a, b);
  if (vb) y = op.squeeze(y, [y.rank - 1]);
  if (va) y = op.squeeze(y, [y.rank - (vb ? 1 : 2)]);
  return y;
}

function clipNode(c: NodeContext): Value {
  const x = c.tensor(0);
  const lo = c.opset >= 11 ? (c.has(1) ? (c.isHost(1) || c.isInitializer(1) ? Number(scalarOf(c.host(1))) : c.tensor(1)) : -FLT_MAX) : float(c, 'min', -FLT_MAX);
  const hi = c.opset >= 11 ? (c.has(2) ? (c.isHost(2) || c.isInitializer(2) ? Number(scalarOf(c.host(2))) : c.tensor(2)) : FLT_MAX) : float(c, 'max', FLT_MAX);
  return op.clip(x, lo, hi);
}

function hardSigmoid(x: Value, alpha: number, beta: number): Value {
  return op.clip(op.add(op.mul(x, alpha), beta), 0, 1);
}

function gelu(x: Value, approximate: string): Value {
  if (approximate === 'tanh') {
    const inner = op.mul(op.add(x, op.mul(op.mul(op.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
    return op.mul(op.mul(x, 0.5), op.add(op.tanh(inner), 1));
  }
  return op.mul(op.mul(x, 0.5), op.add(nn.erf(op.div(x, Math.SQRT2)), 1));
}

/** The translation table: one entry per supported ONNX op type. */
export const translators: Record<string, Translator> = {
  Add: binary(op.add),
  Sub: binary(op.sub),
  Mul: binary(op.mul),
  Div: binary(op.div),
  Pow: binary(op.pow),
  Sum: variadic(op.add),
  Max: variadic(op.max),
  Min: variadic(op.min),
  Mean: (c) => [op.div(variadic(op.add)(c)[0] as Value, c.inputCount)],
  Sqrt: (c) => [op.sqrt(c.tensor(0))],
  Exp: (c) => [op.exp(c.tensor(0))],
  Log: (c) => [op.log(c.tensor(0))],
  Neg: (c) => [op.neg(c.tensor(0))],
  Abs: (c) => [op.abs(c.tensor(0))],
  Erf: (c) => [nn.erf(c.tensor(0))],
  Relu: (c) => [op.relu(c.tensor(0))],
  LeakyRelu: (c) => [op.leakyRelu(c.tensor(0), float(c, 'alpha', 0.01))],
  PRelu: (c) => {
    const x = c.tensor(0);
    let slope = c.tensor(1);
    // Before opset 7 a [C] slope applies per channel; from 7 on it broadcasts from the right.
    if (c.opset < 7 && slope.rank === 1 && x.rank > 2 && slope.shape[0] === x.shape[1]) slope = op.reshape(slope, [slope.shape[0], ...new Array<number>(x.rank - 2).fill(1)]);
    return [nn.prelu(x, slope)];
  },
  Elu: (c) => [nn.elu(c.tensor(0), float(c, 'alpha', 1))],
  Selu: (c) => [nn.selu(c.tensor(0), float(c, 'alpha', 1.67326319217681884765625), float(c, 'gamma', 1.05070102214813232421875))],
  Sigmoid: (c) => [op.sigmoid(c.tensor(0))],
  HardSigmoid: (c) => [hardSigmoid(c.tensor(0), float(c, 'alpha', 0.2), float(c, 'beta', 0.5))],
  HardSwish: (c) => [op.mul(c.tensor(0), hardSigmoid(c.tensor(0), 1 / 6, 0.5))],
  Tanh: (c) => [op.tanh(c.tensor(0))],
  Softplus: (c) => [nn.softplus(c.tensor(0))],
  Softsign: (c) => [nn.softsign(c.tensor(0))],
  Mish: (c) => [op.mul(c.tensor(0), op.tanh(nn.softplus(c.tensor(0))))],
  Gelu: (c) => [gelu(c.tensor(0), str(c, 'approximate', 'none'))],
  Softmax: (c) => [softmaxLike(c, nn.softmax)],
  LogSoftmax: (c) => [softmaxLike(c, nn.logSoftmax)],
  Clip: (c) => [clipNode(c)],
  Identity: (c) => [c.tensor(0)],
  Dropout: (c) => [c.tensor(0)],
  Cast: (c) => {
    const to = int(c, 'to', 1);
    if (to !== 1) fail(c, `casting a tensor to ONNX type ${to} is not supported (float only)`);
    return [c.tensor(0)];
  },
  MatMul: (c) => [matmulNode(c)],
  Gemm: (c) => [nn.gemm(c.tensor(0), c.tensor(1), c.has(2) ? c.tensor(2) : undefined, { alpha: float(c, 'alpha', 1), beta: float(c, 'beta', 1), transA: int(c, 'transA', 0) === 1, transB: int(c, 'transB', 0) === 1 })],
  Conv: (c) => [convLike(c, false)],
  ConvTranspose: (c) => [convLike(c, true)],
  BatchNormalization: (c) => {
    if (c.opset < 9 && int(c, 'spatial', 1) !== 1) fail(c, 'spatial=0 batch normalisation is not supported');
    // Training form (the batch's own statistics), in each opset's spelling: is_test=0 (opset 6, its
    // default), the running-statistics outputs (7-13: only a training-mode node has them), training_mode=1.
    const training = c.opset < 7 ? int(c, 'is_test', 0) === 0 : c.opset < 14 ? c.outputCount > 1 : int(c, 'training_mode', 0) === 1;
    if (training) fail(c, `training-mode batch normalisation is not supported (${c.opset < 7 ? 'is_test=0' : c.opset < 14 ? `${c.outputCount} outputs` : 'training_mode=1'}): export the network in eval mode (model.eval() before torch.onnx.export)`);
    return [nn.batchNorm(c.tensor(0), c.tensor(1), c.tensor(2), c.tensor(3), c.tensor(4), float(c, 'epsilon', 1e-5))];
  },
  InstanceNormalization: (c) => [nn.instanceNorm(c.tensor(0), c.tensor(1), c.tensor(2), float(c, 'epsilon', 1e-5))],
  LayerNormalization: (c) => {
    if (c.outputCount > 1) fail(c, 'the Mean and InvStdDev outputs of LayerNormalization are not supported');
    return [nn.layerNorm(c.tensor(0), c.tensor(1), c.has(2) ? c.tensor(2) : undefined, int(c, 'axis', -1), float(c, 'epsilon', 1e-5))];
  },
  AveragePool: (c) => [pool(c, 'average')],
  MaxPool: (c) => [pool(c, 'max')],
  GlobalAveragePool: (c) => [nn.globalAveragePool(c.tensor(0))],
  ReduceMean: (c) => [reduce(c, op.reduceMean, 18)],
  ReduceSum: (c) => [reduce(c, op.reduceSum, 13)],
  Reshape: (c) => [reshapeNode(c)],
  Flatten: (c) => [nn.flatten(c.tensor(0), int(c, 'axis', 1))],
  Transpose: (c) => {
    const x = c.tensor(0);
    return [op.transpose(x, ints(c, 'perm') ?? x.shape.map((_, i) => x.rank - 1 - i))];
  },
  Concat: (c) => [op.concat(Array.from({ length: c.inputCount }, (_, i) => c.tensor(i)), int(c, 'axis', 0))],
  Split: (c) => splitNode(c),
  Slice: (c) => [sliceNode(c)],
  Squeeze: (c) => [squeezeLike(c, 'squeeze')],
  Unsqueeze: (c) => [squeezeLike(c, 'unsqueeze')],
  Expand: (c) => {
    const x = c.tensor(0);
    const shape = c.host(1).data as Shape;
    // A run-time batch in the target (pos_embed.expand(B, -1, -1)) is read from the input that carries it.
    return [op.expandTo(x, op.broadcastShapes(x.shape, shape, 'Expand'), c.runtimeDim)];
  },
  Tile: (c) => [nn.tile(c.tensor(0), staticInts(c, 1, 'repeats'))],
  Gather: (c) => [gatherNode(c)],
  Pad: (c) => [padNode(c)],
  Resize: (c) => [resizeNode(c)],
  Upsample: (c) => [resizeNode(c)],
  DepthToSpace: (c) => [nn.depthToSpace(c.tensor(0), int(c, 'blocksize', 0), str(c, 'mode', 'DCR') as 'DCR' | 'CRD')],
  SpaceToDepth: (c) => [nn.spaceToDepth(c.tensor(0), int(c, 'blocksize', 0))],
  Constant: (c) => [constantNode(c)],
  // Only reached for a shape holding a run-time size (a static one is folded): the fill expanded to it.
  ConstantOfShape: (c) => {
    const t = c.attr('value') as HostValue | undefined;
    if (t && t.dtype !== 'float') fail(c, `a ${t.dtype} ConstantOfShape of a run-time size is not supported (float only)`);
    return [op.expandTo(c.g.scalar(t ? Number(t.data[0]) : 0), c.host(0).data as Shape, c.runtimeDim)];
  },
};

/** Ops that only ever produce static values (their inputs must be static too). */
export const HOST_ONLY = new Set(['Shape', 'Range', 'Equal', 'Where', 'Floor', 'Ceil']);

export const SUPPORTED_OPS: readonly string[] = [...new Set([...Object.keys(translators), ...HOST_ONLY])].sort();
