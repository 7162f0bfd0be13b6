// The ops that restoration networks written in PyTorch need beyond the project's own two policies:
// activations, softmax, normalisations, pooling, resampling, padding modes and pixel shuffle. A few are
// single ONNX nodes with a rule of their own in gradient.ts (Erf, Softplus, Elu, Selu, PRelu, Softmax,
// LogSoftmax, MaxPool); the rest are composed from differentiable builders, so their gradients come from
// the parts and nothing is approximated.

import type { Dim, Value } from './graph.ts';
import {
  abs, add, concat, conv, div, expandTo, matmul, mul, pad, reduceMean, reshape, slice, sqrt, staticDim, sub,
  transpose, upsampleNearest, type ConvOptions,
} from './ops.ts';

function same(op: string, x: Value, attrs: Record<string, { float: number }> = {}): Value {
  return x.graph.emit(op, [x], attrs, [{ dtype: x.dtype, shape: x.shape }])[0];
}

function axisOf(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

// ---------------------------------------------------------------------------------------------------
// Activations

export const erf = (x: Value): Value => same('Erf', x);
export const softplus = (x: Value): Value => same('Softplus', x);
export const elu = (x: Value, alpha = 1): Value => same('Elu', x, { alpha: { float: alpha } });
/** SELU with PyTorch's constants by default. */
export const selu = (x: Value, alpha = 1.6732632423543772, gamma = 1.0507009873554805): Value =>
  same('Selu', x, { alpha: { float: alpha }, gamma: { float: gamma } });
export const softsign = (x: Value): Value => div(x, add(abs(x), 1));

/** PRelu: x where x > 0, slope * x elsewhere; the slope broadcasts to x (PyTorch exports it as [C,1,1]). */
export function prelu(x: Value, slope: Value): Value {
  return x.graph.emit('PRelu', [x, slope], {}, [{ dtype: x.dtype, shape: x.shape }])[0];
}

export function softmax(x: Value, axis = -1): Value {
  return x.graph.emit('Softmax', [x], { axis: axisOf(axis, x.rank) }, [{ dtype: x.dtype, shape: x.shape }])[0];
}
export function logSoftmax(x: Value, axis = -1): Value {
  return x.graph.emit('LogSoftmax', [x], { axis: axisOf(axis, x.rank) }, [{ dtype: x.dtype, shape: x.shape }])[0];
}

// ---------------------------------------------------------------------------------------------------
// Normalisations (inference form: statistics of the batch are not used)

/** Reshapes a per-channel vector [C] to [C,1,...] so it broadcasts over an NC... tensor of the given rank. */
function perChannel(v: Value, rank: number): Value {
  return reshape(v, [v.shape[0], ...new Array<number>(rank - 2).fill(1)]);
}

/** BatchNormalization with running statistics: (x - mean) / sqrt(var + eps) * scale + bias. */
export function batchNorm(x: Value, scale: Value, bias: Value, mean: Value, variance: Value, eps = 1e-5): Value {
  const r = x.rank;
  const a = div(perChannel(scale, r), sqrt(add(perChannel(variance, r), eps)));
  return add(mul(sub(x, perChannel(mean, r)), a), perChannel(bias, r));
}

/** Normalises over `axes` with the biased variance, as PyTorch's instance, layer and group norms do. */
function normalise(x: Value, axes: number[], eps: number): Value {
  const centred = sub(x, reduceMean(x, axes, true));
  const variance = reduceMean(mul(centred, centred), axes, true);
  return div(centred, sqrt(add(variance, eps)));
}

/** InstanceNormalization: each (sample, channel) plane normalised, then a per-channel affine map. */
export function instanceNorm(x: Value, scale: Value, bias: Value, eps = 1e-5): Value {
  const axes = x.shape.map((_, i) => i).slice(2);
  return add(mul(normalise(x, axes, eps), perChannel(scale, x.rank)), perChannel(bias, x.rank));
}

/** LayerNormalization over the axes from `axis` on; scale and bias have the shape of those axes. */
export function layerNorm(x: Value, scale: Value, bias: Value | undefined, axis = -1, eps = 1e-5): Value {
  const a = axisOf(axis, x.rank);
  const axes = x.shape.map((_, i) => i).slice(a);
  const y = mul(normalise(x, axes, eps), scale);
  return bias ? add(y, bias) : y;
}

// ---------------------------------------------------------------------------------------------------
// Linear layers and shapes

export interface GemmOptions {
  alpha?: number;
  beta?: number;
  transA?: boolean;
  transB?: boolean;
}

/** alpha * A' B' + beta * C, A' and B' optionally transposed (nn.Linear exports Gemm with transB). */
export function gemm(a: Value, b: Value, c?: Value, o: GemmOptions = {}): Value {
  const at = o.transA ? transpose(a, [1, 0]) : a;
  const bt = o.transB ? transpose(b, [1, 0]) : b;
  const y = mul(matmul(at, bt), o.alpha ?? 1);
  return c ? add(y, mul(c, o.beta ?? 1)) : y;
}

/** Flatten to 2-D: the axes before `axis` form the rows, the rest the columns. */
export function flatten(x: Value, axis = 1): Value {
  const a = axis < 0 ? axis + x.rank : axis;
  const prod = (dims: Dim[]): Dim => (dims.length === 1 ? dims[0] : dims.reduce<number>((p, d) => p * staticDim(d, 'flatten'), 1));
  return reshape(x, [a === 0 ? 1 : prod(x.shape.slice(0, a)), a === x.rank ? 1 : prod(x.shape.slice(a))]);
}

/** Splits along `axis` into pieces of the given sizes. */
export function split(x: Value, sizes: number[], axis: number): Value[] {
  const a = axisOf(axis, x.rank);
  let start = 0;
  return sizes.map((s) => {
    const piece = slice(x, [start], [start + s], [a]);
    start += s;
    return piece;
  });
}

/** Repeats x `repeats[i]` times along each axis i. */
export function tile(x: Value, repeats: number[]): Value {
  let y = x;
  repeats.forEach((r, axis) => {
    if (r !== 1) y = concat(new Array<Value>(r).fill(y), axis);
  });
  return y;
}

/** DepthToSpace (PixelShuffle): DCR is ONNX's default order, CRD is PyTorch's PixelShuffle. */
export function depthToSpace(x: Value, b: number, mode: 'DCR' | 'CRD' = 'DCR'): Value {
  const [n, c0, h0, w0] = x.shape;
  const [c, h, w] = [staticDim(c0, 'depthToSpace'), staticDim(h0, 'depthToSpace'), staticDim(w0, 'depthToSpace')];
  if (c % (b * b)) throw new Error(`depthToSpace: ${c} channels are not divisible by ${b}x${b}`);
  const co = c / (b * b);
  const t =
    mode === 'DCR'
      ? transpose(reshape(x, [n, b, b, co, h, w]), [0, 3, 4, 1, 5, 2])
      : transpose(reshape(x, [n, co, b, b, h, w]), [0, 1, 4, 2, 5, 3]);
  return reshape(t, [n, co, h * b, w * b]);
}

/** SpaceToDepth (PixelUnshuffle in ONNX's order). */
export function spaceToDepth(x: Value, b: number): Value {
  const [n, c0, h0, w0] = x.shape;
  const [c, h, w] = [staticDim(c0, 'spaceToDepth'), staticDim(h0, 'spaceToDepth'), staticDim(w0, 'spaceToDepth')];
  if (h % b || w % b) throw new Error(`spaceToDepth: ${h}x${w} is not divisible by ${b}`);
  const t = transpose(reshape(x, [n, c, h / b, b, w / b, b]), [0, 3, 5, 1, 2, 4]);
  return reshape(t, [n, c * b * b, h / b, w / b]);
}

// ---------------------------------------------------------------------------------------------------
// Padding modes

export type PadMode = 'constant' | 'reflect' | 'edge';

/**
 * Pads `before[i]` / `after[i]` elements on each side of axis i. Reflect and edge padding are built from
 * single-element slices concatenated in mirrored or repeated order, so Slice and Concat carry the gradient.
 */
export function padMode(x: Value, before: number[], after: number[], mode: PadMode, value = 0): Value {
  if (mode === 'constant') return pad(x, before, after, value);
  let y = x;
  for (let axis = 0; axis < x.rank; axis++) {
    const [p0, p1] = [before[axis] ?? 0, after[axis] ?? 0];
    if (!p0 && !p1) continue;
    const n = staticDim(y.shape[axis], 'pad');
    if (mode === 'reflect' && (p0 >= n || p1 >= n)) throw new Error(`pad: reflect padding ${p0}/${p1} needs more than ${n} elements along axis ${axis}`);
    const at = (i: number): Value => slice(y, [i], [i + 1], [axis]);
    const head = Array.from({ length: p0 }, (_, k) => at(mode === 'reflect' ? p0 - k : 0));
    const tail = Array.from({ length: p1 }, (_, k) => at(mode === 'reflect' ? n - 2 - k : n - 1));
    y = concat([...head, y, ...tail], axis);
  }
  return y;
}

// ---------------------------------------------------------------------------------------------------
// Pooling

export interface PoolOptions {
  kernel: [number, number];
  strides?: [number, number];
  /** [top, left, bottom, right]. */
  pads?: [number, number, number, number];
  dilations?: [number, number];
  /** Whether padded zeros count in the average (PyTorch's default is yes). */
  countIncludePad?: boolean;
}

/**
 * Average pooling as a depthwise convolution with a constant kernel, so the Conv rule carries its
 * gradient. Without count_include_pad the border windows divide by the number of real pixels instead.
 */
export function averagePool(x: Value, o: PoolOptions): Value {
  const g = x.graph;
  const c = staticDim(x.shape[1], 'averagePool channels');
  const [kh, kw] = o.kernel;
  const opts: ConvOptions = { strides: o.strides, pads: o.pads, group: c };
  const w = g.constant(new Float32Array(c * kh * kw).fill(1 / (kh * kw)), [c, 1, kh, kw]);
  const y = conv(x, w, undefined, opts);
  const padded = (o.pads ?? [0, 0, 0, 0]).some((p) => p > 0);
  if (o.countIncludePad !== false || !padded) return y;
  // Fraction of each window that lies inside the image, computed once on the host.
  const [h, wd] = [staticDim(x.shape[2], 'averagePool'), staticDim(x.shape[3], 'averagePool')];
  const [ho, wo] = [staticDim(y.shape[2], 'averagePool'), staticDim(y.shape[3], 'averagePool')];
  const [sh, sw] = o.strides ?? [1, 1];
  const [pt, pl] = o.pads ?? [0, 0, 0, 0];
  const frac = new Float32Array(ho * wo);
  for (let i = 0; i < ho; i++) {
    for (let j = 0; j < wo; j++) {
      const rows = Math.min(i * sh - pt + kh, h) - Math.max(i * sh - pt, 0);
      const cols = Math.min(j * sw - pl + kw, wd) - Math.max(j * sw - pl, 0);
      frac[i * wo + j] = (rows * cols) / (kh * kw);
    }
  }
  return div(y, g.constant(frac, [ho, wo]));
}

/** Max pooling (one ONNX node; its rule routes each window's gradient to the first maximum). */
export function maxPool(x: Value, o: PoolOptions): Value {
  const s = o.strides ?? [1, 1];
  const p = o.pads ?? [0, 0, 0, 0];
  const d = o.dilations ?? [1, 1];
  const out = [0, 1].map((i) => {
    const size = staticDim(x.shape[2 + i], 'maxPool');
    const o2 = Math.floor((size + p[i] + p[i + 2] - d[i] * (o.kernel[i] - 1) - 1) / s[i]) + 1;
    if (o2 < 1) throw new Error(`maxPool: input ${size} too small for kernel ${o.kernel[i]}`);
    return o2;
  });
  const attrs = { kernel_shape: [...o.kernel], strides: [...s], pads: [...p], dilations: [...d] };
  return x.graph.emit('MaxPool', [x], attrs, [{ dtype: x.dtype, shape: [x.shape[0], x.shape[1], out[0], out[1]] }])[0];
}

export const globalAveragePool = (x: Value): Value => reduceMean(x, x.shape.map((_, i) => i).slice(2), true);

// ---------------------------------------------------------------------------------------------------
// Resampling

export type CoordinateMode = 'half_pixel' | 'half_pixel_symmetric' | 'pytorch_half_pixel' | 'align_corners' | 'asymmetric' | 'tf_half_pixel_for_nn';
/** ONNX's nearest_mode, plus 'simple': Resize-10 and Upsample (floor up-sampling, ceil down-sampling, as onnxruntime). */
export type NearestMode = 'round_prefer_floor' | 'round_prefer_ceil' | 'floor' | 'ceil' | 'simple';

/**
 * The source coordinate of output index `o` under an ONNX coordinate transformation; `scale` is the scale
 * the graph states (or out / in). `r` rounds each step: Math.fround follows onnxruntime's float32
 * arithmetic, which decides the ties nearest rounding meets.
 */
export function sourceCoordinate(o: number, inSize: number, outSize: number, scale: number, mode: CoordinateMode, r = (v: number): number => v): number {
  switch (mode) {
    case 'align_corners':
      return outSize === 1 ? 0 : r(r(o * (inSize - 1)) / (outSize - 1));
    case 'asymmetric':
      return r(o / scale);
    case 'tf_half_pixel_for_nn':
      return r(r(o + 0.5) / scale);
    case 'half_pixel_symmetric': {
      // onnxruntime computes the offset in float32 and the rest in double.
      const offset = r(r(inSize / 2) * r(1 - r(outSize / r(scale * inSize))));
      return r(offset + (o + 0.5) / scale - 0.5);
    }
    case 'pytorch_half_pixel':
      if (outSize === 1) return 0;
    // falls through: otherwise half_pixel
    case 'half_pixel':
      return r(r(r(o + 0.5) / scale) - 0.5);
  }
}

/** Nearest-neighbour resize by integer factors (what nn.Upsample(scale_factor=k) exports). */
export function resizeNearest(x: Value, fh: number, fw: number): Value {
  if (!Number.isInteger(fh) || !Number.isInteger(fw) || fh < 1 || fw < 1) throw new Error(`resize: nearest mode needs integer up-sampling factors, got ${fh} x ${fw}`);
  if (fh === fw) return upsampleNearest(x, fh);
  const [n, c, h, w] = x.shape;
  const hh = staticDim(h, 'resize');
  const ww = staticDim(w, 'resize');
  const spread = expandTo(reshape(x, [n, c, hh, 1, ww, 1]), [n, c, hh, fh, ww, fw]);
  return reshape(spread, [n, c, hh * fh, ww * fw]);
}

/** The source index of each output index of a 1-D nearest resize, as onnxruntime computes it. */
export function nearestIndices(inSize: number, outSize: number, scale: number, coord: CoordinateMode, mode: NearestMode): Int32Array {
  const at = new Int32Array(outSize);
  // an axis of scale 1 is left as it is (onnxruntime), where tf_half_pixel_for_nn's shift would move it by one
  if (scale === 1 && outSize === inSize) return at.map((_, o) => o);
  for (let o = 0; o < outSize; o++) {
    const x = sourceCoordinate(o, inSize, outSize, scale, coord, Math.fround);
    const tie = x - Math.floor(x) === 0.5;
    let i: number;
    if (mode === 'floor') i = Math.floor(x);
    else if (mode === 'ceil') i = Math.ceil(x);
    else if (mode === 'simple') i = scale < 1 ? Math.ceil(x) : Math.floor(x);
    else if (mode === 'round_prefer_floor') i = tie ? Math.floor(x) : Math.round(x);
    else i = tie ? Math.ceil(x) : Math.round(x);
    at[o] = Math.min(Math.max(i, 0), inSize - 1);
  }
  return at;
}

/** The integer factor f when `at` repeats each input index f times in order (o -> floor(o / f)), else 0. */
function repeatFactor(at: Int32Array, inSize: number): number {
  const f = at.length / inSize;
  return Number.isInteger(f) && at.every((i, o) => i === Math.floor(o / f)) ? f : 0;
}

/** The [out, in] one-hot matrix that picks input `at[o]` for output o. */
function oneHot(at: Int32Array, inSize: number): Float32Array {
  const m = new Float32Array(at.length * inSize);
  at.forEach((i, o) => (m[o * inSize + i] = 1));
  return m;
}

/**
 * Nearest resize of NCHW to [outH, outW] under any coordinate transformation and rounding: the index map
 * is computed here; an integer repetition (PyTorch's nn.Upsample) takes the expand path, any other map
 * two products with constant one-hot matrices (exact for finite inputs, differentiable).
 */
export function resizeNearestTo(x: Value, outH: number, outW: number, coord: CoordinateMode, mode: NearestMode, scales?: [number, number]): Value {
  const g = x.graph;
  const h = staticDim(x.shape[2], 'resize');
  const w = staticDim(x.shape[3], 'resize');
  const [sh, sw] = scales ?? [Math.fround(outH / h), Math.fround(outW / w)];
  const ih = nearestIndices(h, outH, sh, coord, mode);
  const iw = nearestIndices(w, outW, sw, coord, mode);
  const [fh, fw] = [repeatFactor(ih, h), repeatFactor(iw, w)];
  if (fh && fw) return resizeNearest(x, fh, fw);
  const ah = g.constant(oneHot(ih, h), [outH, h]);
  const awT = g.constant(transposed(oneHot(iw, w), outW, w), [w, outW]);
  return matmul(ah, matmul(x, awT));
}

/**
 * The [out, in] matrix of 1-D linear interpolation under an ONNX coordinate transformation; `scale` is
 * out / in (or the scale the graph states).
 */
export function linearWeights(inSize: number, outSize: number, scale: number, mode: CoordinateMode): Float32Array {
  const m = new Float32Array(outSize * inSize);
  for (let o = 0; o < outSize; o++) {
    const x = Math.min(Math.max(sourceCoordinate(o, inSize, outSize, scale, mode), 0), inSize - 1);
    const i0 = Math.floor(x);
    const i1 = Math.min(i0 + 1, inSize - 1);
    const t = x - i0;
    m[o * inSize + i0] += 1 - t;
    m[o * inSize + i1] += t;
  }
  return m;
}

/** Bilinear resize of NCHW to [outH, outW] as two products with constant interpolation matrices. */
export function resizeBilinear(x: Value, outH: number, outW: number, mode: CoordinateMode, scales?: [number, number]): Value {
  const g = x.graph;
  const h = staticDim(x.shape[2], 'resize');
  const w = staticDim(x.shape[3], 'resize');
  const [sh, sw] = scales ?? [outH / h, outW / w];
  const ah = g.constant(linearWeights(h, outH, sh, mode), [outH, h]);
  const awT = g.constant(transposed(linearWeights(w, outW, sw, mode), outW, w), [w, outW]);
  return matmul(ah, matmul(x, awT));
}

function transposed(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c];
  return t;
}

