// Gradient checking against central finite differences, run through onnxruntime on the emitted graphs
// (the op tests, and the gradient spot check of `recovery-grpo import`).
import { Graph, type Shape, type Value } from './graph.ts';
import { gradients } from './autodiff.ts';
import { mul, reduceSum } from './ops.ts';
import { serialize } from './onnx.ts';
import { GraphSession, type Feeds } from './runtime.ts';

/** A small deterministic PRNG for test data (independent of the code under test). */
export function testRandom(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

export interface CheckInput {
  name: string;
  shape: Shape;
  /** Concrete dims to feed (defaults to `shape` with symbolic dims set to 2). */
  dims?: number[];
  /** Values; defaults to uniform in [-1, 1]. */
  init?: (i: number, rand: () => number) => number;
  /** Whether to differentiate with respect to this input (default true). */
  grad?: boolean;
}

export interface CheckResult {
  analytic: number;
  numeric: number;
  relError: number;
}

/**
 * Builds `f(inputs)`, forms L = sum(f * R) for a fixed random R, and compares <dL/dx, v> from the
 * gradient graph with (L(x + eps v) - L(x - eps v)) / 2 eps over all differentiated inputs at once.
 * L is summed in float64 here, so only f's own float32 rounding enters the difference quotient.
 */
export async function gradCheck(
  inputs: CheckInput[],
  f: (g: Graph, xs: Value[]) => Value,
  opts: {
    eps?: number;
    seed?: number;
    opset?: number;
    /** Perturb only this many random coordinates of each differentiated input (deep networks, where a
     * dense direction moves the loss far out of its linear range); all coordinates by default. */
    coordinates?: number;
  } = {},
): Promise<CheckResult> {
  const eps = opts.eps ?? 1e-3;
  const rand = testRandom(opts.seed ?? 7);
  const g = new Graph(opts.opset ?? 17);
  const xs = inputs.map((i) => g.input(i.name, i.shape));
  const y = f(g, xs);
  const yDims = y.shape.map((d) => (typeof d === 'number' ? d : 2));
  const yN = yDims.reduce((a, b) => a * b, 1);
  const r = Float32Array.from({ length: yN }, () => rand() * 2 - 1);
  const rIn = g.input('__r', y.shape);
  const loss = reduceSum(mul(y, rIn));
  const wrt = xs.filter((_, i) => inputs[i].grad !== false);
  const grads = gradients(loss, wrt);
  g.output('__y', y); // reserved names, so an input called y or r cannot clash
  grads.forEach((d, i) => g.output(`grad.${wrt[i].name}`, d));
  const session = await GraphSession.create(serialize(g));

  const feeds: Feeds = { __r: { data: r, dims: yDims } };
  inputs.forEach((inp) => {
    const dims = inp.dims ?? inp.shape.map((d) => (typeof d === 'number' ? d : 2));
    const n = dims.reduce((a, b) => a * b, 1);
    const init = inp.init ?? ((_i, rr) => rr() * 2 - 1);
    feeds[inp.name] = { data: Float32Array.from({ length: n }, (_, i) => init(i, rand)), dims };
  });
  const dirs: Record<string, Float32Array> = {};
  for (const w of wrt) {
    const n = feeds[w.name].data.length;
    if (opts.coordinates === undefined) dirs[w.name] = Float32Array.from({ length: n }, () => rand() * 2 - 1);
    else {
      dirs[w.name] = new Float32Array(n);
      for (let k = 0; k < opts.coordinates; k++) dirs[w.name][Math.floor(rand() * n)] = rand() < 0.5 ? -1 : 1;
    }
  }

  const lossAt = async (t: number): Promise<number> => {
    const shifted: Feeds = { ...feeds };
    for (const w of wrt) {
      const base = feeds[w.name].data;
      shifted[w.name] = { data: base.map((v, i) => v + t * dirs[w.name][i]), dims: feeds[w.name].dims };
    }
    const out = await session.run(shifted, ['__y']);
    let s = 0;
    out.__y!.data.forEach((v, i) => (s += v * r[i]));
    return s;
  };
  const out = await session.run(feeds);
  let analytic = 0;
  for (const w of wrt) {
    const d = out[`grad.${w.name}`].data;
    if (d.length !== dirs[w.name].length) throw new Error(`grad.${w.name} has ${d.length} values, input has ${dirs[w.name].length}`);
    d.forEach((v, i) => (analytic += v * dirs[w.name][i]));
  }
  const numeric = ((await lossAt(eps)) - (await lossAt(-eps))) / (2 * eps);
  await session.release();
  const relError = Math.abs(analytic - numeric) / Math.max(Math.abs(analytic), Math.abs(numeric), 1e-6);
  return { analytic, numeric, relError };
}
