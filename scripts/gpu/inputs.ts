// Inputs the GPU checks feed the graphs, deterministic. Their parameters are lib/models/bundle.ts
// initialParamsWithNoiseOf: no tensor left at an all-zero initialisation (a zero-initialised head would make every
// gradient before it zero, and a comparison of zeros proves nothing).
import { standardNormal } from '../../lib/data/random.ts';
import { clamp01 } from '../../lib/data/image.ts';

/** K distinct images, each repeated G times (a GRPO batch's layout), values in [0, 1]. */
export function groupImages(K: number, G: number, pix: number, seed: number): Float32Array {
  const distinct = clamp01(Float32Array.from(standardNormal(K * pix, seed), (v) => 0.5 + 0.15 * v));
  const out = new Float32Array(K * G * pix);
  for (let k = 0; k < K; k++) for (let g = 0; g < G; g++) out.set(distinct.subarray(k * pix, (k + 1) * pix), (k * G + g) * pix);
  return out;
}
