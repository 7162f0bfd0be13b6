// Low-rank adapters (LoRA) as a graph transform on weights: a frozen weight W [out, in...] is used as
// W + (alpha / rank) * B A, with A [rank, in] random and B [out, rank] zero at the start, so a fresh
// adapter leaves the network unchanged and only A and B train. Merging folds B A into W on the host, for
// a standalone model that computes what the adapted network computes.

import type { Value } from './graph.ts';
import { add, matmul, mul, reshape, transpose } from './ops.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { fillStandardNormal, hashSeed } from '../data/random.ts';

/** How a weight maps inputs to outputs: conv [O,I,kh,kw] and gemm(transB) [O,I] are out-in, matmul [I,O] is in-out. */
export type WeightLayout = 'out-in' | 'in-out';

export interface AdaptableWeight {
  name: string;
  shape: number[];
  layout: WeightLayout;
}

export interface LoraSpec {
  rank: number;
  alpha: number;
  /** Name patterns ('*' matches any run of characters) selecting the weights to adapt. */
  targets: string[];
}

export interface Adapter {
  target: AdaptableWeight;
  /** Names of the factors: `${target}.lora_A` [rank, in] and `${target}.lora_B` [out, rank]. */
  a: { name: string; shape: [number, number] };
  b: { name: string; shape: [number, number] };
  scale: number;
}

/** A name pattern ('*' matches any run of characters) as an anchored regular expression. */
export function namePattern(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

function fans(w: AdaptableWeight): [number, number] {
  const rest = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
  return w.layout === 'out-in' ? [w.shape[0], rest(w.shape.slice(1))] : [w.shape[1], w.shape[0]];
}

/** Chooses the adapted weights; a pattern that selects nothing is refused. */
export function planLora(weights: AdaptableWeight[], spec: LoraSpec): Adapter[] {
  if (!Number.isInteger(spec.rank) || spec.rank < 1) throw new Error(`lora: rank must be a positive integer, got ${spec.rank}`);
  const chosen = new Set<AdaptableWeight>();
  for (const t of spec.targets) {
    const re = namePattern(t);
    const hits = weights.filter((w) => re.test(w.name));
    if (!hits.length) throw new Error(`lora: target '${t}' matches none of the adaptable weights (${weights.map((w) => w.name).join(', ')})`);
    hits.forEach((w) => chosen.add(w));
  }
  return weights
    .filter((w) => chosen.has(w))
    .map((w) => {
      const [out, inn] = fans(w);
      return { target: w, a: { name: `${w.name}.lora_A`, shape: [spec.rank, inn] }, b: { name: `${w.name}.lora_B`, shape: [out, spec.rank] }, scale: spec.alpha / spec.rank };
    });
}

/** Fresh factors: A ~ N(0, 1/in), B = 0. */
export function initLora(adapters: Adapter[], seed: number): TensorMap {
  const out: TensorMap = new Map();
  for (const ad of adapters) {
    const a = fillStandardNormal(new Float32Array(ad.a.shape[0] * ad.a.shape[1]), hashSeed(seed, ad.a.name));
    const s = 1 / Math.sqrt(ad.a.shape[1]);
    for (let i = 0; i < a.length; i++) a[i] *= s;
    out.set(ad.a.name, { shape: [...ad.a.shape], data: a });
    out.set(ad.b.name, { shape: [...ad.b.shape], data: new Float32Array(ad.b.shape[0] * ad.b.shape[1]) });
  }
  return out;
}

/** W + scale * B A, shaped as W (the transform applied where the network reads W). */
export function adaptedWeight(w: Value, ad: Adapter, a: Value, b: Value): Value {
  const ba = mul(matmul(b, a), ad.scale);
  const delta = ad.target.layout === 'out-in' ? reshape(ba, ad.target.shape) : transpose(ba, [1, 0]);
  return add(w, delta);
}

/** The base weights with every adapter folded in (float64 on the host, rounded once to float32). */
export function mergeLora(base: TensorMap, adapters: Adapter[], factors: TensorMap): TensorMap {
  const merged: TensorMap = new Map(base);
  for (const ad of adapters) {
    const w = base.get(ad.target.name);
    const a = factors.get(ad.a.name);
    const b = factors.get(ad.b.name);
    if (!w || !a || !b) throw new Error(`lora merge: '${ad.target.name}' needs its weight and both factors`);
    const [rank, inn] = ad.a.shape;
    const out = ad.b.shape[0];
    const data = new Float32Array(w.data.length);
    for (let o = 0; o < out; o++) {
      for (let i = 0; i < inn; i++) {
        let s = 0;
        for (let r = 0; r < rank; r++) s += b.data[o * rank + r] * a.data[r * inn + i];
        const at = ad.target.layout === 'out-in' ? o * inn + i : i * out + o;
        data[at] = w.data[at] + ad.scale * s;
      }
    }
    merged.set(ad.target.name, { shape: [...w.shape], data });
  }
  return merged;
}
