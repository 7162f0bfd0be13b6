// The gradient rules: ONNX op type -> vector-Jacobian product, in one table beside the reverse walk
// (autodiff.ts), as tinygrad's gradient.py. Each rule receives the node, the gradient of each output (null
// where none flows) and which inputs need a gradient; it returns one gradient per input (null where not
// needed or not differentiable), written with the same builders so that a gradient is just more graph.

import type { Node, Value } from './graph.ts';
import {
  add, and, cast, clip, countOf, div, expandTo, greater, greaterOrEqual, lessOrEqual, log, matmul, mul, neg, pad,
  pow, reduceSum, reshape, sign, sigmoid, slice, sub, sumTo, transpose, unsqueeze, upsampleNearest, where, exp,
} from './ops.ts';
import { convRule, convTransposeRule, maxPoolRule } from './conv-gradients.ts';

export type VJP = (node: Node, dOut: Array<Value | null>, needs: boolean[]) => Array<Value | null>;

function swapLast2(x: Value): Value {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return transpose(x, perm);
}

const floatAttr = (a: unknown): number => (a as { float: number }).float;
/** An int64 constant input (axes, pads, starts) as numbers. */
const staticInts = (v: Value): number[] => Array.from(v.constant!.data as BigInt64Array, Number);

export const rules: Record<string, VJP> = {
  Add: ({ inputs: [a, b] }, [dy]) => [sumTo(dy!, a.shape), sumTo(dy!, b.shape)],
  Sub: ({ inputs: [a, b] }, [dy], needs) => [sumTo(dy!, a.shape), needs[1] ? sumTo(neg(dy!), b.shape) : null],
  Mul: ({ inputs: [a, b] }, [dy], needs) => [
    needs[0] ? sumTo(mul(dy!, b), a.shape) : null,
    needs[1] ? sumTo(mul(dy!, a), b.shape) : null,
  ],
  Div: ({ inputs: [a, b], outputs: [y] }, [dy], needs) => [
    needs[0] ? sumTo(div(dy!, b), a.shape) : null,
    needs[1] ? sumTo(neg(div(mul(dy!, y), b)), b.shape) : null,
  ],
  Pow: ({ inputs: [x, p0], outputs: [y] }, [dy], needs) => {
    // ONNX lets the exponent be an integer tensor (x ** 3 exported with an int64 3): float arithmetic on it.
    const p = p0.dtype === x.dtype ? p0 : cast(p0, x.dtype);
    return [
      needs[0] ? sumTo(mul(dy!, mul(p, pow(x, sub(p, 1)))), x.shape) : null,
      needs[1] ? sumTo(mul(dy!, mul(y, log(x))), p.shape) : null,
    ];
  },
  Min: ({ inputs: [a, b] }, [dy], needs) => {
    const pickA = lessOrEqual(a, b); // ties send the gradient to the first operand
    return [
      needs[0] ? sumTo(where(pickA, dy!, 0), a.shape) : null,
      needs[1] ? sumTo(where(pickA, 0, dy!), b.shape) : null,
    ];
  },
  Max: ({ inputs: [a, b] }, [dy], needs) => {
    const pickA = greaterOrEqual(a, b);
    return [
      needs[0] ? sumTo(where(pickA, dy!, 0), a.shape) : null,
      needs[1] ? sumTo(where(pickA, 0, dy!), b.shape) : null,
    ];
  },
  Cast: ({ inputs: [x] }, [dy]) => [x.dtype === 'float32' ? cast(dy!, 'float32') : null],
  Where: ({ inputs: [c, a, b] }, [dy], needs) => [
    null,
    needs[1] ? sumTo(where(c, dy!, 0), a.shape) : null,
    needs[2] ? sumTo(where(c, 0, dy!), b.shape) : null,
  ],
  Neg: (_n, [dy]) => [neg(dy!)],
  Identity: (_n, [dy]) => [dy],
  Relu: ({ inputs: [x] }, [dy]) => [where(greater(x, 0), dy!, 0)],
  LeakyRelu: ({ inputs: [x], outputs: [y], attrs }, [dy]) => {
    const alpha = (attrs.alpha as { float: number }).float;
    // For 0 <= alpha <= 1 the slope is clip(y > 0 as 0/1, alpha, 1): 1 where x > 0 (y has x's sign), alpha
    // elsewhere (NaN too, as where() has it), so dx = dy * slope gives where()'s values bit for bit. Reading the output
    // instead of x lets ORT fuse the forward Conv with the activation. Greater, Cast, Clip and Mul together cost a
    // third of ORT's three-tensor Where (and Sign is as slow as Where); Clip is ~half of Max with a scalar
    // (round 21: 1.4 against 2.75 ms for [32,16,128,128] on one thread). Clip(Ceil(y), alpha, 1) would save the
    // Greater and Cast too, but gives NaN where y is NaN (docs/performance-history/grpo-step.md, "Round 21: grpo21").
    // (alpha -0 passes `>= 0` but its products' zeros have the other sign: the Where path below)
    if (alpha >= 0 && alpha <= 1 && !Object.is(alpha, -0)) return [mul(dy!, clip(cast(greater(y, 0), 'float32'), alpha, 1))];
    return [where(greater(x, 0), dy!, mul(dy!, alpha))];
  },
  Sigmoid: ({ outputs: [y] }, [dy]) => [mul(dy!, mul(y, sub(1, y)))],
  Tanh: ({ outputs: [y] }, [dy]) => [mul(dy!, sub(1, mul(y, y)))],
  Exp: ({ outputs: [y] }, [dy]) => [mul(dy!, y)],
  Log: ({ inputs: [x] }, [dy]) => [div(dy!, x)],
  Sqrt: ({ outputs: [y] }, [dy]) => [div(mul(dy!, 0.5), y)],
  Abs: ({ inputs: [x] }, [dy]) => [mul(dy!, sign(x))],
  Sign: () => [null],
  Clip: ({ inputs: [x, lo, hi] }, [dy], needs) => {
    if (needs[1] || needs[2]) throw new Error('Clip: gradients with respect to the bounds are not supported');
    return [where(and(greaterOrEqual(x, lo), lessOrEqual(x, hi)), dy!, 0), null, null];
  },
  ReduceSum: ({ inputs: [x, axesV], attrs }, [dy]) => {
    const axes = staticInts(axesV);
    const kept = attrs.keepdims ? dy! : unsqueeze(dy!, axes);
    return [expandTo(kept, x.shape, x), null];
  },
  ReduceMean: ({ inputs: [x, axesV], attrs }, [dy]) => {
    const axes = axesV ? staticInts(axesV) : (attrs.axes as number[]);
    const kept = attrs.keepdims ? dy! : unsqueeze(dy!, axes);
    return [div(expandTo(kept, x.shape, x), countOf(x, axes)), null];
  },
  Shape: () => [null],
  Reshape: ({ inputs: [x] }, [dy]) => [reshape(dy!, x.shape), null],
  Transpose: ({ attrs }, [dy]) => {
    const perm = attrs.perm as number[];
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [transpose(dy!, inverse)];
  },
  Squeeze: ({ inputs: [x] }, [dy]) => [reshape(dy!, x.shape), null],
  Unsqueeze: ({ inputs: [x] }, [dy]) => [reshape(dy!, x.shape), null],
  Expand: ({ inputs: [x] }, [dy]) => [sumTo(dy!, x.shape), null],
  Concat: ({ inputs, attrs }, [dy], needs) => {
    const axis = attrs.axis as number;
    let start = 0;
    return inputs.map((x, i) => {
      const size = x.shape[axis] as number;
      const out = needs[i] ? slice(dy!, [start], [start + size], [axis]) : null;
      start += size;
      return out;
    });
  },
  Slice: ({ inputs: [x, s, e, a] }, [dy]) => {
    const [starts, ends, axes] = [staticInts(s), staticInts(e), staticInts(a)];
    const before = new Array(x.rank).fill(0);
    const after = new Array(x.rank).fill(0);
    axes.forEach((axis, i) => {
      before[axis] = starts[i];
      after[axis] = (x.shape[axis] as number) - ends[i];
    });
    return [pad(dy!, before, after), null, null, null];
  },
  Pad: ({ inputs: [x, p] }, [dy]) => {
    const [pads, r] = [staticInts(p), x.rank];
    const axes = x.shape.map((_, i) => i).filter((i) => pads[i] || pads[i + r]);
    return [slice(dy!, axes.map((i) => pads[i]), axes.map((i) => pads[i] + (x.shape[i] as number)), axes), null, null];
  },
  MatMul: ({ inputs: [a, b] }, [dy], needs) => [
    needs[0] ? sumTo(matmul(dy!, swapLast2(b)), a.shape) : null,
    needs[1] ? sumTo(matmul(swapLast2(a), dy!), b.shape) : null,
  ],
  AveragePool: ({ attrs }, [dy]) => {
    const k = (attrs.kernel_shape as number[])[0];
    return [div(upsampleNearest(dy!, k), k * k)];
  },
  Erf: ({ inputs: [x] }, [dy]) => [mul(dy!, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))],
  Softplus: ({ inputs: [x] }, [dy]) => [mul(dy!, sigmoid(x))],
  Elu: ({ inputs: [x], outputs: [y], attrs }, [dy]) => [where(greater(x, 0), dy!, mul(dy!, add(y, floatAttr(attrs.alpha))))],
  Selu: ({ inputs: [x], outputs: [y], attrs }, [dy]) => {
    const [alpha, gamma] = [floatAttr(attrs.alpha), floatAttr(attrs.gamma)];
    return [where(greater(x, 0), mul(dy!, gamma), mul(dy!, add(y, alpha * gamma)))];
  },
  PRelu: ({ inputs: [x, slope] }, [dy], needs) => {
    const positive = greater(x, 0);
    return [
      needs[0] ? where(positive, dy!, mul(dy!, slope)) : null,
      needs[1] ? sumTo(where(positive, 0, mul(dy!, x)), slope.shape) : null,
    ];
  },
  Softmax: ({ outputs: [y], attrs }, [dy]) => [mul(y, sub(dy!, reduceSum(mul(dy!, y), [attrs.axis as number], true)))],
  LogSoftmax: ({ outputs: [y], attrs }, [dy]) => [sub(dy!, mul(exp(y), reduceSum(dy!, [attrs.axis as number], true)))],
  MaxPool: maxPoolRule,
  Conv: convRule,
  ConvTranspose: convTransposeRule,
};
