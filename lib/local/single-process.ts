// The single-process loop: the distributed pipeline's executable specification. It runs the same functions
// with the same semantics as orchestrator + rollout worker + reward worker + learner, back to back in one
// process with no gRPC or NATS, so `sweep --engine single`, `compare` and the experiment train exactly what
// the pipeline trains (test/e2e/parity.test.ts: with maxStaleness 0 the pipeline's final checkpoint equals
// this loop's byte for byte, for scalar and dense advantages). Hop by hop:
//
//   SFT batch seq     sftCursors -> stackPairs -> sftUpdate at sftLearningRate(seq)       (learner)
//   GRPO start        startGrpoPhase: frozen KL reference, fresh AdamW                     (learner)
//   GRPO batch k      grpoCursors, groupSampleId                                           (coordinator)
//     per group       rolloutNoiseSeed -> PolicyRunner.run (G actions)                      (rollout worker)
//                     clamp01 -> RewardScorer.score (SSIM maps float32, as sent)          (reward worker)
//                     rewardsOf -> advantagesOf (variant, DAPO drop)                        (coordinator)
//                     assembleGrpoBatch                                                     (coordinator)
//                     grpoUpdate with grpoHyper (reference forward skipped at beta 0)       (learner)
//   checkpoint        trainingCheckpoint, as the learner publishes it                      (learner)
//
// The flow family (model.family = flow, docs/flow.md) takes the same hops with its own drivers:
// FlowRunner.rollout (the T-step sampler, its SDE window from the sample id) in place of PolicyRunner.run,
// the trajectories' trained steps carried per action in TrainableGroup.flowSteps, FlowTrainer's
// rectified-flow SFT step and flowGrpoUpdate over the trained steps.
//
// What it does not model: staleness (it is always on-policy, as the pipeline at maxStaleness 0), restarts,
// and leases. A batch whose groups were all dropped is recorded as the learner records it: a new version with
// the same parameters.
import type { RunConfig } from '../config/index.ts';
import { openRunDataset } from '../config/dataset.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import type { Sample } from '../data/dataset.ts';
import { cloneTensorMap } from '../checkpoint/tensors.ts';
import { configHash } from '../checkpoint/digest.ts';
import { encodeCheckpoint, type Checkpoint } from '../checkpoint/checkpoint.ts';
import { cosineLearningRate, sftLearningRate } from '../optim/schedule.ts';
import type { ParamEma } from '../optim/ema.ts';
import { grpoAverage } from '../grpo/weight-average.ts';
import { clamp01, stackPairs, toCHWFloat } from '../data/image.ts';
import { standardNormal } from '../data/random.ts';
import { compileRewardExpression, rewardConstants, rewardPartials } from '../grpo/reward-expression.ts';
import { advantagesOf, compileAlgorithm, grpoHyper, rewardsOf, startGrpoPhase } from '../grpo/algorithm.ts';
import { assembleGrpoBatch, type TrainableGroup } from '../grpo/batch.ts';
import { batchLayout, groupSampleId, grpoCursors, identityAction, rolloutNoiseSeed, sftCursors } from '../grpo/sampling.ts';
import { flowGrpoUpdate, grpoUpdate } from '../grpo/update.ts';
import { checkNetworkOf, initialParamsOf, policySpecOf } from '../models/bundle.ts';
import { FlowRunner, FlowTrainer, isFlowFamily } from '../flow/family.ts';
import { baseDigestOf } from '../models/policy.ts';
import { ssimMapSize } from '../models/ssim.ts';
import { PolicyRunner } from '../models/runner.ts';
import { PolicyTrainer } from '../models/trainer.ts';
import { RewardScorer } from '../models/scorer.ts';
import { trainingCheckpoint } from '../worker/checkpoints.ts';
import { trace, traceRole } from '../log/trace.ts';
import { machineBusySeconds } from './machine-cpu.ts';

export interface SingleProcessResult {
  params: TensorMap;
  /** Steps taken in each phase (fewer than configured when a time budget ended it). */
  sftSteps: number;
  grpoSteps: number;
  /** Parameters at the end of the warm start (GRPO's reference). */
  sftParams: TensorMap;
  sftSeconds: number;
  grpoSeconds: number;
  /** CPU time (user + system, onnxruntime's threads included) of this process over grpoSeconds. */
  grpoCpuSeconds: number;
  /** Busy CPU time of the whole machine over grpoSeconds (lib/local/machine-cpu.ts); undefined without /proc/stat. */
  grpoMachineCpuSeconds?: number;
  /** GRPO actions (rollout + score + train) per second. */
  actionsPerSecond: number;
  /** Seconds of each phase on the budget clock (opts.budgetClock; equal to the wall seconds for 'wall'). */
  sftClockSeconds: number;
  grpoClockSeconds: number;
  rewards: number[];
  /** The last checkpoint, exactly as the learner would publish it after the same batches. */
  checkpoint: Checkpoint;
}

/**
 * The clock a training budget is measured on. 'wall': elapsed time. 'cpu': the process's CPU time (user +
 * system, process.cpuUsage, which counts onnxruntime's worker threads too): on a machine shared with other
 * work, wall time charges an arm for the others' load, CPU time charges it for its own work only.
 */
export type BudgetClock = 'wall' | 'cpu';

/** Milliseconds on `clock` since this call. */
export function startClock(clock: BudgetClock = 'wall'): () => number {
  if (clock === 'cpu') {
    const c0 = process.cpuUsage();
    return () => { const c = process.cpuUsage(c0); return (c.user + c.system) / 1000; };
  }
  if (clock !== 'wall') throw new Error(`budget clock: '${String(clock)}' is neither 'wall' nor 'cpu'`);
  const t0 = performance.now();
  return () => performance.now() - t0;
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
  /**
   * Per channel (R, G, B), the mean over the step's actions and pixels of clamp01(action) - clean: a colour cast
   * shows here as one channel drifting from 0 while the reward falls (round 33: dense Flow-GRPO's yellow cast).
   */
  channelError: [number, number, number];
  /** The update's global gradient norm before the optimizer's clip (optim.maxGradNorm). */
  gradNorm: number;
  /** Dense advantages: per channel, the mean of the step's SSIM maps (which channel's SSIM moves). */
  channelSsim?: [number, number, number];
}

/**
 * Per channel, the sum over the n images [n,3,h,w] of mean_pixels(values - reference) (reference absent: 0).
 * Summed over images, not averaged, so a step adds its groups' sums and divides once.
 */
export function channelMeanSums(values: Float32Array, n: number, reference?: Float32Array): [number, number, number] {
  const per = values.length / (3 * n);
  const out: [number, number, number] = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      let s = 0;
      const o = (i * 3 + c) * per;
      if (reference) for (let j = 0; j < per; j++) s += values[o + j]! - reference[o + j]!;
      else for (let j = 0; j < per; j++) s += values[o + j]!;
      out[c] += s / per;
    }
  }
  return out;
}

/** The given dataset samples as [n,3,H,W] corrupted and clean batches. */
async function pairsAt(dataset: { sample(i: number): Promise<Sample> }, cursors: readonly number[]): Promise<{ corrupted: Float32Array; clean: Float32Array }> {
  const samples: Sample[] = [];
  for (const c of cursors) samples.push(await dataset.sample(c));
  return stackPairs(samples);
}

const addInto = (acc: number[], add: readonly number[]) => add.forEach((x, i) => { acc[i]! += x; });

const range = (first: number, n: number) => Array.from({ length: n }, (_, i) => first + i);

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
    /** What budgetSeconds counts: wall time (default) or this process's CPU time. */
    budgetClock?: BudgetClock;
    /**
     * `params` already hold this config's warm start (saved from an earlier run with the same SFT settings and
     * seed): the SFT steps are not repeated. The GRPO data cursors still count them, so the GRPO phase trains
     * exactly what the full run trains (scripts/demo-probe.ts --warm-start; test/local/single-process.test.ts).
     */
    sftDone?: boolean;
  } = {},
): Promise<SingleProcessResult> {
  const algo = compileAlgorithm(config);
  const H = config.data.size;
  const pix = 3 * H * H;
  await checkNetworkOf(config); // an imported network's start-up check (a SetupError), before it is used
  const dataset = await openRunDataset(config, 'train');
  const params = opts.params ?? initialParamsOf(config);
  const flow = isFlowFamily(config);
  const trainer = flow ? FlowTrainer.create(config, params) : PolicyTrainer.create(config, params);
  const log = opts.log ?? (() => undefined);
  const onStep = opts.onStep;
  const runId = config.run.id;
  const hash = configHash(config);
  // The learner's bookkeeping: every batch seq is handled once, an applied one makes a new version; and the
  // checkpoint it would publish.
  // An empty batch (every group dropped) makes a version but no optimizer step.
  let seq = 0;
  let version = 0;
  let step = 0;
  let lastBatchId: string | null = null;
  const handled = (applied: boolean, trained = applied) => {
    seq++;
    if (!applied) return;
    version++;
    if (trained) step++;
    lastBatchId = `${runId}-b${seq}`;
  };
  const checkpointNow = (ref?: { version: number; digest: string }) => trainingCheckpoint({
    runId, configHash: hash, batchLayout: batchLayout(config), version, step, lastBatchSeq: seq, lastBatchId,
    ...(ref ? { refVersion: ref.version, refDigest: ref.digest } : {}), baseDigest: baseDigestOf(policySpecOf(config)),
  }, params);

  const budgetMs = (opts.budgetSeconds ?? Infinity) * 1000;
  const t0 = performance.now();
  const sftClock = startClock(opts.budgetClock);
  let sftSteps = 0;
  if (opts.sftDone) {
    if (!opts.params) throw new Error('runSingleProcess: sftDone needs params (the saved warm start)');
    for (; sftSteps < config.sft.steps; sftSteps++) handled(true);
  }
  for (let s = 1; !opts.sftDone && s <= config.sft.steps && sftClock() < budgetMs; s++, sftSteps++) {
    const { corrupted: images, clean: targets } = await pairsAt(dataset, sftCursors(config, s));
    // Under a time budget the cosine schedule runs over the budget's seconds instead of a step count.
    const lr = budgetMs < Infinity && config.sft.schedule === 'cosine'
      ? cosineLearningRate(config.sft.lr, sftClock() / budgetMs)
      : sftLearningRate(config.sft, s);
    const r = await trainer.sftStep(images, targets, config.sft.batchSize, lr);
    handled(r.step.applied);
    if (s % 100 === 0) log(`[sft] ${s}/${config.sft.steps} loss ${r.loss.toFixed(5)}`);
  }
  const sftSeconds = (performance.now() - t0) / 1000;
  const sftClockSeconds = sftClock() / 1000;
  // sft.ema (flow family): the warm start is the weights' moving average
  if (trainer instanceof FlowTrainer && sftSteps > 0 && !opts.sftDone) trainer.finishSft();
  const sftParams = cloneTensorMap(params);

  const g = config.grpo;
  const G = g.groupSize;
  const dense = algo.variant === 'dense';
  const mapLen = 3 * ssimMapSize(H) ** 2;
  const hyper = grpoHyper(config);
  const runner = flow ? undefined : await PolicyRunner.create(config);
  const flowRunner = flow ? await FlowRunner.create(config) : undefined;
  const scorer = new RewardScorer(config.reward);
  let reference: { params: TensorMap; version: number; digest: string } | undefined;
  let average: ParamEma | undefined;
  const rewards: number[] = [];
  traceRole('single');
  const t1 = performance.now();
  const grpoClock = startClock(opts.budgetClock);
  const grpoCpu = startClock('cpu');
  const machine0 = machineBusySeconds();
  let grpoSteps = 0;
  // grpo.identityAnchor > 0: the identity member is scored after each group's G actions (S candidates)
  const withIdentity = algo.identityAnchor > 0;
  const S = withIdentity ? G + 1 : G;
  for (let k = 0; k < g.steps && grpoClock() < budgetMs; k++, grpoSteps++) {
    trace('open_batch', { k, seq: seq + 1 });
    const kept: TrainableGroup[] = [];
    const channelError: [number, number, number] = [0, 0, 0];
    const channelSsim: [number, number, number] = [0, 0, 0];
    const stepComponents: Array<Record<string, number>> = [];
    for (const cursor of grpoCursors(config, k)) {
      const smp = await dataset.sample(cursor);
      const sampleId = groupSampleId(cursor, smp.id);
      const image = toCHWFloat(smp.corrupted);
      const clean = toCHWFloat(smp.clean);
      // rollout worker: the group's G actions from their seeded noise
      const images = new Float32Array(G * pix);
      const noise = new Float32Array(G * pix);
      const seeds = range(0, G).map((a) => rolloutNoiseSeed(config.run.seed, sampleId, a));
      for (let a = 0; a < G; a++) {
        images.set(image, a * pix);
        if (runner) noise.set(standardNormal(pix, seeds[a]!), a * pix);
      }
      // the reward worker's references: the clean image once per candidate
      const references = new Float32Array(S * pix);
      for (let a = 0; a < S; a++) references.set(clean, a * pix);
      trace('policy_start', { n: G });
      const roll = runner
        ? await runner.run(params, images, noise, G)
        : await flowRunner!.rollout(params, sampleId, image, seeds, dense).then((f) => ({ action: f.images, logp: new Float32Array(G), logpMap: new Float32Array(0), flowSteps: f.steps }));
      trace('policy_end', { n: G });
      // reward worker: the clamped actions (and, grpo.identityAnchor > 0, the identity member after them) scored
      // against the clean image (the maps travel as float32, as computed)
      const candidates = withIdentity ? new Float32Array(S * pix) : roll.action;
      if (withIdentity) {
        candidates.set(roll.action);
        candidates.set(identityAction(config, sampleId, image), G * pix);
      }
      trace('score_start', { n: S });
      const clamped = clamp01(candidates);
      const sc = await scorer.score({ candidates: clamped, references, n: S, height: H, width: H }, dense);
      trace('score_end', { n: S });
      addInto(channelError, channelMeanSums(clamped.subarray(0, G * pix), G, references.subarray(0, G * pix)));
      if (dense) addInto(channelSsim, channelMeanSums(sc.ssim_map!.subarray(0, G * mapLen), G));
      const components = range(0, G).map((a) => ({ ssim: sc.ssim[a]!, clip_cos: sc.clip_cos[a]! }));
      stepComponents.push(...components);
      // coordinator: rewards, advantages, the group kept or dropped
      const groupRewards = rewardsOf(algo, components);
      rewards.push(...groupRewards);
      const maps = dense ? sc.ssim_map! : undefined;
      const idComponents = withIdentity ? { ssim: sc.ssim[G]!, clip_cos: sc.clip_cos[G]! } : undefined;
      const outcome = advantagesOf(algo, {
        components, rewards: groupRewards,
        ...(maps ? { ssimMaps: range(0, G).map((a) => maps.subarray(a * mapLen, (a + 1) * mapLen)) } : {}),
        ...(idComponents ? { identity: { components: idComponents, reward: rewardsOf(algo, [idComponents])[0]!, ...(maps ? { ssimMap: maps.subarray(G * mapLen, S * mapLen) } : {}) } } : {}),
      });
      if (!outcome.kept) continue;
      const slice = (t: Float32Array, a: number) => t.slice(a * pix, (a + 1) * pix);
      kept.push({
        sampleId, image,
        actions: range(0, G).map((a) => slice(roll.action, a)),
        logps: Array.from(roll.logp),
        versions: range(0, G).map(() => version),
        ...(dense && runner ? { logpMaps: range(0, G).map((a) => slice(roll.logpMap, a)) } : {}),
        ...('flowSteps' in roll ? { flowSteps: roll.flowSteps } : {}),
        rewards: groupRewards, components,
        advantages: outcome.advantages,
        ...(outcome.advantageMaps ? { advantageMaps: outcome.advantageMaps } : {}),
        ...(outcome.identity ? { identity: outcome.identity } : {}),
      });
    }
    if (kept.length === 0) {
      // As the learner records an empty batch: version + 1, parameters unchanged, no reference taken yet.
      handled(true, false);
      log(`[grpo] batch ${k + 1}: every group was dropped (zero variance); recorded as v${version} with the parameters unchanged`);
      continue;
    }
    if (!reference) {
      // The version GRPO starts from is the reference (the learner takes it at the first batch it trains); its
      // checkpoint was published before.
      const digest = `sha256:${encodeCheckpoint(checkpointNow()).digest}`;
      reference = { params: startGrpoPhase(params, trainer.optimizer), version, digest };
      average = grpoAverage(config, params);
    }
    // learner
    const batch = assembleGrpoBatch(kept, H, dense);
    trace('train_start', { seq: seq + 1 });
    const ref = reference;
    const res = trainer instanceof FlowTrainer
      ? await flowGrpoUpdate(trainer, { params: ref.params, runner: async () => flowRunner! }, { ...batch, flow: batch.flow! }, hyper)
      : await grpoUpdate(trainer, { params: ref.params, runner: async () => runner! }, batch, hyper);
    handled(res.step.applied);
    if (res.step.applied) average?.update(params);
    trace('train_end', { seq });
    trace('persist_end', { seq }); // the batch is done: bench/pipeline-trace.ts ends the phase at the last one
    const n = stepComponents.length;
    const stepReward = rewards.slice(-n).reduce((s, x) => s + x, 0) / n;
    const meanOf = (f: (c: Record<string, number>) => number) => stepComponents.reduce((s, c) => s + f(c), 0) / n;
    const perAction = (v: [number, number, number]) => v.map((x) => x / n) as [number, number, number];
    const colour = { channelError: perAction(channelError), ...(dense ? { channelSsim: perAction(channelSsim) } : {}) };
    onStep?.({ step: k + 1, reward: stepReward, components: { ssim: meanOf((c) => c.ssim!), clip_cos: meanOf((c) => c.clip_cos!) }, loss: res.loss, kl: res.kl, clipFraction: res.clipFraction, gradNorm: res.step.gradNorm, ...colour });
    if ((k + 1) % 10 === 0) {
      // with the identity member: the share of its advantages (scalar part + map mean) above 0, and their mean;
      // summed only for the steps that log it
      const ids = kept.flatMap((gr) => (gr.identity ? [gr.identity.advantage + (gr.identity.map ? gr.identity.map.reduce((a, x) => a + x, 0) / gr.identity.map.length : 0)] : []));
      const idNote = ids.length ? ` identity A>0 ${ids.filter((a) => a > 0).length}/${ids.length} mean ${(ids.reduce((a, x) => a + x, 0) / ids.length).toFixed(2)}` : '';
      const rgb = (v: number[]) => v.map((x) => (x >= 0 ? '+' : '') + x.toFixed(4)).join('/');
      log(`[grpo] ${k + 1}/${g.steps} reward ${stepReward.toFixed(4)} kl ${res.kl.toExponential(2)} clip ${res.clipFraction.toFixed(3)} grad ${res.step.gradNorm.toExponential(2)} rgb error ${rgb(colour.channelError)}${colour.channelSsim ? ` rgb ssim ${colour.channelSsim.map((x) => x.toFixed(4)).join('/')}` : ''}${idNote}`);
    }
  }
  // grpo.ema: the last GRPO version publishes the average (lib/grpo/weight-average.ts; the learner at seq
  // sft.steps + grpo.steps, the last batch; here also when a time budget ends the phase early).
  average?.copyTo(params);
  const grpoSeconds = (performance.now() - t1) / 1000;
  const grpoCpuSeconds = grpoCpu() / 1000;
  const machine1 = machineBusySeconds();
  const grpoMachineCpuSeconds = machine0 !== undefined && machine1 !== undefined ? machine1 - machine0 : undefined;
  const grpoClockSeconds = grpoClock() / 1000;
  const checkpoint = checkpointNow(reference);
  await runner?.release();
  await flowRunner?.release();
  await scorer.close();
  await trainer.release();
  const actions = grpoSteps * g.samplesPerBatch * G;
  return { params, sftParams, sftSteps, grpoSteps, sftSeconds, grpoSeconds, grpoCpuSeconds, ...(grpoMachineCpuSeconds !== undefined ? { grpoMachineCpuSeconds } : {}), actionsPerSecond: grpoSeconds > 0 ? actions / grpoSeconds : 0, sftClockSeconds, grpoClockSeconds, rewards: perStep(rewards, g.samplesPerBatch * G), checkpoint };
}

/** Mean reward per GRPO step (rewards holds every action's, samplesPerBatch x groupSize per step). */
function perStep(rewards: number[], perBatch: number): number[] {
  return range(0, Math.ceil(rewards.length / perBatch)).map((k) => {
    const xs = rewards.slice(k * perBatch, (k + 1) * perBatch);
    return xs.reduce((s, x) => s + x, 0) / xs.length;
  });
}

/**
 * Direct reward backprop from `params` for `steps` steps: the upper reference GRPO is compared with
 * (lib/experiments/compare.ts), not a training mode of the pipeline. Each step takes sft.batchSize images from
 * where GRPO would start reading, scores the current policy mean to get the reward expression's partial
 * derivatives per image, then ascends the reward through the differentiated reward graph with the RL
 * stage's optimizer settings (optim.*). The scoring pass is part of the method's cost, as it would be in
 * any implementation that honours an arbitrary reward expression.
 */
export async function runRewardBackprop(
  config: RunConfig,
  opts: { params: TensorMap; steps: number; log?: (l: string) => void; budgetSeconds?: number; budgetClock?: BudgetClock },
): Promise<{ params: TensorMap; steps: number; seconds: number; clockSeconds: number; rewards: number[] }> {
  if (isFlowFamily(config)) throw new Error('reward backprop: defined for model.family gaussian only (the flow family samples through T steps)');
  const H = config.data.size;
  const pix = 3 * H * H;
  await checkNetworkOf(config); // an imported network's start-up check (a SetupError), before it is used
  const dataset = await openRunDataset(config, 'train');
  const params = opts.params;
  const trainer = PolicyTrainer.create(config, params);
  const runner = await PolicyRunner.create(config);
  const scorer = new RewardScorer(config.reward);
  const reward = compileRewardExpression(config.reward.expression, rewardConstants(config.reward));
  const B = config.sft.batchSize;
  const zeros = new Float32Array(B * pix);
  const rewards: number[] = [];
  const budgetMs = (opts.budgetSeconds ?? Infinity) * 1000;
  const t0 = performance.now();
  const clock = startClock(opts.budgetClock);
  let k = 0;
  for (; k < opts.steps && clock() < budgetMs; k++) {
    const { corrupted: images, clean } = await pairsAt(dataset, range(config.sft.steps * B + k * B, B));
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
  const clockSeconds = clock() / 1000;
  await runner.release();
  await scorer.close();
  await trainer.release();
  return { params, steps: k, seconds, clockSeconds, rewards };
}
