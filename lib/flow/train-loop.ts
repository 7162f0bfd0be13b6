// A research loop over the flow family's core: Stage I (the rectified-flow loss), then GRPO steps of
// SDE-window rollouts -> SSIM reward -> group advantages (lib/grpo/algorithm.ts) -> the Flow-GRPO graph over
// the trained steps, with ODE evaluation (and a sweep of step counts) before and after. What the pipeline
// trains is lib/local/single-process.ts with model.family = flow (docs/flow.md, "Wiring").

import type { RunConfig } from '../config/index.ts';
import { openRunDataset } from '../config/dataset.ts';
import { type TensorMap } from '../checkpoint/tensors.ts';
import { clamp01, stackPairs } from '../data/image.ts';
import type { Dataset, Sample } from '../data/dataset.ts';
import { hashSeed, rng, standardNormal } from '../data/random.ts';
import { advantagesOf, compileAlgorithm, grpoHyper, rewardsOf, startGrpoPhase } from '../grpo/algorithm.ts';
import { serialize } from '../graph/onnx.ts';
import { GraphSession } from '../graph/runtime.ts';
import { gradientsFrom, paramFeeds } from '../models/feeds.ts';
import { RewardScorer } from '../models/scorer.ts';
import { SSIM_WINDOW } from '../models/ssim.ts';
import { AdamW } from '../optim/adamw.ts';
import { buildFlowGrpoGraph, buildFlowSftGraph, buildFlowStepGraph } from './graphs.ts';
import { flowSpaceOf } from './config.ts';
import { encodeState, flowNoiseSeed, flowTrainingRows, hyperFeeds, referenceMeans, rolloutFlow, toFlowSpace, windowDraw } from './rollout.ts';
import { odePlan, rolloutPlan, type FlowSamplerSpec } from './sampler.ts';
import { initVelocityParams, type VelocitySpec } from './velocity.ts';

export interface FlowLoopSettings {
  model: VelocitySpec;
  sampler: FlowSamplerSpec;
  /** ODE steps of evaluation. */
  evalSteps: number;
  /** Further ODE step counts to evaluate after each stage (how the step count moves SSIM). */
  evalStepsSweep?: number[];
  /** Evaluation images (from the dataset's eval split). */
  evalItems: number;
  sft: { steps: number; batchSize: number; lr: number };
  /**
   * Steps, groups per update and learning rate of stage II. What a step trains (group size, clip, beta,
   * advantage variant) is the run's `grpo` section, through lib/grpo/algorithm.ts like every loop.
   */
  grpo: { steps: number; samplesPerBatch: number; lr: number };
}

export interface FlowGrpoStepLog {
  step: number;
  /** Mean SSIM of the step's rollouts (the reward). */
  reward: number;
  loss: number;
  kl: number;
  clipFraction: number;
}

export interface FlowLoopResult {
  params: TensorMap;
  sftLoss: number[];
  grpo: FlowGrpoStepLog[];
  /** Mean SSIM on the eval images: the corrupted input, ODE samples after SFT and after GRPO. */
  evalSsim: { corrupted: number; afterSft: number; afterGrpo: number };
  /** The same evaluation at each of evalStepsSweep's step counts, and with the training rollouts' own plan. */
  evalSweep: Array<{ sampler: string; afterSft: number; afterGrpo: number }>;
}

async function pairsAt(dataset: Dataset, first: number, n: number): Promise<{ corrupted: Float32Array; clean: Float32Array; ids: string[] }> {
  const samples: Sample[] = [];
  for (let i = 0; i < n; i++) samples.push(await dataset.sample(first + i));
  return { ...stackPairs(samples), ids: samples.map((s, i) => `c${first + i}:${s.id}`) };
}

function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/** Running mean of gradient maps (one per group): `acc` holds the mean of the first count - 1, `add` is the count-th. */
function averageInto(acc: TensorMap, add: TensorMap, count: number): void {
  for (const [k, g] of add) {
    const a = acc.get(k)!.data;
    for (let i = 0; i < a.length; i++) a[i] += (g.data[i] - a[i]) / count;
  }
}

export async function runFlowLoop(config: RunConfig, s: FlowLoopSettings, log: (l: string) => void = () => undefined): Promise<FlowLoopResult> {
  const H = config.data.size;
  const r = { height: H, width: H };
  const pix = 3 * H * H;
  const seed = config.run.seed;
  // no network check (checkNetworkOf): the loop trains its built-in velocity network s.model, never model.network
  // The flow's state space is the run's (flow.space, flow.scale); the network must read its state the same way.
  if ((s.model.space ?? 'image') !== config.flow.space) {
    throw new Error(`flow loop: the settings' model.space (${s.model.space ?? 'image'}) disagrees with flow.space (${config.flow.space}); set both the same`);
  }
  const space = flowSpaceOf(config.flow);
  const train = await openRunDataset(config, 'train');
  const evalSet = await openRunDataset(config, 'eval');
  const scorer = new RewardScorer(config.reward);
  const step = await GraphSession.create(serialize(buildFlowStepGraph(s.model, r, s.sampler.type)));
  const sft = await GraphSession.create(serialize(buildFlowSftGraph(s.model, r)));
  const grpo = await GraphSession.create(serialize(buildFlowGrpoGraph(s.model, r, s.sampler.type, config.grpo.advantageMode, config.flow.klForm)));
  const params = initVelocityParams(s.model, seed);
  const startT = s.sampler.start === 'noise' ? 1 : s.sampler.startT;

  const evaluation = await pairsAt(evalSet, 0, s.evalItems);
  const ssimOf = async (candidates: Float32Array, n: number, references: Float32Array): Promise<Float32Array> =>
    (await scorer.score({ candidates: clamp01(candidates), references, n, height: H, width: H })).ssim;
  const evaluate = async (plan = odePlan(s.evalSteps, s.sampler.shift, startT)): Promise<number> => {
    const seeds = evaluation.ids.map((id) => flowNoiseSeed(seed, `eval:${id}`, 0));
    const roll = await rolloutFlow(step, params, { corrupted: evaluation.corrupted, n: s.evalItems, resolution: r, seeds }, plan, { start: s.sampler.start, space });
    return mean(await ssimOf(roll.image, s.evalItems, evaluation.clean));
  };
  const sweepPlans = [
    ...(s.evalStepsSweep ?? []).map((k) => ({ sampler: `ode ${k} steps`, plan: odePlan(k, s.sampler.shift, startT) })),
    ...(s.evalStepsSweep?.length ? [{ sampler: `training plan (${s.sampler.type}, ${s.sampler.steps} steps, window ${s.sampler.window.size})`, plan: rolloutPlan(s.sampler, windowDraw(seed, 'eval')) }] : []),
  ];
  const sweep = async (): Promise<number[]> => {
    const out: number[] = [];
    for (const p of sweepPlans) out.push(await evaluate(p.plan));
    return out;
  };
  const corruptedSsim = mean(await ssimOf(evaluation.corrupted, s.evalItems, evaluation.clean));

  // Stage I: the rectified-flow loss over uniform t in (0, 1].
  const sftOpt = new AdamW(params, { lr: s.sft.lr });
  const sftLoss: number[] = [];
  const B = s.sft.batchSize;
  for (let k = 0; k < s.sft.steps; k++) {
    const { corrupted, clean } = await pairsAt(train, k * B, B);
    const draw = rng(hashSeed(seed, 'flow-sft', k));
    const t = Float32Array.from({ length: B }, () => 1 - draw.float());
    const dims = [B, 3, H, H];
    const out = await sft.run({
      ...paramFeeds(params),
      x0: { data: encodeState(space, clean, corrupted), dims },
      y: { data: toFlowSpace(corrupted), dims },
      eps: { data: standardNormal(B * pix, hashSeed(seed, 'flow-sft-noise', k)), dims },
      t: { data: t, dims: [B] },
    });
    sftOpt.step(gradientsFrom(out));
    sftLoss.push(out.loss.data[0]);
    if ((k + 1) % 50 === 0) log(`[flow sft] ${k + 1}/${s.sft.steps} loss ${mean(sftLoss.slice(-50)).toFixed(4)}`);
  }
  const afterSft = await evaluate();
  const sweepAfterSft = await sweep();
  log(`[flow eval] corrupted ${corruptedSsim.toFixed(4)}, after SFT ${afterSft.toFixed(4)} (ODE, ${s.evalSteps} steps)`);

  // Stage II: Flow-GRPO. The reward is the SSIM of the final image alone; the advantage variant, the step's
  // hyper-parameters and the phase start are the algorithm module's.
  const algo = compileAlgorithm({ reward: { ...config.reward, expression: 'ssim', weights: {} }, grpo: config.grpo });
  const hyper = grpoHyper({ grpo: config.grpo, optim: { ...config.optim, lr: s.grpo.lr } });
  const opt = new AdamW(params, { lr: hyper.lr });
  const ref = startGrpoPhase(params, opt);
  const G = algo.groupSize;
  const dense = algo.variant === 'dense';
  const mapLen = 3 * (H - SSIM_WINDOW + 1) * (H - SSIM_WINDOW + 1);
  const logs: FlowGrpoStepLog[] = [];
  for (let k = 0; k < s.grpo.steps; k++) {
    const first = s.sft.steps * B + k * s.grpo.samplesPerBatch;
    const batch = await pairsAt(train, first, s.grpo.samplesPerBatch);
    let grads: TensorMap | null = null;
    const rewards: number[] = [];
    let loss = 0;
    let kl = 0;
    let clipFraction = 0;
    let groups = 0;
    for (let j = 0; j < s.grpo.samplesPerBatch; j++) {
      const id = batch.ids[j];
      const corrupted = new Float32Array(G * pix);
      const clean = new Float32Array(G * pix);
      for (let a = 0; a < G; a++) {
        corrupted.set(batch.corrupted.subarray(j * pix, (j + 1) * pix), a * pix);
        clean.set(batch.clean.subarray(j * pix, (j + 1) * pix), a * pix);
      }
      const seeds = Array.from({ length: G }, (_, a) => flowNoiseSeed(seed, id, a));
      const plan = rolloutPlan(s.sampler, windowDraw(seed, id));
      const roll = await rolloutFlow(step, params, { corrupted, n: G, resolution: r, seeds }, plan, { start: s.sampler.start, keepLogpMap: dense, space });
      const sc = await scorer.score({ candidates: clamp01(roll.image), references: clean, n: G, height: H, width: H }, dense);
      const components = Array.from(sc.ssim, (v) => ({ ssim: v, clip_cos: 0 }));
      const rw = rewardsOf(algo, components);
      rewards.push(...rw);
      const ssimMaps = dense ? Array.from({ length: G }, (_, a) => sc.ssim_map!.subarray(a * mapLen, (a + 1) * mapLen)) : undefined;
      const outcome = advantagesOf(algo, { components, rewards: rw, ssimMaps });
      if (!outcome.kept) continue;
      const advantage = outcome.advantages;
      let advantageMap: Float32Array | undefined;
      if (outcome.advantageMaps) {
        advantageMap = new Float32Array(G * mapLen);
        outcome.advantageMaps.forEach((m, a) => advantageMap!.set(m, a * mapLen));
      }
      const rows = flowTrainingRows(roll.steps, corrupted, G, r, advantage, advantageMap);
      // The reference forward runs even at beta = 0, so that the logged KL is the drift from the warm start.
      const refMean = await referenceMeans(step, ref, rows);
      const out = await grpo.run({ ...paramFeeds(params), ...rows.feeds, ref_mean: refMean, ...hyperFeeds(hyper) });
      const g = gradientsFrom(out);
      groups++;
      if (grads) averageInto(grads, g, groups);
      else grads = g;
      loss += (out.loss.data[0] - loss) / groups;
      kl += (out.kl.data[0] - kl) / groups;
      clipFraction += (out.clip_fraction.data[0] - clipFraction) / groups;
    }
    if (grads) opt.step(grads);
    logs.push({ step: k + 1, reward: mean(rewards), loss, kl, clipFraction });
    if ((k + 1) % 10 === 0) log(`[flow grpo] ${k + 1}/${s.grpo.steps} reward ${mean(logs.slice(-10).map((l) => l.reward)).toFixed(4)} kl ${kl.toExponential(2)} clip ${clipFraction.toFixed(3)}`);
  }
  const afterGrpo = await evaluate();
  const sweepAfterGrpo = await sweep();
  log(`[flow eval] after GRPO ${afterGrpo.toFixed(4)} (ODE, ${s.evalSteps} steps)`);
  for (const sess of [step, sft, grpo]) await sess.release();
  await scorer.close();
  const evalSweep = sweepPlans.map((p, i) => ({ sampler: p.sampler, afterSft: sweepAfterSft[i], afterGrpo: sweepAfterGrpo[i] }));
  return { params, sftLoss, grpo: logs, evalSsim: { corrupted: corruptedSsim, afterSft, afterGrpo }, evalSweep };
}
