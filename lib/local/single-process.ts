// The same training as the distributed pipeline, in one process with no gRPC or NATS: the graphs run
// back to back (SFT steps, then GRPO steps of rollout -> score -> advantages -> update). It is the
// baseline the pipeline's throughput is measured against, and a quick way to try hyper-parameters.
import type { RunConfig } from '../config/index.ts';
import { openRunDataset } from '../config/dataset.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import type { Sample } from '../data/dataset.ts';
import { cloneTensorMap } from '../checkpoint/tensors.ts';
import { cosineLearningRate, sftLearningRate } from '../optim/schedule.ts';
import { clamp01, stackPairs, toCHWFloat } from '../data/image.ts';
import { hashSeed, standardNormal } from '../data/random.ts';
import { compileRewardExpression, decomposeForDense, rewardConstants, rewardPartials } from '../grpo/reward-expression.ts';
import { denseAdvantages, groupAdvantages } from '../grpo/advantages.ts';
import { initPolicyParams } from '../models/policy.ts';
import { policySpecOf } from '../models/bundle.ts';
import { PolicyRunner, PolicyTrainer } from '../models/trainer.ts';
import { RewardScorer } from '../models/scorer.ts';

export interface SingleProcessResult {
  params: TensorMap;
  /** Steps taken in each phase (fewer than configured when a time budget ended it). */
  sftSteps: number;
  grpoSteps: number;
  /** Parameters at the end of the warm start (GRPO's reference). */
  sftParams: TensorMap;
  sftSeconds: number;
  grpoSeconds: number;
  /** GRPO actions (rollout + score + train) per second. */
  actionsPerSecond: number;
  rewards: number[];
}

/** One GRPO step of the single-process loop, for callers that record curves (sweeps, experiments). */
export interface SingleProcessStep {
  step: number;
  /** Mean scalar reward and mean components of the step's actions. */
  reward: number;
  components: Record<string, number>;
  loss: number;
  kl: number;
  clipFraction: number;
}

/** Samples first..first+n-1 of the training stream as [n,3,H,W] corrupted and clean batches. */
async function pairsAt(dataset: { sample(i: number): Promise<Sample> }, first: number, n: number): Promise<{ corrupted: Float32Array; clean: Float32Array }> {
  const samples: Sample[] = [];
  for (let i = 0; i < n; i++) samples.push(await dataset.sample(first + i));
  return stackPairs(samples);
}

export async function runSingleProcess(
  config: RunConfig,
  opts: {
    params?: TensorMap;
    log?: (l: string) => void;
    onStep?: (s: SingleProcessStep) => void;
    /**
     * Ends each phase once its training time reaches this many seconds (equal-compute comparisons); a
     * cosine SFT schedule then runs over those seconds.
     */
    budgetSeconds?: number;
  } = {},
): Promise<SingleProcessResult> {
  const H = config.data.size;
  const pix = 3 * H * H;
  const dataset = await openRunDataset(config, 'train');
  const params = opts.params ?? initPolicyParams(policySpecOf(config), config.run.seed);
  const trainer = PolicyTrainer.create(config, params);
  const log = opts.log ?? (() => undefined);
  const onStep = opts.onStep;

  const budgetMs = (opts.budgetSeconds ?? Infinity) * 1000;
  const t0 = performance.now();
  const B = config.sft.batchSize;
  let sftSteps = 0;
  for (let s = 1; s <= config.sft.steps && performance.now() - t0 < budgetMs; s++, sftSteps++) {
    const { corrupted: images, clean: targets } = await pairsAt(dataset, (s - 1) * B, B);
    // Under a time budget the cosine schedule runs over the budget's seconds instead of a step count.
    const lr = budgetMs < Infinity && config.sft.schedule === 'cosine'
      ? cosineLearningRate(config.sft.lr, (performance.now() - t0) / budgetMs)
      : sftLearningRate(config.sft, s);
    const { loss } = await trainer.sftStep(images, targets, B, lr);
    if (s % 100 === 0) log(`[sft] ${s}/${config.sft.steps} loss ${loss.toFixed(5)}`);
  }
  const sftSeconds = (performance.now() - t0) / 1000;
  const sftParams = cloneTensorMap(params);

  const runner = await PolicyRunner.create(config);
  const refRunner = runner;
  const scorer = new RewardScorer(config.reward, config.reward.device);
  const reward = compileRewardExpression(config.reward.expression, rewardConstants(config.reward));
  const g = config.grpo;
  const dense = g.advantageMode === 'dense';
  const split = dense ? decomposeForDense(config.reward.expression, rewardConstants(config.reward)) : null;
  const mapLen = 3 * (H - 10) * (H - 10);
  const G = g.groupSize;
  const S = g.samplesPerBatch;
  const rewards: number[] = [];
  const t1 = performance.now();
  let grpoSteps = 0;
  for (let k = 0; k < g.steps && performance.now() - t1 < budgetMs; k++, grpoSteps++) {
    const n = S * G;
    const images = new Float32Array(n * pix);
    const clean = new Float32Array(n * pix);
    const noise = new Float32Array(n * pix);
    for (let j = 0; j < S; j++) {
      const cursor = config.sft.steps * B + k * S + j;
      const smp = await dataset.sample(cursor);
      const sampleId = `c${cursor}:${smp.id}`;
      const img = toCHWFloat(smp.corrupted);
      const cln = toCHWFloat(smp.clean);
      for (let a = 0; a < G; a++) {
        const i = j * G + a;
        images.set(img, i * pix);
        clean.set(cln, i * pix);
        noise.set(standardNormal(pix, hashSeed(config.run.seed, sampleId, a)), i * pix);
      }
    }
    const roll = await runner.run(params, images, noise, n);
    const candidates = clamp01(roll.action);
    const sc = await scorer.score({ candidates, references: clean, n, height: H, width: H }, dense);
    const comps = Array.from({ length: n }, (_, i) => ({ ssim: sc.ssim[i], clip_cos: sc.clip_cos[i] }));
    const r = comps.map((c) => reward.evaluate(c));
    rewards.push(r.reduce((s, x) => s + x, 0) / n);
    const adv = new Float32Array(n);
    const advMap = dense ? new Float32Array(n * mapLen) : undefined;
    const opts = { stdNormalize: g.stdNormalize, stdEps: g.stdEps, advClip: g.advantageClip, dropZeroVarianceGroups: false };
    for (let j = 0; j < S; j++) {
      const rg = r.slice(j * G, (j + 1) * G);
      if (dense) {
        const maps = Array.from({ length: G }, (_, a) => sc.ssim_map!.subarray((j * G + a) * mapLen, (j * G + a + 1) * mapLen));
        const d = denseAdvantages(maps, rg, comps.slice(j * G, (j + 1) * G).map((c) => split!.rest.evaluate(c)), split!.ssimWeight, opts);
        if ('maps' in d) {
          d.maps.forEach((m, a) => advMap!.set(m, (j * G + a) * mapLen));
          adv.set(d.scalar, j * G);
        }
      } else {
        const a = groupAdvantages(rg, opts);
        if ('advantages' in a) adv.set(a.advantages, j * G);
      }
    }
    const ref = await refRunner.run(sftParams, images, noise, n);
    const res = await trainer.grpoStep({ n, images, actions: roll.action, logpOld: dense ? roll.logpMap : roll.logp, advantages: adv, advantageMap: advMap, refMean: ref.mean });
    const meanOf = (f: (c: (typeof comps)[number]) => number) => comps.reduce((s, c) => s + f(c), 0) / n;
    onStep?.({ step: k + 1, reward: rewards[rewards.length - 1], components: { ssim: meanOf((c) => c.ssim), clip_cos: meanOf((c) => c.clip_cos) }, loss: res.loss, kl: res.kl, clipFraction: res.clipFraction });
    if ((k + 1) % 10 === 0) log(`[grpo] ${k + 1}/${g.steps} reward ${rewards[rewards.length - 1].toFixed(4)} kl ${res.kl.toExponential(2)} clip ${res.clipFraction.toFixed(3)}`);
  }
  const grpoSeconds = (performance.now() - t1) / 1000;
  await runner.release();
  await scorer.close();
  await trainer.release();
  return { params, sftParams, sftSteps, grpoSteps, sftSeconds, grpoSeconds, actionsPerSecond: grpoSeconds > 0 ? (grpoSteps * S * G) / grpoSeconds : 0, rewards };
}

/**
 * Direct reward backprop from `params` for `steps` steps: the upper reference GRPO is compared with
 * (lib/eval/compare.ts), not a training mode of the pipeline. Each step takes sft.batchSize images from
 * where GRPO would start reading, scores the current policy mean to get the reward expression's partial
 * derivatives per image, then ascends the reward through the differentiated reward graph with the RL
 * stage's optimizer settings (optim.*). The scoring pass is part of the method's cost, as it would be in
 * any implementation that honours an arbitrary reward expression.
 */
export async function runRewardBackprop(
  config: RunConfig,
  opts: { params: TensorMap; steps: number; log?: (l: string) => void; budgetSeconds?: number },
): Promise<{ params: TensorMap; steps: number; seconds: number; rewards: number[] }> {
  const H = config.data.size;
  const pix = 3 * H * H;
  const dataset = await openRunDataset(config, 'train');
  const params = opts.params;
  const trainer = PolicyTrainer.create(config, params);
  const runner = await PolicyRunner.create(config);
  const scorer = new RewardScorer(config.reward, config.reward.device);
  const reward = compileRewardExpression(config.reward.expression, rewardConstants(config.reward));
  const B = config.sft.batchSize;
  const zeros = new Float32Array(B * pix);
  const rewards: number[] = [];
  const budgetMs = (opts.budgetSeconds ?? Infinity) * 1000;
  const t0 = performance.now();
  let k = 0;
  for (; k < opts.steps && performance.now() - t0 < budgetMs; k++) {
    const { corrupted: images, clean } = await pairsAt(dataset, config.sft.steps * B + k * B, B);
    const { mean } = await runner.run(params, images, zeros, B);
    const candidates = clamp01(mean);
    const sc = await scorer.score({ candidates, references: clean, n: B, height: H, width: H }, false);
    const dSsim = new Float32Array(B);
    const dClip = new Float32Array(B);
    let total = 0;
    for (let i = 0; i < B; i++) {
      const c = { ssim: sc.ssim[i]!, clip_cos: sc.clip_cos[i]! };
      const d = rewardPartials(reward, c, ['ssim', 'clip_cos']);
      dSsim[i] = d.ssim!;
      dClip[i] = d.clip_cos!;
      total += reward.evaluate(c);
    }
    rewards.push(total / B);
    await trainer.rewardBackpropStep(images, clean, B, dSsim, dClip);
    if ((k + 1) % 10 === 0) opts.log?.(`[backprop] ${k + 1}/${opts.steps} reward ${rewards[rewards.length - 1]!.toFixed(4)}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  await runner.release();
  await scorer.close();
  await trainer.release();
  return { params, steps: k, seconds, rewards };
}
