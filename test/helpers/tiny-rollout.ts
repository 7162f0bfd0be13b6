// A tiny Gaussian policy's rollout, the fixture of the tests that check the training graph against
// grpoLossReference (test/grpo/algorithm.test.ts, test/grpo/identity.test.ts): n = 4 rows of 16 x 16 images near
// 0.5, parameters with a non-zero head (so the mean depends on the image), seeded noise.
import type { RunConfig } from '../../lib/config/index.ts';
import { standardNormal } from '../../lib/data/random.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import type { TensorMap } from '../../lib/checkpoint/tensors.ts';
import { grpoLossReference, type LossReference, type LossReferenceInputs } from '../../lib/grpo/algorithm.ts';
import { spreadToPixels } from '../../lib/grpo/advantages.ts';
import { LOG_STD } from '../../lib/models/policy.ts';
import { gaussianWindow1d, ssimMapSize } from '../../lib/models/ssim.ts';

export const TINY_H = 16;
export const TINY_PIX = 3 * TINY_H * TINY_H;
export const TINY_N = 4;

export async function tinyRollout(config: RunConfig) {
  const params = initPolicyParams(policySpecOf(config), 7);
  for (const [, t] of params) if (t.data.every((x) => x === 0) && t.data.length > 1) t.data.set(standardNormal(t.data.length, 9).map((x) => 0.05 * x));
  const runner = await PolicyRunner.create(config);
  const images = Float32Array.from(standardNormal(TINY_N * TINY_PIX, 11), (x) => 0.5 + 0.1 * x);
  const roll = await runner.run(params, images, standardNormal(TINY_N * TINY_PIX, 12), TINY_N);
  await runner.release();
  return { params, images, roll };
}

/**
 * grpoLossReference for a tiny batch as the GRPO graph sees it (dense maps [n,3,h,w] spread onto pixels with
 * spreadToPixels): what test/grpo/algorithm.test.ts and test/grpo/dual-clip.test.ts compare the graph with.
 */
export function tinyLossReference(o: {
  params: TensorMap; roll: { mean: Float32Array; action: Float32Array }; logpOld: Float32Array; advantages: Float32Array;
  advantageMap?: Float32Array; refMean: Float32Array; hyper: LossReferenceInputs['hyper'];
}): LossReference {
  const h = ssimMapSize(TINY_H);
  const win = gaussianWindow1d();
  const map = o.advantageMap;
  const pixelAdvantages = map
    ? Array.from({ length: TINY_N }, (_, i) => [...spreadToPixels(map.subarray(i * 3 * h * h, (i + 1) * 3 * h * h), 3, h, h, win)]).flat()
    : undefined;
  return grpoLossReference({
    n: TINY_N, mean: o.roll.mean, actions: o.roll.action, logStd: o.params.get(LOG_STD)!.data[0]!, logpOld: o.logpOld, advantages: o.advantages,
    refMean: o.refMean, hyper: o.hyper, ...(pixelAdvantages ? { pixelAdvantages } : {}),
  });
}
