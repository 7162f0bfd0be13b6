// The two ways the policy graphs are driven: PolicyRunner samples actions (rollout workers, evaluation),
// PolicyTrainer computes losses and gradients and applies AdamW (the learner). Both take parameters as
// feeds, so a new policy version is just a new TensorMap: no session is rebuilt.
import type { RunConfig } from '../config/index.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { GraphSession, type Device, type Feeds } from '../graph/runtime.ts';
import { AdamW, adamWOptionsFromConfig, type AdamWState, type StepResult } from '../optim/adamw.ts';
import { grpoModel, policyModel, resolutionOf, rewardBackpropModel, sftModel } from './bundle.ts';
import type { Resolution } from './graphs.ts';
import { gradientsFrom, paramFeeds, scalarFeed } from './feeds.ts';

export interface PolicyOutputs {
  mean: Float32Array;
  action: Float32Array;
  logp: Float32Array;
  /** Per-element log-density [n,3,H,W] (dense advantages need it as the behaviour log-probability). */
  logpMap: Float32Array;
}

export class PolicyRunner {
  private constructor(
    private readonly session: GraphSession,
    readonly height: number,
    readonly width: number,
  ) {}

  /** `resolution`: another image size than the training one (the policy is fully convolutional). */
  static async create(config: RunConfig, device: Device = 'cpu', resolution: Resolution = resolutionOf(config)): Promise<PolicyRunner> {
    const r = resolution;
    return new PolicyRunner(await GraphSession.create(policyModel(config, r), { device }), r.height, r.width);
  }

  /** Runs n images [n,3,H,W] with noise [n,3,H,W] under `params`. */
  async run(params: TensorMap, images: Float32Array, noise: Float32Array, n: number): Promise<PolicyOutputs> {
    const dims = [n, 3, this.height, this.width];
    const out = await this.session.run({ ...paramFeeds(params), image: { data: images, dims }, noise: { data: noise, dims } });
    return { mean: out.mean.data, action: out.action.data, logp: out.logp.data, logpMap: out.logp_map.data };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

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

export class PolicyTrainer {
  private sft?: GraphSession;
  private grpo?: GraphSession;
  private backprop?: GraphSession;
  readonly optimizer: AdamW;

  private constructor(
    private readonly config: RunConfig,
    readonly params: TensorMap,
    private readonly device: Device,
    optimizerState?: AdamWState,
  ) {
    this.optimizer = new AdamW(params, adamWOptionsFromConfig(config.optim));
    if (optimizerState) this.optimizer.importState(optimizerState);
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
    this.sft ??= await GraphSession.create(sftModel(this.config), { device: this.device });
    const dims = this.dims(n);
    const out = await this.sft.run({ ...paramFeeds(this.params), image: { data: images, dims }, target: { data: targets, dims } });
    const loss = out.loss.data[0];
    const step = Number.isFinite(loss) ? this.optimizer.step(gradientsFrom(out), { lr }) : { applied: false as const, reason: `non-finite loss ${loss}`, gradNorm: NaN };
    return { loss, step };
  }

  /** Runs the GRPO graph without updating (diagnostics, tests). */
  async grpoForward(b: GrpoInputs): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
    this.grpo ??= await GraphSession.create(grpoModel(this.config), { device: this.device });
    const dims = this.dims(b.n);
    const g = this.config.grpo;
    const dense = this.config.grpo.advantageMode === 'dense';
    const r = resolutionOf(this.config);
    const feeds: Feeds = {
      ...paramFeeds(this.params),
      image: { data: b.images, dims },
      action: { data: b.actions, dims },
      logp_old: { data: b.logpOld, dims: dense ? dims : [b.n] },
      advantage: { data: b.advantages, dims: [b.n] },
      ref_mean: { data: b.refMean, dims },
      clip_low: scalarFeed(g.clipLow),
      clip_high: scalarFeed(g.clipHigh),
      beta: scalarFeed(g.beta),
    };
    if (dense) {
      if (!b.advantageMap) throw new Error('dense GRPO batch without advantage maps');
      feeds.advantage_map = { data: b.advantageMap, dims: [b.n, 3, r.height - 10, r.width - 10] };
    }
    return this.grpo.run(feeds);
  }

  /** One clipped policy-gradient step. A non-finite loss or gradient is never applied. */
  async grpoStep(b: GrpoInputs): Promise<GrpoStepResult> {
    const out = await this.grpoForward(b);
    const loss = out.loss.data[0];
    const step = Number.isFinite(loss) ? this.optimizer.step(gradientsFrom(out)) : { applied: false as const, reason: `non-finite loss ${loss}`, gradNorm: NaN };
    return { step, loss, kl: out.kl.data[0], clipFraction: out.clip_fraction.data[0], logp: out.logp.data, ratio: out.ratio.data };
  }

  /**
   * One step of direct reward backprop toward the clean `references`: dSsim and dClipCos [n] are the reward's
   * partial derivatives at each image's current components (rewardPartials), so the step ascends the reward.
   */
  async rewardBackpropStep(images: Float32Array, references: Float32Array, n: number, dSsim: Float32Array, dClipCos: Float32Array): Promise<{ loss: number; step: StepResult; ssim: Float32Array; clipCos: Float32Array }> {
    this.backprop ??= await GraphSession.create(rewardBackpropModel(this.config), { device: this.device });
    const dims = this.dims(n);
    const out = await this.backprop.run({
      ...paramFeeds(this.params),
      image: { data: images, dims },
      reference: { data: references, dims },
      d_ssim: { data: dSsim, dims: [n] },
      d_clip_cos: { data: dClipCos, dims: [n] },
    });
    const loss = out.loss.data[0];
    const step = Number.isFinite(loss) ? this.optimizer.step(gradientsFrom(out)) : { applied: false as const, reason: `non-finite loss ${loss}`, gradNorm: NaN };
    return { loss, step, ssim: out.ssim.data, clipCos: out.clip_cos.data };
  }

  async release(): Promise<void> {
    await this.sft?.release();
    await this.grpo?.release();
    await this.backprop?.release();
  }
}
