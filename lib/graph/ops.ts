// The ops the project's networks are written with: each builder infers its output shape and emits one
// ONNX node (or folds constants). Their vector-Jacobian products live in one table, gradient.ts.

import { Graph, Value, dimParts, type Attrs, type Dim, type DType, type Shape, numel } from './graph.ts';

export type Operand = Value | number;

// ---------------------------------------------------------------------------------------------------
// Shapes and small helpers

function lift(g: Graph, x: Operand): Value {
  return typeof x === 'number' ? g.scalar(x) : x;
}

function graphOf(...xs: Operand[]): Graph {
  for (const x of xs) if (typeof x !== 'number') return x.graph;
  throw new Error('an op needs at least one tensor operand');
}

export function broadcastShapes(a: Shape, b: Shape, what = 'broadcast'): Shape {
  const r = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da === db || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else throw new Error(`${what}: shapes [${a}] and [${b}] do not broadcast`);
  }
  return out;
}

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

export function staticDim(d: Dim, what: string): number {
  if (typeof d !== 'number') throw new Error(`${what}: dimension '${d}' must be static`);
  return d;
}

function isScalarConst(v: Value, x: number): boolean {
  return !!v.constant && v.constant.dtype === 'float32' && v.constant.data.length === 1 && v.constant.data[0] === x;
}

/** Sums a broadcast gradient back down to the shape of the operand it flows to. */
export function sumTo(dy: Value, shape: Shape): Value {
  const lead = dy.rank - shape.length;
  if (lead < 0) throw new Error(`sumTo: cannot sum [${dy.shape}] to larger rank [${shape}]`);
  const axes: number[] = [];
  for (let i = 0; i < dy.rank; i++) {
    if (i < lead) axes.push(i);
    else if (shape[i - lead] === 1 && dy.shape[i] !== 1) axes.push(i);
  }
  if (axes.length === 0) return dy;
  let out = reduceSum(dy, axes, true);
  if (lead > 0) out = squeeze(out, Array.from({ length: lead }, (_, i) => i));
  return out;
}

/** Where a run-time dimension can be read while the graph runs: a value and the axis that holds it. */
export type DimSource = (d: string) => { value: Value; axis: number } | undefined;

/**
 * Broadcasts x to `shape`. A run-time dimension that x does not hold at the same (right-aligned) axis is
 * read at run time from `dims`: a tensor that holds it at some axis, or a lookup from symbol to tensor and
 * axis. Nothing is assumed: a dimension no source holds is refused.
 */
export function expandTo(x: Value, shape: Shape, dims?: Value | DimSource): Value {
  const g = x.graph;
  const lead = shape.length - x.rank;
  const fixed: number[] = [];
  let needsRuntime = false;
  shape.forEach((d, i) => {
    if (typeof d === 'number') fixed.push(d);
    else if (i >= lead && x.shape[i - lead] === d) fixed.push(1);
    else needsRuntime = true;
  });
  if (!needsRuntime) return g.emit('Expand', [x, g.ints(fixed)], {}, [{ dtype: x.dtype, shape }])[0];
  // A tensor of exactly the target shape: its Shape is the target (the gradient rules' case).
  if (dims instanceof Value && sameAs(dims, shape)) return g.emit('Expand', [x, shapeOf(dims)], {}, [{ dtype: x.dtype, shape }])[0];
  const like = dims instanceof Value ? dims : undefined;
  const source: DimSource = typeof dims === 'function' ? dims : (d) => {
    const axis = like ? like.shape.indexOf(d) : -1;
    return like && axis >= 0 ? { value: like, axis } : undefined;
  };
  // The shape tensor: runs of static sizes as constants, each run-time size sliced from a Shape.
  const pieces: Value[] = [];
  let run: number[] = [];
  shape.forEach((d, i) => {
    if (typeof d === 'number' || (i >= lead && x.shape[i - lead] === d)) {
      run.push(typeof d === 'number' ? d : 1);
      return;
    }
    const from = source(d);
    if (!from) throw new Error(`expandTo: [${x.shape}] -> [${shape}]: nothing holds the run-time dimension '${d}' to read it from`);
    if (run.length) pieces.push(g.ints(run));
    run = [];
    pieces.push(slice(shapeOf(from.value), [from.axis], [from.axis + 1], [0]));
  });
  if (run.length) pieces.push(g.ints(run));
  const target = pieces.length === 1 ? pieces[0] : concat(pieces, 0);
  return g.emit('Expand', [x, target], {}, [{ dtype: x.dtype, shape }])[0];
}

/** Number of elements over `axes` (all axes if omitted), as a float scalar; static when it can be. */
export function countOf(x: Value, axes?: number[]): Value {
  const g = x.graph;
  const ax = axes ?? x.shape.map((_, i) => i);
  const dims = ax.map((a) => x.shape[a]);
  if (dims.every((d) => typeof d === 'number')) return g.scalar(numel(dims));
  const picked = g.emit('Gather', [shapeOf(x), g.ints(ax)], { axis: 0 }, [{ dtype: 'int64', shape: [ax.length] }])[0];
  const prod = g.emit('ReduceProd', [picked], { keepdims: 0 }, [{ dtype: 'int64', shape: [] }])[0];
  return cast(prod, 'float32');
}

// ---------------------------------------------------------------------------------------------------
// Constant folding for elementwise ops on constants: gradients and hyper-parameters produce many
// small constant expressions, and folding them keeps the emitted graphs small.

const FOLD_LIMIT = 1 << 16;

function constValues(v: Value): Float32Array | null {
  return v.constant && v.constant.dtype === 'float32' ? (v.constant.data as Float32Array) : null;
}

function foldBinary(g: Graph, a: Value, b: Value, shape: Shape, f: (x: number, y: number) => number): Value | null {
  const da = constValues(a);
  const db = constValues(b);
  if (!da || !db || !shape.every((d) => typeof d === 'number')) return null;
  const dims = shape as number[];
  const n = numel(dims);
  if (n > FOLD_LIMIT) return null;
  const index = (v: Value, flat: number): number => {
    // Map an output flat index to the operand's flat index under broadcasting.
    let idx = 0;
    let stride = 1;
    let rem = flat;
    const coords: number[] = new Array(dims.length);
    for (let i = dims.length - 1; i >= 0; i--) {
      coords[i] = rem % dims[i];
      rem = Math.floor(rem / dims[i]);
    }
    const lead = dims.length - v.rank;
    for (let i = v.rank - 1; i >= 0; i--) {
      const d = v.shape[i] as number;
      idx += (d === 1 ? 0 : coords[i + lead]) * stride;
      stride *= d;
    }
    return idx;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = f(da[index(a, i)], db[index(b, i)]);
  return n === 1 && dims.length === 0 ? g.scalar(out[0]) : g.constant(out, dims);
}

function foldUnary(g: Graph, x: Value, f: (x: number) => number): Value | null {
  const d = constValues(x);
  if (!d || d.length > FOLD_LIMIT) return null;
  const out = d.map(f);
  return x.rank === 0 ? g.scalar(out[0]) : g.constant(out, x.shape as number[]);
}

// ---------------------------------------------------------------------------------------------------
// Elementwise binary ops with broadcasting

function binary(op: string, a0: Operand, b0: Operand, fold: (x: number, y: number) => number): Value {
  const g = graphOf(a0, b0);
  const a = lift(g, a0);
  const b = lift(g, b0);
  const shape = broadcastShapes(a.shape, b.shape, op);
  return foldBinary(g, a, b, shape, fold) ?? g.emit(op, [a, b], {}, [{ dtype: a.dtype, shape }])[0];
}

function sameAs(x: Value, shape: Shape): boolean {
  return x.rank === shape.length && x.shape.every((d, i) => d === shape[i]);
}

export function add(a0: Operand, b0: Operand): Value {
  const g = graphOf(a0, b0);
  const a = lift(g, a0);
  const b = lift(g, b0);
  const shape = broadcastShapes(a.shape, b.shape, 'Add');
  if (isScalarConst(b, 0) && sameAs(a, shape)) return a;
  if (isScalarConst(a, 0) && sameAs(b, shape)) return b;
  return binary('Add', a, b, (x, y) => x + y);
}

export function sub(a0: Operand, b0: Operand): Value {
  const g = graphOf(a0, b0);
  const a = lift(g, a0);
  const b = lift(g, b0);
  if (isScalarConst(b, 0) && sameAs(a, broadcastShapes(a.shape, b.shape))) return a;
  return binary('Sub', a, b, (x, y) => x - y);
}

export function mul(a0: Operand, b0: Operand): Value {
  const g = graphOf(a0, b0);
  const a = lift(g, a0);
  const b = lift(g, b0);
  const shape = broadcastShapes(a.shape, b.shape, 'Mul');
  if (isScalarConst(b, 1) && sameAs(a, shape)) return a;
  if (isScalarConst(a, 1) && sameAs(b, shape)) return b;
  return binary('Mul', a, b, (x, y) => x * y);
}

export function div(a0: Operand, b0: Operand): Value {
  const g = graphOf(a0, b0);
  const a = lift(g, a0);
  const b = lift(g, b0);
  if (isScalarConst(b, 1) && sameAs(a, broadcastShapes(a.shape, b.shape))) return a;
  return binary('Div', a, b, (x, y) => x / y);
}

export function pow(a0: Operand, b0: Operand): Value {
  return binary('Pow', a0, b0, (x, y) => Math.pow(x, y));
}

export function min(a0: Operand, b0: Operand): Value {
  return binary('Min', a0, b0, Math.min);
}

export function max(a0: Operand, b0: Operand): Value {
  return binary('Max', a0, b0, Math.max);
}

// Comparisons and logic: boolean results, no gradient.
function compare(op: string, a0: Operand, b0: Operand): Value {
  const g = graphOf(a0, b0);
  const a = lift(g, a0);
  const b = lift(g, b0);
  return g.emit(op, [a, b], {}, [{ dtype: 'bool', shape: broadcastShapes(a.shape, b.shape, op) }])[0];
}
export const greater = (a: Operand, b: Operand): Value => compare('Greater', a, b);
export const less = (a: Operand, b: Operand): Value => compare('Less', a, b);
export const greaterOrEqual = (a: Operand, b: Operand): Value => compare('GreaterOrEqual', a, b);
export const lessOrEqual = (a: Operand, b: Operand): Value => compare('LessOrEqual', a, b);
export const and = (a: Value, b: Value): Value => compare('And', a, b);
export const or = (a: Value, b: Value): Value => compare('Or', a, b);

export function cast(x: Value, to: DType): Value {
  if (x.dtype === to) return x;
  const code = { float32: 1, int64: 7, bool: 9 }[to];
  return x.graph.emit('Cast', [x], { to: code }, [{ dtype: to, shape: x.shape }])[0];
}

export function where(cond: Value, a0: Operand, b0: Operand): Value {
  const g = cond.graph;
  const a = lift(g, a0);
  const b = lift(g, b0);
  const shape = broadcastShapes(cond.shape, broadcastShapes(a.shape, b.shape, 'Where'), 'Where');
  return g.emit('Where', [cond, a, b], {}, [{ dtype: a.dtype, shape }])[0];
}

// ---------------------------------------------------------------------------------------------------
// Elementwise unary ops

function unary(op: string, x: Value, attrs: Attrs = {}, fold?: (v: number) => number): Value {
  return (fold && foldUnary(x.graph, x, fold)) || x.graph.emit(op, [x], attrs, [{ dtype: x.dtype, shape: x.shape }])[0];
}

export function neg(x: Value): Value {
  if (x.producer?.op === 'Neg') return x.producer.inputs[0];
  return unary('Neg', x, {}, (v) => -v);
}

export function identity(x: Value): Value {
  return x.graph.emit('Identity', [x], {}, [{ dtype: x.dtype, shape: x.shape }])[0];
}

export const relu = (x: Value): Value => unary('Relu', x, {}, (v) => Math.max(v, 0));

export const leakyRelu = (x: Value, alpha = 0.01): Value =>
  unary('LeakyRelu', x, { alpha: { float: alpha } }, (v) => (v > 0 ? v : alpha * v));

export const sigmoid = (x: Value): Value => unary('Sigmoid', x, {}, (v) => 1 / (1 + Math.exp(-v)));

export const tanh = (x: Value): Value => unary('Tanh', x, {}, Math.tanh);

/** SiLU (swish) is x * sigmoid(x); it has no ONNX op of its own, so its gradient comes from the parts. */
export const silu = (x: Value): Value => mul(x, sigmoid(x));

export const exp = (x: Value): Value => unary('Exp', x, {}, Math.exp);

export const log = (x: Value): Value => unary('Log', x, {}, Math.log);

export const sqrt = (x: Value): Value => unary('Sqrt', x, {}, Math.sqrt);

export const abs = (x: Value): Value => unary('Abs', x, {}, Math.abs);

export const sign = (x: Value): Value => unary('Sign', x, {}, Math.sign);

export const square = (x: Value): Value => mul(x, x);

/** Clip with bounds that may be tensors (hyper-parameters fed at run time). */
export function clip(x: Value, lo: Operand, hi: Operand): Value {
  const g = x.graph;
  return g.emit('Clip', [x, lift(g, lo), lift(g, hi)], {}, [{ dtype: x.dtype, shape: x.shape }])[0];
}

// ---------------------------------------------------------------------------------------------------
// Reductions

function reducedShape(shape: Shape, axes: number[], keepdims: boolean): Shape {
  return keepdims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

export function reduceSum(x: Value, axes?: number[], keepdims = false): Value {
  const g = x.graph;
  const ax = (axes ?? x.shape.map((_, i) => i)).map((a) => normAxis(a, x.rank));
  const shape = reducedShape(x.shape, ax, keepdims);
  return g.emit('ReduceSum', [x, g.ints(ax)], { keepdims: keepdims ? 1 : 0 }, [{ dtype: x.dtype, shape }])[0];
}

export function reduceMean(x: Value, axes?: number[], keepdims = false): Value {
  const g = x.graph;
  const ax = (axes ?? x.shape.map((_, i) => i)).map((a) => normAxis(a, x.rank));
  const shape = reducedShape(x.shape, ax, keepdims);
  const attrs: Attrs = { keepdims: keepdims ? 1 : 0 };
  // ReduceMean takes its axes as an attribute before opset 18 and as an input from 18 on.
  if (g.opset >= 18) return g.emit('ReduceMean', [x, g.ints(ax)], attrs, [{ dtype: x.dtype, shape }])[0];
  return g.emit('ReduceMean', [x], { ...attrs, axes: ax }, [{ dtype: x.dtype, shape }])[0];
}

// ---------------------------------------------------------------------------------------------------
// Shape ops

export function shapeOf(x: Value): Value {
  return x.graph.emit('Shape', [x], {}, [{ dtype: 'int64', shape: [x.rank] }])[0];
}

/**
 * Reshape to a shape whose symbolic dimensions either sit where the input has the same symbol
 * (emitted as 0, "copy") or are inferred (-1, at most one).
 */
export function reshape(x: Value, shape: Shape): Value {
  // The element counts must agree: the static parts (a product dimension's factor included, 'N*3') where both
  // hold the same run-time symbols.
  const symbols = (s: Shape) => s.map((d) => dimParts(d).symbol).filter((d) => d !== undefined).sort().join();
  const known = (s: Shape) => s.reduce<number>((p, d) => p * dimParts(d).factor, 1);
  if (symbols(x.shape) === symbols(shape) && known(x.shape) !== known(shape)) {
    throw new Error(`reshape [${x.shape}] -> [${shape}]: ${known(x.shape)} elements${symbols(x.shape) ? ' per run-time size' : ''} cannot become ${known(shape)}`);
  }
  const spec = shape.map((d, i) => {
    if (typeof d === 'number') return d;
    return x.shape[i] === d ? 0 : -1;
  });
  if (spec.filter((d) => d === -1).length > 1) throw new Error(`reshape [${x.shape}] -> [${shape}]: more than one inferred dimension`);
  if (sameAs(x, shape)) return x;
  return x.graph.emit('Reshape', [x, x.graph.ints(spec)], {}, [{ dtype: x.dtype, shape }])[0];
}

export function transpose(x: Value, perm: number[]): Value {
  if (perm.length !== x.rank) throw new Error(`transpose: perm [${perm}] does not match rank ${x.rank}`);
  return x.graph.emit('Transpose', [x], { perm }, [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]) }])[0];
}

export function squeeze(x: Value, axes: number[]): Value {
  const ax = axes.map((a) => normAxis(a, x.rank));
  for (const a of ax) if (x.shape[a] !== 1) throw new Error(`squeeze: axis ${a} of [${x.shape}] is not 1`);
  const shape = x.shape.filter((_, i) => !ax.includes(i));
  return x.graph.emit('Squeeze', [x, x.graph.ints(ax)], {}, [{ dtype: x.dtype, shape }])[0];
}

export function unsqueeze(x: Value, axes: number[]): Value {
  const rank = x.rank + axes.length;
  const ax = axes.map((a) => normAxis(a, rank)).sort((a, b) => a - b);
  const shape: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) shape.push(ax.includes(i) ? 1 : x.shape[j++]);
  return x.graph.emit('Unsqueeze', [x, x.graph.ints(ax)], {}, [{ dtype: x.dtype, shape }])[0];
}


export function concat(xs: Value[], axis: number): Value {
  const g = xs[0].graph;
  const a = normAxis(axis, xs[0].rank);
  const shape = [...xs[0].shape];
  for (const x of xs) {
    if (x.rank !== shape.length || x.shape.some((d, i) => i !== a && d !== shape[i])) {
      throw new Error(`concat along axis ${a}: [${x.shape}] does not match [${shape}] off that axis`);
    }
  }
  shape[a] = xs.reduce((s, x) => s + staticDim(x.shape[a], 'concat'), 0);
  return g.emit('Concat', xs, { axis: a }, [{ dtype: xs[0].dtype, shape }])[0];
}

/** Slice with static starts and ends (step 1) along the given axes. */
export function slice(x: Value, starts: number[], ends: number[], axes: number[]): Value {
  const g = x.graph;
  const shape = [...x.shape];
  const s: number[] = [];
  const e: number[] = [];
  axes.forEach((axis, i) => {
    const a = normAxis(axis, x.rank);
    const d = staticDim(x.shape[a], 'slice');
    const lo = Math.max(0, Math.min(d, starts[i] < 0 ? starts[i] + d : starts[i]));
    const hi = Math.max(lo, Math.min(d, ends[i] < 0 ? ends[i] + d : ends[i]));
    shape[a] = hi - lo;
    s.push(lo);
    e.push(hi);
  });
  const ax = axes.map((a) => normAxis(a, x.rank));
  return g.emit('Slice', [x, g.ints(s), g.ints(e), g.ints(ax)], {}, [{ dtype: x.dtype, shape }])[0];
}

/** Zero padding: `before[i]` and `after[i]` elements on each side of axis i. */
export function pad(x: Value, before: number[], after: number[], value = 0): Value {
  const g = x.graph;
  if (before.some((p) => p < 0) || after.some((p) => p < 0)) throw new Error('pad: negative padding');
  const shape = x.shape.map((d, i) => (before[i] || after[i] ? staticDim(d, 'pad') + before[i] + after[i] : d));
  return g.emit('Pad', [x, g.ints([...before, ...after]), g.scalar(value)], { mode: 'constant' }, [{ dtype: x.dtype, shape }])[0];
}

// ---------------------------------------------------------------------------------------------------
// Linear algebra

/** Matrix product of tensors of rank >= 2, batch dimensions broadcast as in numpy. */
export function matmul(a: Value, b: Value): Value {
  if (a.rank < 2 || b.rank < 2) throw new Error(`matmul: operands must have rank >= 2, got [${a.shape}] and [${b.shape}]`);
  const [m, k1] = a.shape.slice(-2);
  const [k2, n] = b.shape.slice(-2);
  if (k1 !== k2) throw new Error(`matmul: inner dimensions differ: [${a.shape}] x [${b.shape}]`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'MatMul');
  return a.graph.emit('MatMul', [a, b], {}, [{ dtype: a.dtype, shape: [...batch, m, n] }])[0];
}

// ---------------------------------------------------------------------------------------------------
// Convolutions and pooling (2-D, NCHW)

export interface ConvOptions {
  strides?: [number, number];
  /** [top, left, bottom, right], as ONNX orders them. */
  pads?: [number, number, number, number];
  dilations?: [number, number];
  group?: number;
}

export interface ConvAttrs {
  strides: number[];
  pads: number[];
  dilations: number[];
  group: number;
}

export function convAttrs(o: ConvOptions): ConvAttrs {
  return { strides: o.strides ?? [1, 1], pads: o.pads ?? [0, 0, 0, 0], dilations: o.dilations ?? [1, 1], group: o.group ?? 1 };
}

export function convOutSize(size: number, k: number, s: number, d: number, p0: number, p1: number): number {
  const out = Math.floor((size + p0 + p1 - d * (k - 1) - 1) / s) + 1;
  if (out < 1) throw new Error(`conv: input size ${size} too small for kernel ${k} (dilation ${d}, padding ${p0}+${p1})`);
  return out;
}

export function conv(x: Value, w: Value, b?: Value, o: ConvOptions = {}): Value {
  const a = convAttrs(o);
  if (x.rank !== 4 || w.rank !== 4) throw new Error(`conv: expected NCHW input and OIHW weight, got [${x.shape}] and [${w.shape}]`);
  const [cout, cinPerGroup, kh, kw] = w.shape.map((d) => staticDim(d, 'conv weight'));
  const cin = staticDim(x.shape[1], 'conv input channels');
  if (cin !== cinPerGroup * a.group) throw new Error(`conv: input has ${cin} channels, weight expects ${cinPerGroup} x ${a.group} groups`);
  const h = convOutSize(staticDim(x.shape[2], 'conv height'), kh, a.strides[0], a.dilations[0], a.pads[0], a.pads[2]);
  const wd = convOutSize(staticDim(x.shape[3], 'conv width'), kw, a.strides[1], a.dilations[1], a.pads[1], a.pads[3]);
  const inputs = b ? [x, w, b] : [x, w];
  return x.graph.emit('Conv', inputs, { ...a, kernel_shape: [kh, kw] }, [{ dtype: 'float32', shape: [x.shape[0], cout, h, wd] }])[0];
}

export interface ConvTransposeOptions extends ConvOptions {
  outputPadding?: [number, number];
}

export function convTranspose(x: Value, w: Value, b?: Value, o: ConvTransposeOptions = {}): Value {
  const a = convAttrs(o);
  const op = o.outputPadding ?? [0, 0];
  const [cin, coutPerGroup, kh, kw] = w.shape.map((d) => staticDim(d, 'convTranspose weight'));
  if (staticDim(x.shape[1], 'convTranspose input') !== cin) throw new Error(`convTranspose: input has ${x.shape[1]} channels, weight expects ${cin}`);
  const out = [0, 1].map((i) => {
    const size = staticDim(x.shape[2 + i], 'convTranspose');
    return a.strides[i] * (size - 1) + op[i] + ([kh, kw][i] - 1) * a.dilations[i] + 1 - a.pads[i] - a.pads[i + 2];
  });
  const inputs = b ? [x, w, b] : [x, w];
  const attrs = { ...a, kernel_shape: [kh, kw], output_padding: op };
  return x.graph.emit('ConvTranspose', inputs, attrs, [{ dtype: 'float32', shape: [x.shape[0], coutPerGroup * a.group, out[0], out[1]] }])[0];
}

/** Average pooling over non-overlapping k x k windows (the down-sampling of the U-Net). */
export function avgPool(x: Value, k: number): Value {
  const h = staticDim(x.shape[2], 'avgPool');
  const w = staticDim(x.shape[3], 'avgPool');
  if (h % k || w % k) throw new Error(`avgPool: ${h}x${w} is not divisible by ${k}`);
  return x.graph.emit('AveragePool', [x], { kernel_shape: [k, k], strides: [k, k] }, [
    { dtype: x.dtype, shape: [x.shape[0], x.shape[1], h / k, w / k] },
  ])[0];
}

/** Nearest-neighbour up-sampling by an integer factor, as broadcast + reshape (so no rule is needed). */
export function upsampleNearest(x: Value, f: number): Value {
  const [n, c, h, w] = x.shape;
  const hh = staticDim(h, 'upsample');
  const ww = staticDim(w, 'upsample');
  const spread = expandTo(reshape(x, [n, c, hh, 1, ww, 1]), [n, c, hh, f, ww, f]);
  return reshape(spread, [n, c, hh * f, ww * f]);
}
