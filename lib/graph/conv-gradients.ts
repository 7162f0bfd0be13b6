// The vector-Jacobian products of Conv and ConvTranspose, which are convolutions themselves: the input
// gradient of one is the other, and the weight gradient swaps the batch and channel axes.

import type { Dim, Value } from './graph.ts';
import {
  concat, conv, convAttrs, convOutSize, convTranspose, matmul, pad, reduceSum, reshape, shapeOf, slice, staticDim, transpose,
  unsqueeze, where,
  type ConvAttrs, type ConvOptions,
} from './ops.ts';
import type { VJP } from './gradient.ts';

export const convRule: VJP = ({ inputs: [x, w, b], outputs: [y], attrs }, [dy], needs) => {
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

export const convTransposeRule: VJP = ({ inputs: [x, w, b], attrs }, [dy], needs) => {
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

/**
 * The weight gradient of a convolution is itself a convolution: batch and channel axes swap roles,
 * stride and dilation swap places. For a transposed convolution, input and output gradient swap.
 * Grouped convolutions are handled group by group.
 */
function kernelGradient(x: Value, dy: Value, k: [number, number], a: ConvAttrs, kind: 'conv' | 'convTranspose'): Value {
  if (kind === 'conv' && a.group === 1 && a.strides.every((s) => s === 1)) return kernelGradientShifted(x, dy, k, a);
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
 * equivalent ConvTranspose. Where the layer's pad exceeds the dilated kernel extent (a 1x1 kernel with
 * pad 1), that pad is negative: those rows/columns of dY only saw padding, so they are cropped instead.
 */
function inputGradientStride1(dy: Value, w: Value, a: ConvAttrs): Value {
  const [, , kh, kw] = w.shape as number[];
  const flipped = transpose(reverseAxis(reverseAxis(w, 2), 3), [1, 0, 2, 3]);
  const [dh, dw] = a.dilations;
  const full = [(kh - 1) * dh - a.pads[0], (kw - 1) * dw - a.pads[1], (kh - 1) * dh - a.pads[2], (kw - 1) * dw - a.pads[3]];
  const pads = full.map((p) => Math.max(p, 0)) as [number, number, number, number];
  const crop = full.map((p) => Math.max(-p, 0));
  const [ho, wo] = [staticDim(dy.shape[2], 'conv gradient'), staticDim(dy.shape[3], 'conv gradient')];
  const kept = crop.some((c) => c > 0) ? slice(dy, [crop[0], crop[1]], [ho - crop[2], wo - crop[3]], [2, 3]) : dy;
  return conv(kept, flipped, undefined, { pads, dilations: a.dilations as [number, number] });
}

/** A grouped Conv with constant one-hot kernels: output channel c*k + t copies tap t of input channel c (exactly: x*1 plus zeros). */
function shiftedCopies(x: Value, k: number, vertical: boolean, tap: (t: number) => number, o: ConvOptions): Value {
  const c = x.shape[1] as number;
  const oneHot = new Float32Array(c * k * k);
  for (let ch = 0; ch < c; ch++) for (let t = 0; t < k; t++) oneHot[(ch * k + t) * k + tap(t)] = 1;
  const w = x.graph.constant(oneHot, vertical ? [c * k, 1, k, 1] : [c * k, 1, 1, k]);
  return conv(x, w, undefined, { ...o, group: c });
}

/**
 * The same weight gradient for stride-1 convolutions (every layer of the policies) as one batched matrix
 * product, without materialising the k*k shifted views (im2col) of the input:
 *   dW[o,i,ky,kx] = sum_{n,y,x'} dYs[n,(o,kx),y,x'] * Xr[n,(i,ky),y,x']
 * where Xr holds the kh vertical shifts of the input over the padded width W2 = Wo + (kw-1)*dw, and dYs
 * the kw horizontal shifts of dY over the same width (zeros where a shift leaves the map). Each operand
 * is k times the size of its tensor instead of k*k times, both come from one-hot grouped Convs (exact
 * copies), and the matrix product [Cin*kh, Ho*W2] x [Ho*W2, Cout*kw] yields every (ky, kx) pair at once.
 * The extra terms are zero products, so the sums equal im2col's up to the order of float additions.
 */
function kernelGradientShifted(x: Value, dy: Value, [kh, kw]: [number, number], a: ConvAttrs): Value {
  const cin = staticDim(x.shape[1], 'conv weight gradient');
  const [, cout, ho, wo] = dy.shape as [Dim, number, number, number];
  const w2 = wo + (kw - 1) * a.dilations[1];
  const [m, k] = [cin * kh, cout * kw];
  const perImage = (m + k) * ho * w2 * 4;
  // The rows of the MatMul's first operand may be split among threads, its columns must not be (see batchChunks).
  const prod = CHUNKS.count > 1 && perImage >= CHUNKS.minBytes && k <= m
    ? concatBatch(batchChunks([x, dy], CHUNKS.count).map(([xc, dyc]) => shiftedProduct(xc, dyc, [kh, kw], a)), [x.shape[0], m, k])
    : shiftedProduct(x, dy, [kh, kw], a);
  const dwT = reduceSum(prod, [0]); // [(i,ky), (o,kx)]
  return transpose(reshape(dwT, [cin, kh, cout, kw]), [2, 0, 1, 3]);
}

/**
 * Above `minBytes` of shifted operands per image (both together), the weight gradient's shifted copies and their
 * MatMul run on the batch in `count` chunks, each chunk's operands read by its MatMul while they are still in cache
 * (a chunk's buffers are reused by the next). At 128 px a 16->16 layer's operands are 6.4 MB per image, 205 MB for a
 * batch of 32, which otherwise go to memory and back. The same bytes: the copies are exact, each image's matrix
 * product is computed alone either way, and the per-image products are summed over the whole batch in the same
 * order (docs/performance-history/grpo-step.md, "Round 19: grpo19").
 */
export const CHUNKS = { count: 16, minBytes: 1 << 20 };

/**
 * `xs` (each [N, ...], the same N) cut into `count` consecutive chunks of ceil(N / count) rows along axis 0; the last
 * chunks are empty where N < count * size. Each chunk has at least ceil(N / count) >= 1 rows or none: onnxruntime's
 * MatMul then never splits one image's product over threads by its columns (only by its rows, which keeps each
 * element's sum), as long as the caller keeps columns <= rows.
 */
function batchChunks(xs: Value[], count: number): Value[][] {
  const g = xs[0]!.graph;
  const n = g.emit('Slice', [shapeOf(xs[0]!), g.ints([0]), g.ints([1]), g.ints([0])], {}, [{ dtype: 'int64', shape: [1] }])[0];
  const size = g.emit('Div', [g.emit('Add', [n, g.ints([count - 1])], {}, [{ dtype: 'int64', shape: [1] }])[0], g.ints([count])], {}, [{ dtype: 'int64', shape: [1] }])[0];
  const bound = (i: number) => (i === 0 ? g.ints([0]) : g.emit('Mul', [size, g.ints([i])], {}, [{ dtype: 'int64', shape: [1] }])[0]);
  const chunks: Value[][] = [];
  for (let i = 0; i < count; i++) {
    const rows = g.fresh('chunk');
    chunks.push(xs.map((x) => g.emit('Slice', [x, bound(i), bound(i + 1), g.ints([0])], {}, [{ dtype: x.dtype, shape: [rows, ...x.shape.slice(1)] }])[0]));
  }
  return chunks;
}

function concatBatch(parts: Value[], shape: Dim[]): Value {
  return parts[0]!.graph.emit('Concat', parts, { axis: 0 }, [{ dtype: parts[0]!.dtype, shape }])[0];
}

/** [n, Cin*kh, Cout*kw]: each image's product of its shifted operands (kernelGradientShifted). */
function shiftedProduct(x: Value, dy: Value, [kh, kw]: [number, number], a: ConvAttrs): Value {
  const [n, cin] = x.shape;
  const [, cout, ho, wo] = dy.shape as [Dim, number, number, number];
  const [dh, dw] = a.dilations;
  const w2 = wo + (kw - 1) * dw;
  // Xr[n,(i,ky),y,x'] = x[n,i,y-top+ky*dh,x'-left]: a kh x 1 one-hot Conv with the layer's padding.
  const rows = shiftedCopies(x, kh, true, (t) => t, { pads: a.pads as [number, number, number, number], dilations: [dh, 1] });
  // dYs[n,(o,kx),y,x'] = dy[n,o,y,x'-kx*dw]: a 1 x kw one-hot Conv (tap kw-1-kx) padded by (kw-1)*dw each side.
  const p = (kw - 1) * dw;
  const shifted = shiftedCopies(dy, kw, false, (t) => kw - 1 - t, { pads: [0, p, 0, p], dilations: [1, dw] });
  if (rows.shape[3] !== w2 || shifted.shape[3] !== w2) throw new Error(`conv weight gradient: shifted widths ${rows.shape[3]} and ${shifted.shape[3]}, expected ${w2}`);
  const c = cin as number;
  return matmul(reshape(rows, [n, c * kh, ho * w2]), transpose(reshape(shifted, [n, cout * kw, ho * w2]), [0, 2, 1]));
}

/** A convolution whose weight has a run-time dimension (used only inside gradients). */
function convRaw(x: Value, w: Value, o: ConvOptions): Value {
  const a = convAttrs(o);
  const [kh, kw] = [staticDim(w.shape[2], 'conv kernel'), staticDim(w.shape[3], 'conv kernel')];
  const h = convOutSize(staticDim(x.shape[2], 'conv'), kh, a.strides[0], a.dilations[0], a.pads[0], a.pads[2]);
  const wd = convOutSize(staticDim(x.shape[3], 'conv'), kw, a.strides[1], a.dilations[1], a.pads[1], a.pads[3]);
  return x.graph.emit('Conv', [x, w], { ...a, kernel_shape: [kh, kw] }, [{ dtype: 'float32', shape: [x.shape[0], w.shape[0], h, wd] }])[0];
}

/**
 * MaxPool's VJP: each window's gradient goes to its first maximum (PyTorch's choice at ties). The
 * windows are gathered by a grouped convolution with one-hot kernels (K = kh*kw output channels per input
 * channel, an exact copy), the maximum picked by ArgMax, and the gradient scattered back by the
 * transposed convolution with the same kernels. Padding takes the lowest float so it never wins.
 */
export const maxPoolRule: VJP = ({ inputs: [x], attrs }, [dy]) => {
  const g = x.graph;
  const [kh, kw] = attrs.kernel_shape as number[];
  const strides = attrs.strides as [number, number];
  const dilations = attrs.dilations as [number, number];
  const p = attrs.pads as number[];
  const [n, c0, h0, w0] = x.shape;
  const [c, h, w] = [staticDim(c0, 'maxPool'), staticDim(h0, 'maxPool'), staticDim(w0, 'maxPool')];
  const [ho, wo] = [dy!.shape[2], dy!.shape[3]] as [number, number];
  const K = kh * kw;
  const oneHot = new Float32Array(c * K * K);
  for (let ch = 0; ch < c; ch++) for (let k = 0; k < K; k++) oneHot[(ch * K + k) * K + k] = 1;
  const kernels = g.constant(oneHot, [c * K, 1, kh, kw]);
  const padded = pad(x, [0, 0, p[0], p[1]], [0, 0, p[2], p[3]], -3.4028234663852886e38);
  const windows = reshape(conv(padded, kernels, undefined, { strides, dilations, group: c }), [n, c, K, ho, wo]);
  const first = g.emit('ArgMax', [windows], { axis: 2, keepdims: 1, select_last_index: 0 }, [{ dtype: 'int64', shape: [n, c, 1, ho, wo] }])[0];
  const slots = g.constant(Array.from({ length: K }, (_, k) => k), [1, 1, K, 1, 1], 'int64');
  const isMax = g.emit('Equal', [first, slots], {}, [{ dtype: 'bool', shape: [n, c, K, ho, wo] }])[0];
  const routed = reshape(where(isMax, unsqueeze(dy!, [2]), 0), [n, c * K, ho, wo]);
  const outputPadding = [0, 1].map((i) => {
    const k = [kh, kw][i];
    const full = strides[i] * ([ho, wo][i] - 1) + (k - 1) * dilations[i] + 1 - p[i] - p[i + 2];
    return [h, w][i] - full;
  }) as [number, number];
  return [convTranspose(routed, kernels, undefined, { strides, dilations, group: c, pads: p as [number, number, number, number], outputPadding })];
};
