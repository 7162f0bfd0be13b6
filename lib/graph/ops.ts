// The ops the project's networks are written with. Each op is three things kept side by side, as in
// tinygrad: the builder (which infers the output shape), and its vector-Jacobian product, written with
// the same builders so that a gradient is just more graph. `rules` maps an ONNX op type to its VJP.
//
// A VJP receives the node, the gradient of each output (null where none flows) and which inputs need a
// gradient; it returns one gradient per input (null where not needed or not differentiable).

import { Graph, Value, type Attrs, type Dim, type DType, type Node, type Shape, numel } from './graph.ts';

export type Operand = Value | number;
export type VJP = (node: Node, dOut: Array<Value | null>, needs: boolean[]) => Array<Value | null>;
export const rules: Record<string, VJP> = {};

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

function staticDim(d: Dim, what: string): number {
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

/** Broadcasts x to a static shape; where that shape has a run-time dimension, `like` supplies it. */
export function expandTo(x: Value, shape: Shape, like?: Value): Value {
  const g = x.graph;
  const lead = shape.length - x.rank;
  const dims: number[] = [];
  let needsRuntime = false;
  shape.forEach((d, i) => {
    if (typeof d === 'number') dims.push(d);
    else if (i >= lead && x.shape[i - lead] === d) dims.push(1);
    else needsRuntime = true;
  });
  if (!needsRuntime) return g.emit('Expand', [x, g.ints(dims)], {}, [{ dtype: x.dtype, shape }])[0];
  if (!like) throw new Error(`expandTo: shape [${shape}] has run-time dimensions and no tensor to take them from`);
  return g.emit('Expand', [x, shapeOf(like)], {}, [{ dtype: x.dtype, shape }])[0];
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
rules.Add = ({ inputs: [a, b] }, [dy]) => [sumTo(dy!, a.shape), sumTo(dy!, b.shape)];

export function sub(a0: Operand, b0: Operand): Value {
  const g = graphOf(a0, b0);
  const a = lift(g, a0);
  const b = lift(g, b0);
  if (isScalarConst(b, 0) && sameAs(a, broadcastShapes(a.shape, b.shape))) return a;
  return binary('Sub', a, b, (x, y) => x - y);
}
rules.Sub = ({ inputs: [a, b] }, [dy], needs) => [sumTo(dy!, a.shape), needs[1] ? sumTo(neg(dy!), b.shape) : null];

export function mul(a0: Operand, b0: Operand): Value {
  const g = graphOf(a0, b0);
  const a = lift(g, a0);
  const b = lift(g, b0);
  const shape = broadcastShapes(a.shape, b.shape, 'Mul');
  if (isScalarConst(b, 1) && sameAs(a, shape)) return a;
  if (isScalarConst(a, 1) && sameAs(b, shape)) return b;
  return binary('Mul', a, b, (x, y) => x * y);
}
rules.Mul = ({ inputs: [a, b] }, [dy], needs) => [
  needs[0] ? sumTo(mul(dy!, b), a.shape) : null,
  needs[1] ? sumTo(mul(dy!, a), b.shape) : null,
];

export function div(a0: Operand, b0: Operand): Value {
  const g = graphOf(a0, b0);
  const a = lift(g, a0);
  const b = lift(g, b0);
  if (isScalarConst(b, 1) && sameAs(a, broadcastShapes(a.shape, b.shape))) return a;
  return binary('Div', a, b, (x, y) => x / y);
}
rules.Div = ({ inputs: [a, b], outputs: [y] }, [dy], needs) => [
  needs[0] ? sumTo(div(dy!, b), a.shape) : null,
  needs[1] ? sumTo(neg(div(mul(dy!, y), b)), b.shape) : null,
];

export function pow(a0: Operand, b0: Operand): Value {
  return binary('Pow', a0, b0, (x, y) => Math.pow(x, y));
}
rules.Pow = ({ inputs: [x, p], outputs: [y] }, [dy], needs) => [
  needs[0] ? sumTo(mul(dy!, mul(p, pow(x, sub(p, 1)))), x.shape) : null,
  needs[1] ? sumTo(mul(dy!, mul(y, log(x))), p.shape) : null,
];

export function min(a0: Operand, b0: Operand): Value {
  return binary('Min', a0, b0, Math.min);
}
rules.Min = ({ inputs: [a, b] }, [dy], needs) => {
  const pickA = lessOrEqual(a, b); // ties send the gradient to the first operand
  return [
    needs[0] ? sumTo(where(pickA, dy!, 0), a.shape) : null,
    needs[1] ? sumTo(where(pickA, 0, dy!), b.shape) : null,
  ];
};

export function max(a0: Operand, b0: Operand): Value {
  return binary('Max', a0, b0, Math.max);
}
rules.Max = ({ inputs: [a, b] }, [dy], needs) => {
  const pickA = greaterOrEqual(a, b);
  return [
    needs[0] ? sumTo(where(pickA, dy!, 0), a.shape) : null,
    needs[1] ? sumTo(where(pickA, 0, dy!), b.shape) : null,
  ];
};

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
rules.Cast = ({ inputs: [x] }, [dy]) => [x.dtype === 'float32' ? cast(dy!, 'float32') : null];

export function where(cond: Value, a0: Operand, b0: Operand): Value {
  const g = cond.graph;
  const a = lift(g, a0);
  const b = lift(g, b0);
  const shape = broadcastShapes(cond.shape, broadcastShapes(a.shape, b.shape, 'Where'), 'Where');
  return g.emit('Where', [cond, a, b], {}, [{ dtype: a.dtype, shape }])[0];
}
rules.Where = ({ inputs: [c, a, b] }, [dy], needs) => [
  null,
  needs[1] ? sumTo(where(c, dy!, 0), a.shape) : null,
  needs[2] ? sumTo(where(c, 0, dy!), b.shape) : null,
];

// ---------------------------------------------------------------------------------------------------
// Elementwise unary ops

function unary(op: string, x: Value, attrs: Attrs = {}, fold?: (v: number) => number): Value {
  return (fold && foldUnary(x.graph, x, fold)) || x.graph.emit(op, [x], attrs, [{ dtype: x.dtype, shape: x.shape }])[0];
}

export function neg(x: Value): Value {
  if (x.producer?.op === 'Neg') return x.producer.inputs[0];
  return unary('Neg', x, {}, (v) => -v);
}
rules.Neg = (_n, [dy]) => [neg(dy!)];

export function identity(x: Value): Value {
  return x.graph.emit('Identity', [x], {}, [{ dtype: x.dtype, shape: x.shape }])[0];
}
rules.Identity = (_n, [dy]) => [dy];

export const relu = (x: Value): Value => unary('Relu', x, {}, (v) => Math.max(v, 0));
rules.Relu = ({ inputs: [x] }, [dy]) => [where(greater(x, 0), dy!, 0)];

export const leakyRelu = (x: Value, alpha = 0.01): Value =>
  unary('LeakyRelu', x, { alpha: { float: alpha } }, (v) => (v > 0 ? v : alpha * v));
rules.LeakyRelu = ({ inputs: [x], attrs }, [dy]) => {
  const alpha = (attrs.alpha as { float: number }).float;
  return [where(greater(x, 0), dy!, mul(dy!, alpha))];
};

export const sigmoid = (x: Value): Value => unary('Sigmoid', x, {}, (v) => 1 / (1 + Math.exp(-v)));
rules.Sigmoid = ({ outputs: [y] }, [dy]) => [mul(dy!, mul(y, sub(1, y)))];

export const tanh = (x: Value): Value => unary('Tanh', x, {}, Math.tanh);
rules.Tanh = ({ outputs: [y] }, [dy]) => [mul(dy!, sub(1, mul(y, y)))];

/** SiLU (swish) is x * sigmoid(x); it has no ONNX op of its own, so its gradient comes from the parts. */
export const silu = (x: Value): Value => mul(x, sigmoid(x));

export const exp = (x: Value): Value => unary('Exp', x, {}, Math.exp);
rules.Exp = ({ outputs: [y] }, [dy]) => [mul(dy!, y)];

export const log = (x: Value): Value => unary('Log', x, {}, Math.log);
rules.Log = ({ inputs: [x] }, [dy]) => [div(dy!, x)];

export const sqrt = (x: Value): Value => unary('Sqrt', x, {}, Math.sqrt);
rules.Sqrt = ({ outputs: [y] }, [dy]) => [div(mul(dy!, 0.5), y)];

export const abs = (x: Value): Value => unary('Abs', x, {}, Math.abs);
rules.Abs = ({ inputs: [x] }, [dy]) => [mul(dy!, sign(x))];

export const sign = (x: Value): Value => unary('Sign', x, {}, Math.sign);
rules.Sign = () => [null];

export const square = (x: Value): Value => mul(x, x);

/** Clip with bounds that may be tensors (hyper-parameters fed at run time). */
export function clip(x: Value, lo: Operand, hi: Operand): Value {
  const g = x.graph;
  return g.emit('Clip', [x, lift(g, lo), lift(g, hi)], {}, [{ dtype: x.dtype, shape: x.shape }])[0];
}
rules.Clip = ({ inputs: [x, lo, hi] }, [dy], needs) => {
  if (needs[1] || needs[2]) throw new Error('Clip: gradients with respect to the bounds are not supported');
  return [where(and(greaterOrEqual(x, lo), lessOrEqual(x, hi)), dy!, 0), null, null];
};

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
rules.ReduceSum = ({ inputs: [x, axesV], attrs }, [dy]) => {
  const axes = Array.from(axesV.constant!.data as BigInt64Array, Number);
  const kept = attrs.keepdims ? dy! : unsqueeze(dy!, axes);
  return [expandTo(kept, x.shape, x), null];
};

export function reduceMean(x: Value, axes?: number[], keepdims = false): Value {
  const g = x.graph;
  const ax = (axes ?? x.shape.map((_, i) => i)).map((a) => normAxis(a, x.rank));
  const shape = reducedShape(x.shape, ax, keepdims);
  const attrs: Attrs = { keepdims: keepdims ? 1 : 0 };
  // ReduceMean takes its axes as an attribute before opset 18 and as an input from 18 on.
  if (g.opset >= 18) return g.emit('ReduceMean', [x, g.ints(ax)], attrs, [{ dtype: x.dtype, shape }])[0];
  return g.emit('ReduceMean', [x], { ...attrs, axes: ax }, [{ dtype: x.dtype, shape }])[0];
}
rules.ReduceMean = ({ inputs: [x, axesV], attrs }, [dy]) => {
  const axes = axesV ? Array.from(axesV.constant!.data as BigInt64Array, Number) : (attrs.axes as number[]);
  const kept = attrs.keepdims ? dy! : unsqueeze(dy!, axes);
  return [div(expandTo(kept, x.shape, x), countOf(x, axes)), null];
};

// ---------------------------------------------------------------------------------------------------
// Shape ops

export function shapeOf(x: Value): Value {
  return x.graph.emit('Shape', [x], {}, [{ dtype: 'int64', shape: [x.rank] }])[0];
}
rules.Shape = () => [null];

/**
 * Reshape to a shape whose symbolic dimensions either sit where the input has the same symbol
 * (emitted as 0, "copy") or are inferred (-1, at most one).
 */
export function reshape(x: Value, shape: Shape): Value {
  const spec = shape.map((d, i) => {
    if (typeof d === 'number') return d;
    return x.shape[i] === d ? 0 : -1;
  });
  if (spec.filter((d) => d === -1).length > 1) throw new Error(`reshape [${x.shape}] -> [${shape}]: more than one inferred dimension`);
  if (sameAs(x, shape)) return x;
  return x.graph.emit('Reshape', [x, x.graph.ints(spec)], {}, [{ dtype: x.dtype, shape }])[0];
}
rules.Reshape = ({ inputs: [x] }, [dy]) => [reshape(dy!, x.shape), null];

export function transpose(x: Value, perm: number[]): Value {
  if (perm.length !== x.rank) throw new Error(`transpose: perm [${perm}] does not match rank ${x.rank}`);
  return x.graph.emit('Transpose', [x], { perm }, [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]) }])[0];
}
rules.Transpose = ({ attrs }, [dy]) => {
  const perm = attrs.perm as number[];
  const inverse = perm.map((_, i) => perm.indexOf(i));
  return [transpose(dy!, inverse)];
};

export function squeeze(x: Value, axes: number[]): Value {
  const ax = axes.map((a) => normAxis(a, x.rank));
  for (const a of ax) if (x.shape[a] !== 1) throw new Error(`squeeze: axis ${a} of [${x.shape}] is not 1`);
  const shape = x.shape.filter((_, i) => !ax.includes(i));
  return x.graph.emit('Squeeze', [x, x.graph.ints(ax)], {}, [{ dtype: x.dtype, shape }])[0];
}
rules.Squeeze = ({ inputs: [x] }, [dy]) => [reshape(dy!, x.shape), null];

export function unsqueeze(x: Value, axes: number[]): Value {
  const rank = x.rank + axes.length;
  const ax = axes.map((a) => normAxis(a, rank)).sort((a, b) => a - b);
  const shape: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) shape.push(ax.includes(i) ? 1 : x.shape[j++]);
  return x.graph.emit('Unsqueeze', [x, x.graph.ints(ax)], {}, [{ dtype: x.dtype, shape }])[0];
}
rules.Unsqueeze = ({ inputs: [x] }, [dy]) => [reshape(dy!, x.shape), null];

rules.Expand = ({ inputs: [x] }, [dy]) => [sumTo(dy!, x.shape), null];

export function concat(xs: Value[], axis: number): Value {
  const g = xs[0].graph;
  const a = normAxis(axis, xs[0].rank);
  const shape = [...xs[0].shape];
  shape[a] = xs.reduce((s, x) => s + staticDim(x.shape[a], 'concat'), 0);
  return g.emit('Concat', xs, { axis: a }, [{ dtype: xs[0].dtype, shape }])[0];
}
rules.Concat = ({ inputs, attrs }, [dy], needs) => {
  const axis = attrs.axis as number;
  let start = 0;
  return inputs.map((x, i) => {
    const size = x.shape[axis] as number;
    const out = needs[i] ? slice(dy!, [start], [start + size], [axis]) : null;
    start += size;
    return out;
  });
};

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
rules.Slice = ({ inputs: [x, s, e, a] }, [dy]) => {
  const starts = Array.from(s.constant!.data as BigInt64Array, Number);
  const ends = Array.from(e.constant!.data as BigInt64Array, Number);
  const axes = Array.from(a.constant!.data as BigInt64Array, Number);
  const before = new Array(x.rank).fill(0);
  const after = new Array(x.rank).fill(0);
  axes.forEach((axis, i) => {
    before[axis] = starts[i];
    after[axis] = (x.shape[axis] as number) - ends[i];
  });
  return [pad(dy!, before, after), null, null, null];
};

/** Zero padding: `before[i]` and `after[i]` elements on each side of axis i. */
export function pad(x: Value, before: number[], after: number[], value = 0): Value {
  const g = x.graph;
  if (before.some((p) => p < 0) || after.some((p) => p < 0)) throw new Error('pad: negative padding');
  const shape = x.shape.map((d, i) => (before[i] || after[i] ? staticDim(d, 'pad') + before[i] + after[i] : d));
  return g.emit('Pad', [x, g.ints([...before, ...after]), g.scalar(value)], { mode: 'constant' }, [{ dtype: x.dtype, shape }])[0];
}
rules.Pad = ({ inputs: [x, p] }, [dy]) => {
  const pads = Array.from(p.constant!.data as BigInt64Array, Number);
  const r = x.rank;
  const axes = x.shape.map((_, i) => i).filter((i) => pads[i] || pads[i + r]);
  return [
    slice(
      dy!,
      axes.map((i) => pads[i]),
      axes.map((i) => pads[i] + (x.shape[i] as number)),
      axes,
    ),
    null,
    null,
  ];
};

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
function swapLast2(x: Value): Value {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return transpose(x, perm);
}
rules.MatMul = ({ inputs: [a, b] }, [dy], needs) => [
  needs[0] ? sumTo(matmul(dy!, swapLast2(b)), a.shape) : null,
  needs[1] ? sumTo(matmul(swapLast2(a), dy!), b.shape) : null,
];

// ---------------------------------------------------------------------------------------------------
// Convolutions and pooling (2-D, NCHW)

export interface ConvOptions {
  strides?: [number, number];
  /** [top, left, bottom, right], as ONNX orders them. */
  pads?: [number, number, number, number];
  dilations?: [number, number];
  group?: number;
}

interface ConvAttrs {
  strides: number[];
  pads: number[];
  dilations: number[];
  group: number;
}

function convAttrs(o: ConvOptions): ConvAttrs {
  return { strides: o.strides ?? [1, 1], pads: o.pads ?? [0, 0, 0, 0], dilations: o.dilations ?? [1, 1], group: o.group ?? 1 };
}

function convOutSize(size: number, k: number, s: number, d: number, p0: number, p1: number): number {
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
rules.Conv = ({ inputs: [x, w, b], outputs: [y], attrs }, [dy], needs) => {
  const a = attrs as unknown as ConvAttrs;
  const [, , kh, kw] = w.shape as number[];
  const stride1 = a.group === 1 && a.strides.every((st) => st === 1);
  const dx = !needs[0]
    ? null
    : stride1
      ? inputGradientStride1(dy!, w, a)
      : convTranspose(dy!, w, undefined, {
        ...a,
        strides: a.strides as [number, number],
        pads: a.pads as [number, number, number, number],
        dilations: a.dilations as [number, number],
        outputPadding: [0, 1].map((i) => {
          const s = a.strides[i];
          const full = s * ((y.shape[2 + i] as number) - 1) + (([kh, kw][i] - 1) * a.dilations[i] + 1) - a.pads[i] - a.pads[i + 2];
          return (x.shape[2 + i] as number) - full;
        }) as [number, number],
      });
  const dw = needs[1] ? kernelGradient(x, dy!, [kh, kw], a, 'conv') : null;
  const db = b && needs[2] ? reduceSum(dy!, [0, 2, 3]) : null;
  return b ? [dx, dw, db] : [dx, dw];
};

/**
 * The weight gradient of a convolution is itself a convolution: batch and channel axes swap roles,
 * stride and dilation swap places. For a transposed convolution, input and output gradient swap.
 * Grouped convolutions are handled group by group.
 */
function kernelGradient(x: Value, dy: Value, k: [number, number], a: ConvAttrs, kind: 'conv' | 'convTranspose'): Value {
  if (kind === 'conv' && a.group === 1 && a.strides.every((s) => s === 1)) return kernelGradientIm2col(x, dy, k, a);
  const G = a.group;
  const cx = x.shape[1] as number;
  const cy = dy.shape[1] as number;
  const parts: Value[] = [];
  for (let gi = 0; gi < G; gi++) {
    const xg = G === 1 ? x : slice(x, [(gi * cx) / G], [((gi + 1) * cx) / G], [1]);
    const dyg = G === 1 ? dy : slice(dy, [(gi * cy) / G], [((gi + 1) * cy) / G], [1]);
    const xT = transpose(xg, [1, 0, 2, 3]);
    const dyT = transpose(dyg, [1, 0, 2, 3]);
    const opts: ConvOptions = {
      strides: a.dilations as [number, number],
      dilations: a.strides as [number, number],
      pads: a.pads as [number, number, number, number],
    };
    // conv: dW[o,i] = sum_n x[n,i] * dy[n,o] -> conv(x^T, dy^T) is [Cin, Cout, k', k'] -> [Cout, Cin, k, k]
    // convTranspose: dW[i,o] = sum_n dy[n,o] * x[n,i] -> conv(dy^T, x^T) is [Cout, Cin, k', k'] -> [Cin, Cout, k, k]
    const z = kind === 'conv' ? convRaw(xT, dyT, opts) : convRaw(dyT, xT, opts);
    const cropped = slice(z, [0, 0], k, [2, 3]);
    parts.push(transpose(cropped, [1, 0, 2, 3]));
  }
  return G === 1 ? parts[0] : concat(parts, 0);
}

/** Reverses a tensor along one axis (a Gather with reversed indices; used inside gradients only). */
function reverseAxis(x: Value, axis: number): Value {
  const n = staticDim(x.shape[axis], 'reverse');
  const idx = x.graph.ints(Array.from({ length: n }, (_, i) => n - 1 - i));
  return x.graph.emit('Gather', [x, idx], { axis }, [{ dtype: x.dtype, shape: x.shape }])[0];
}

/**
 * The input gradient of a stride-1 convolution is a convolution of dY with the kernel flipped in space
 * and transposed in channels, padded by (k - 1) * dilation - pad; ORT runs a Conv faster than the
 * equivalent ConvTranspose.
 */
function inputGradientStride1(dy: Value, w: Value, a: ConvAttrs): Value {
  const [, , kh, kw] = w.shape as number[];
  const flipped = transpose(reverseAxis(reverseAxis(w, 2), 3), [1, 0, 2, 3]);
  const [dh, dw] = a.dilations;
  const pads: [number, number, number, number] = [
    (kh - 1) * dh - a.pads[0],
    (kw - 1) * dw - a.pads[1],
    (kh - 1) * dh - a.pads[2],
    (kw - 1) * dw - a.pads[3],
  ];
  if (pads.some((p) => p < 0)) throw new Error(`conv gradient: padding larger than the dilated kernel is not supported (pads [${a.pads}])`);
  return conv(dy, flipped, undefined, { pads, dilations: a.dilations as [number, number] });
}

/**
 * The same weight gradient for stride-1 convolutions (every layer of the policies) as one batched
 * matrix product: the k*k shifted views of the padded input are stacked along channels (im2col), and
 * dW = sum_n dY_n [Cout, HW] x cols_n^T [HW, k*k*Cin]. ORT runs this several times faster than a
 * convolution whose kernel is the whole output map.
 */
function kernelGradientIm2col(x: Value, dy: Value, [kh, kw]: [number, number], a: ConvAttrs): Value {
  const [n, cin] = x.shape;
  const [, cout, ho, wo] = dy.shape as [Dim, number, number, number];
  const padded = pad(x, [0, 0, a.pads[0], a.pads[1]], [0, 0, a.pads[2], a.pads[3]]);
  const views: Value[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const [di, dj] = [i * a.dilations[0], j * a.dilations[1]];
      views.push(slice(padded, [di, dj], [di + ho, dj + wo], [2, 3]));
    }
  }
  const c = cin as number;
  const cols = reshape(concat(views, 1), [n, kh * kw * c, ho * wo]);
  const dw = reduceSum(matmul(reshape(dy, [n, cout, ho * wo]), transpose(cols, [0, 2, 1])), [0]);
  return transpose(reshape(dw, [cout, kh, kw, c]), [0, 3, 1, 2]);
}

/** A convolution whose weight has a run-time dimension (used only inside gradients). */
function convRaw(x: Value, w: Value, o: ConvOptions): Value {
  const a = convAttrs(o);
  const [kh, kw] = [staticDim(w.shape[2], 'conv kernel'), staticDim(w.shape[3], 'conv kernel')];
  const h = convOutSize(staticDim(x.shape[2], 'conv'), kh, a.strides[0], a.dilations[0], a.pads[0], a.pads[2]);
  const wd = convOutSize(staticDim(x.shape[3], 'conv'), kw, a.strides[1], a.dilations[1], a.pads[1], a.pads[3]);
  return x.graph.emit('Conv', [x, w], { ...a, kernel_shape: [kh, kw] }, [{ dtype: 'float32', shape: [x.shape[0], w.shape[0], h, wd] }])[0];
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
rules.ConvTranspose = ({ inputs: [x, w, b], attrs }, [dy], needs) => {
  const a = attrs as unknown as ConvAttrs;
  const [, , kh, kw] = w.shape as number[];
  const dx = needs[0]
    ? conv(dy!, w, undefined, {
        strides: a.strides as [number, number],
        pads: a.pads as [number, number, number, number],
        dilations: a.dilations as [number, number],
        group: a.group,
      })
    : null;
  const dw = needs[1] ? kernelGradient(x, dy!, [kh, kw], a, 'convTranspose') : null;
  const db = b && needs[2] ? reduceSum(dy!, [0, 2, 3]) : null;
  return b ? [dx, dw, db] : [dx, dw];
};

/** Average pooling over non-overlapping k x k windows (the down-sampling of the U-Net). */
export function avgPool(x: Value, k: number): Value {
  const h = staticDim(x.shape[2], 'avgPool');
  const w = staticDim(x.shape[3], 'avgPool');
  if (h % k || w % k) throw new Error(`avgPool: ${h}x${w} is not divisible by ${k}`);
  return x.graph.emit('AveragePool', [x], { kernel_shape: [k, k], strides: [k, k] }, [
    { dtype: x.dtype, shape: [x.shape[0], x.shape[1], h / k, w / k] },
  ])[0];
}
rules.AveragePool = ({ attrs }, [dy]) => {
  const k = (attrs.kernel_shape as number[])[0];
  return [div(upsampleNearest(dy!, k), k * k)];
};

/** Nearest-neighbour up-sampling by an integer factor, as broadcast + reshape (so no rule is needed). */
export function upsampleNearest(x: Value, f: number): Value {
  const [n, c, h, w] = x.shape;
  const hh = staticDim(h, 'upsample');
  const ww = staticDim(w, 'upsample');
  const spread = expandTo(reshape(x, [n, c, hh, 1, ww, 1]), [n, c, hh, f, ww, f]);
  return reshape(spread, [n, c, hh * f, ww * f]);
}
