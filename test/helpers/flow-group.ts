// A flow-family GRPO group made as the pipeline makes one, for the tests of the learner's flow rows.
import type { TensorMap } from '../../lib/checkpoint/tensors.ts';
import type { RunConfig } from '../../lib/config/index.ts';
import type { FlowGroupRollout, FlowRunner } from '../../lib/flow/family.ts';
import { advantagesOf, rewardsOf, type GrpoAlgorithm } from '../../lib/grpo/algorithm.ts';
import type { TrainableGroup } from '../../lib/grpo/batch.ts';
import type { Components } from '../../lib/grpo/reward-expression.ts';
import { rolloutNoiseSeed } from '../../lib/grpo/sampling.ts';
import { ssimMapSize } from '../../lib/models/ssim.ts';

/**
 * Group `id`: grpo.groupSize actions restoring the corrupted `image` [3,H,W], rolled out by `runner` under `params`
 * with the rollout worker's seeds, scored by `components` (one per action) through the run's reward and advantages,
 * as the TrainableGroup the orchestrator sends the learner (behaviour log-densities in flowSteps). With
 * grpo.advantageMode dense the rollout keeps its log-density maps and each action's SSIM map is its `ssim`
 * component everywhere. A group the algorithm drops (zero variance) is an error naming it.
 */
export async function rollFlowGroup(
  c: RunConfig,
  runner: FlowRunner,
  params: TensorMap,
  algo: GrpoAlgorithm,
  id: string,
  image: Float32Array,
  components: readonly Components[],
): Promise<{ group: TrainableGroup; roll: FlowGroupRollout }> {
  const G = c.grpo.groupSize;
  const dense = c.grpo.advantageMode === 'dense';
  const pix = image.length;
  const seeds = Array.from({ length: G }, (_, a) => rolloutNoiseSeed(c.run.seed, id, a));
  const roll = await runner.rollout(params, id, image, seeds, dense);
  const rewards = rewardsOf(algo, components);
  const mapLen = 3 * ssimMapSize(c.data.size) ** 2;
  const ssimMaps = dense
    ? components.map((k, a) => {
        if (k.ssim === undefined) throw new Error(`rollFlowGroup: action ${a} of group ${id} has no ssim component (a dense group needs its SSIM map)`);
        return new Float32Array(mapLen).fill(k.ssim);
      })
    : undefined;
  const o = advantagesOf(algo, { components, rewards, ...(ssimMaps ? { ssimMaps } : {}) });
  if (!o.kept) throw new Error(`rollFlowGroup: group ${id} dropped: ${o.detail}`);
  const group: TrainableGroup = {
    sampleId: id, image, actions: Array.from({ length: G }, (_, a) => roll.images.slice(a * pix, (a + 1) * pix)),
    logps: new Array(G).fill(0), versions: new Array(G).fill(0), rewards, components, advantages: o.advantages,
    ...(o.advantageMaps ? { advantageMaps: o.advantageMaps } : {}), flowSteps: roll.steps,
  };
  return { group, roll };
}
