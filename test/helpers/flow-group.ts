// A flow-family GRPO group made as the pipeline makes one, for the tests of the learner's flow rows.
import type { TensorMap } from '../../lib/checkpoint/tensors.ts';
import { parseConfig, type RunConfig } from '../../lib/config/index.ts';
import { FlowRunner, FlowTrainer, type FlowGroupRollout } from '../../lib/flow/family.ts';
import { advantagesOf, compileAlgorithm, grpoHyper, rewardsOf, type GrpoAlgorithm } from '../../lib/grpo/algorithm.ts';
import { assembleGrpoBatch, type GrpoBatch, type TrainableGroup } from '../../lib/grpo/batch.ts';
import type { Components } from '../../lib/grpo/reward-expression.ts';
import { rolloutNoiseSeed } from '../../lib/grpo/sampling.ts';
import { initialParamsOf } from '../../lib/models/bundle.ts';
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

/**
 * The learner's first pass over the rollout worker's output under the initial parameters: two groups, `s0` and `s1`,
 * of the same corrupted image, scored 0.1 a (+0.05 in s1) for action a, assembled into the GRPO batch and run
 * through FlowTrainer.grpoForward with the policy as its own reference. It is on-policy, so a test expects every
 * row's ratio at 1 and the learner's log-densities at the rollout's. `each` sees each group's rollout as it is made.
 */
export async function firstFlowPass(
  c: RunConfig,
  each?: (g: { runner: FlowRunner; params: TensorMap; id: string; image: Float32Array; roll: FlowGroupRollout }) => Promise<void>,
): Promise<{ batch: GrpoBatch; out: Awaited<ReturnType<FlowTrainer['grpoForward']>> }> {
  const H = c.data.size;
  const G = c.grpo.groupSize;
  const params = initialParamsOf(c);
  const runner = await FlowRunner.create(c);
  const trainer = FlowTrainer.create(c, params);
  try {
    const algo = compileAlgorithm(c);
    const groups: TrainableGroup[] = [];
    for (const id of ['s0', 's1']) {
      const image = Float32Array.from({ length: 3 * H * H }, (_, i) => (i % 7) / 7);
      const components = Array.from({ length: G }, (_, a) => ({ ssim: 0.1 * a + (id === 's1' ? 0.05 : 0), clip_cos: 0 }));
      const { group, roll } = await rollFlowGroup(c, runner, params, algo, id, image, components);
      await each?.({ runner, params, id, image, roll });
      groups.push(group);
    }
    const batch = assembleGrpoBatch(groups, H, c.grpo.advantageMode === 'dense');
    const flow = batch.flow!;
    const out = await trainer.grpoForward({ ...batch, flow, refMean: await runner.referenceMean(params, { ...batch, flow }) }, grpoHyper(c));
    return { batch, out };
  } finally {
    await runner.release();
    await trainer.release();
  }
}

/** A tiny flow-family run (12 px procedural scenes, a 4-step sampler, 3 x 2 groups) for the tests of the family. */
export function tinyFlowConfig(extra: Record<string, unknown> = {}, mode: 'scalar' | 'dense' = 'scalar'): RunConfig {
  return parseConfig({
    data: { size: 12, source: { kind: 'procedural', count: 16 } },
    model: { family: 'flow', arch: 'resnet', width: 4, depth: 1 },
    flow: { steps: 4, evalSteps: 3, shift: 1, timeFrequencies: 2, timeWidth: 4, sde: { window: { size: 1, start: 'random' } } },
    grpo: { groupSize: 3, samplesPerBatch: 2, steps: 2, advantageMode: mode, beta: 0.01 },
    sft: { steps: 2, batchSize: 2 },
    reward: { expression: 'ssim', weights: {} },
    ...extra,
  });
}
