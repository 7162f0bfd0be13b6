// PolicyTrainer: the policy's training graphs (SFT, GRPO, reward backprop) driven with AdamW, for the
// learner and the single-process loop. Parameters are feeds and are updated in place; sampling actions is
// PolicyRunner's job (runner.ts).
import type { RunConfig } from '../config/index.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { GraphSession, type Feeds, type Fetches } from '../graph/runtime.ts';
import type { Device } from '../graph/device.ts';
import { AdamW, adamWOptionsFromConfig, type AdamWState, type StepResult } from '../optim/adamw.ts';
import { grpoModel, resolutionOf, rewardBackpropModel, sftModel } from './bundle.ts';
import { gradientsFrom, grpoHyperFeeds, paramFeeds, scalarFeed } from './feeds.ts';
import { ShardedForms } from './batch-shards.ts';
import { ssimMapSize } from './ssim.ts';
import { grpoHyper, type GrpoHyper } from '../grpo/algorithm.ts';
import type { GrpoScreen } from '../grpo/logp-check.ts';

export interface GrpoInputs {
  n: number;
  images: Float32Array;
  actions: Float32Array;
  /** Behaviour log-probabilities: [n] (scalar mode) or the per-element log-density [n,3,H,W] (dense). */
  logpOld: Float32Array;
  /** [n]: the advantage (scalar mode) or the scalar reward terms' part of it (dense). */
  advantages: Float32Array;
  /** Dense mode: the group-centred SSIM advantage maps [n,3,H-10,W-10]. */
  advantageMap?: Float32Array;
  /**
   * grpo.identityAnchor > 0: the identity member's advantage per row [n] (dense: its scalar part) and, dense,
   * its map [n,3,H-10,W-10]; nonzero only on the first row of each group (lib/grpo/batch.ts).
   */
  identityAdvantages?: Float32Array;
  identityAdvantageMap?: Float32Array;
  refMean: Float32Array;
}

export interface GrpoStepResult {
  step: StepResult;
  loss: number;
  kl: number;
  clipFraction: number;
  logp: Float32Array;
  ratio: Float32Array;
}

/** A trainer's AdamW over `params` (updated in place), with the run's settings; `state` resumes it. Both families' trainers. */
export function trainerOptimizer(config: RunConfig, params: TensorMap, state?: AdamWState): AdamW {
  const optimizer = new AdamW(params, adamWOptionsFromConfig(config.optim));
  if (state) optimizer.importState(state);
  return optimizer;
}

/** The optimizer step of a training graph's outputs (loss, grad.*); a non-finite loss is never applied. */
export function stepFromOutputs(optimizer: AdamW, out: Fetches, lr?: number): { loss: number; step: StepResult } {
  const loss = out.loss!.data[0]!;
  const step = Number.isFinite(loss) ? optimizer.step(gradientsFrom(out), lr === undefined ? undefined : { lr }) : { applied: false as const, reason: `non-finite loss ${loss}`, gradNorm: NaN };
  return { loss, step };
}

export class PolicyTrainer {
  private sft?: GraphSession;
  /**
   * The GRPO graph's sessions, run on two shards of the batch (batch-shards.ts), each shard in its form (row-forms.ts);
   * created by the first step of each form, or by prepareGrpo.
   */
  readonly grpo: ShardedForms;
  private backprop?: GraphSession;
  readonly optimizer: AdamW;

  private constructor(
    private readonly config: RunConfig,
    readonly params: TensorMap,
    private readonly device: Device,
    optimizerState?: AdamWState,
  ) {
    if (config.sft.ema > 0) throw new Error(`sft.ema=${config.sft.ema}: the SFT weight average is implemented for model.family=flow only; set sft.ema=0`);
    this.optimizer = trainerOptimizer(config, params, optimizerState);
    this.grpo = new ShardedForms((sharedRows) => grpoModel(config, { sharedRows }), device);
  }

  /** `params` is updated in place by every applied step. */
  static create(config: RunConfig, params: TensorMap, opts: { device?: Device; optimizerState?: AdamWState } = {}): PolicyTrainer {
    return new PolicyTrainer(config, params, opts.device ?? 'cpu', opts.optimizerState);
  }

  private dims(n: number): number[] {
    const r = resolutionOf(this.config);
    return [n, 3, r.height, r.width];
  }

  /** One supervised step toward the clean images (the warm start). */
  async sftStep(images: Float32Array, targets: Float32Array, n: number, lr = this.config.sft.lr): Promise<{ loss: number; step: StepResult }> {
    this.sft ??= await GraphSession.create(sftModel(this.config), { device: this.device, name: 'SFT step' });
    const dims = this.dims(n);
    const out = await this.sft.run({ ...paramFeeds(this.params), image: { data: images, dims }, target: { data: targets, dims } });
    return stepFromOutputs(this.optimizer, out, lr);
  }

  /**
   * Runs the GRPO graph without updating (diagnostics, tests): on the batch's two shards, their outputs combined
   * (batch-shards.ts). `hyper` defaults to the run's settings.
   */
  async grpoForward(b: GrpoInputs, hyper: Omit<GrpoHyper, 'lr'> = grpoHyper(this.config)): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
    const dims = this.dims(b.n);
    const dense = this.config.grpo.advantageMode === 'dense';
    const r = resolutionOf(this.config);
    // the batch-major feeds (cut into the batch's shards) and the rest, the same for every shard
    const common: Feeds = { ...paramFeeds(this.params), ...grpoHyperFeeds(hyper) };
    const feeds: Feeds = {
      image: { data: b.images, dims },
      action: { data: b.actions, dims },
      logp_old: { data: b.logpOld, dims: dense ? dims : [b.n] },
      advantage: { data: b.advantages, dims: [b.n] },
      ref_mean: { data: b.refMean, dims },
    };
    if (dense) {
      if (!b.advantageMap) throw new Error('dense GRPO batch without advantage maps');
      feeds.advantage_map = { data: b.advantageMap, dims: [b.n, 3, ssimMapSize(r.height), ssimMapSize(r.width)] };
    }
    if (this.config.grpo.identityAnchor > 0) {
      if (!b.identityAdvantages || (dense && !b.identityAdvantageMap)) throw new Error(`GRPO batch without the identity member's advantages (grpo.identityAnchor is ${this.config.grpo.identityAnchor})`);
      feeds.identity_advantage = { data: b.identityAdvantages, dims: [b.n] };
      if (dense) feeds.identity_advantage_map = { data: b.identityAdvantageMap!, dims: [b.n, 3, ssimMapSize(r.height), ssimMapSize(r.width)] };
      common.identity_weight = scalarFeed(hyper.identityAnchor ?? 0);
    }
    return this.grpo.run(b.n, feeds, common);
  }

  /**
   * Builds the GRPO graph and creates its session now rather than in the first GRPO step (the learner does this
   * after its last SFT batch, while the first GRPO batch is rolled out). Changes nothing the step computes.
   */
  async prepareGrpo(): Promise<void> {
    await this.grpo.prepare('shared'); // a GRPO batch's groups repeat their image
  }

  /**
   * One clipped policy-gradient step with the explicit hyper-parameters `hyper` (default: the run's settings).
   * A non-finite loss or gradient is never applied. `screen` (the learner's same-version check,
   * lib/grpo/logp-check.ts) sees the forward's logp and ratio first; fields it returns are run again before the step.
   */
  async grpoStep(b: GrpoInputs, hyper: GrpoHyper = grpoHyper(this.config), screen?: GrpoScreen): Promise<GrpoStepResult> {
    let out = await this.grpoForward(b, hyper);
    const replaced = screen?.({ logp: out.logp!.data, ratio: out.ratio!.data });
    if (replaced) out = await this.grpoForward({ ...b, ...replaced }, hyper);
    const { loss, step } = stepFromOutputs(this.optimizer, out, hyper.lr);
    return { step, loss, kl: out.kl.data[0], clipFraction: out.clip_fraction.data[0], logp: out.logp.data, ratio: out.ratio.data };
  }

  /**
   * One step of direct reward backprop toward the clean `references`: dSsim and dClipCos [n] are the reward's
   * partial derivatives at each image's current components (rewardPartials), so the step ascends the reward.
   */
  async rewardBackpropStep(images: Float32Array, references: Float32Array, n: number, dSsim: Float32Array, dClipCos: Float32Array): Promise<{ loss: number; step: StepResult; ssim: Float32Array; clipCos: Float32Array }> {
    this.backprop ??= await GraphSession.create(rewardBackpropModel(this.config), { device: this.device, name: 'reward backprop' });
    const dims = this.dims(n);
    const out = await this.backprop.run({
      ...paramFeeds(this.params),
      image: { data: images, dims },
      reference: { data: references, dims },
      d_ssim: { data: dSsim, dims: [n] },
      d_clip_cos: { data: dClipCos, dims: [n] },
    });
    const { loss, step } = stepFromOutputs(this.optimizer, out);
    return { loss, step, ssim: out.ssim.data, clipCos: out.clip_cos.data };
  }

  async release(): Promise<void> {
    await this.sft?.release();
    await this.grpo.release();
    await this.backprop?.release();
  }
}
