// Inputs the GPU checks feed the graphs: deterministic, and with no parameter left at an all-zero initialisation
// (a zero-initialised head would make every gradient before it zero, and a comparison of zeros proves nothing).
import type { RunConfig } from '../../lib/config/index.ts';
import type { TensorMap } from '../../lib/checkpoint/tensors.ts';
import { initialParamsWithNoiseOf } from '../../lib/models/bundle.ts';
import { standardNormal } from '../../lib/data/random.ts';
import { clamp01 } from '../../lib/data/image.ts';

/** Params of `config` with every all-zero tensor given small noise (lib/models/bundle.ts initialParamsWithNoiseOf). */
export function paramsOf(config: RunConfig): TensorMap {
  return initialParamsWithNoiseOf(config);
}

/** K distinct images, each repeated G times (a GRPO batch's layout), values in [0, 1]. */
export function groupImages(K: number, G: number, pix: number, seed: number): Float32Array {
  const distinct = clamp01(Float32Array.from(standardNormal(K * pix, seed), (v) => 0.5 + 0.15 * v));
  const out = new Float32Array(K * G * pix);
  for (let k = 0; k < K; k++) for (let g = 0; g < G; g++) out.set(distinct.subarray(k * pix, (k + 1) * pix), (k * G + g) * pix);
  return out;
}
