// LoRA on an imported network: its Conv, Gemm and MatMul weights are the adaptable ones, the rest of the
// base is frozen, and the merged export is the original ONNX file with adapted initializers.

import type { Graph, Value } from '../graph/graph.ts';
import { adaptedWeight, mergeLora, planLora, type AdaptableWeight, type Adapter, type LoraSpec } from '../graph/lora.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { withInitializers, type ImportedNetwork, type ImportedParam } from './onnx-import.ts';

export function adaptableWeights(net: ImportedNetwork): AdaptableWeight[] {
  return net.params.flatMap((p): AdaptableWeight[] => {
    if (p.role === 'conv-weight' || p.role === 'gemm-weight') return [{ name: p.name, shape: p.shape, layout: 'out-in' }];
    if (p.role === 'matmul-weight' && p.shape.length === 2) return [{ name: p.name, shape: p.shape, layout: 'in-out' }];
    return [];
  });
}

export interface LoraNetwork {
  adapters: Adapter[];
  /** Builds the adapted network: `param` supplies the (frozen) base weights, `factor` each A and B. */
  build(g: Graph, inputs: Record<string, Value>, param: (p: ImportedParam) => Value, factor: (name: string, shape: number[]) => Value): Value[];
}

export function withLora(net: ImportedNetwork, spec: LoraSpec): LoraNetwork {
  const adapters = planLora(adaptableWeights(net), spec);
  const byTarget = new Map(adapters.map((ad) => [ad.target.name, ad]));
  return {
    adapters,
    build: (g, inputs, param, factor) =>
      net.build(g, inputs, (p) => {
        const ad = byTarget.get(p.name);
        const w = param(p);
        return ad ? adaptedWeight(w, ad, factor(ad.a.name, ad.a.shape), factor(ad.b.name, ad.b.shape)) : w;
      }),
  };
}

/** A standalone ONNX model: the original file with the adapters merged into its initializers. */
export function mergedOnnx(original: Uint8Array, base: TensorMap, adapters: Adapter[], factors: TensorMap): Uint8Array {
  return withInitializers(original, mergeLora(base, adapters, factors));
}
