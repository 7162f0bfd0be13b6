// The flow family as a policy of the pipeline (model.family = flow): its specs from the run configuration,
// the per-action trained-step records that travel from the rollout worker, the training rows the learner
// builds from them, and the two drivers the roles call in place of PolicyRunner / PolicyTrainer:
//
//   FlowRunner   rollout worker, evaluation: one group's T-step SDE-window rollout, the ODE evaluation
//   FlowTrainer  learner, single-process loop: the rectified-flow SFT step and the Flow-GRPO step
//
// Both build their graphs through lib/models/bundle.ts from the same config, so the learner's log-probs are
// the rollout worker's (one network definition, one step function: lib/flow/graphs.ts).
import type { RunConfig } from '../config/index.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { hashSeed, rng, standardNormal, type SeedPart } from '../data/random.ts';
import { GraphSession, type Feeds } from '../graph/runtime.ts';
import type { Device } from '../graph/device.ts';
import type { AdamW, AdamWState, StepResult } from '../optim/adamw.ts';
import { ParamEma, type AverageState } from '../optim/ema.ts';
import { paramFeeds } from '../models/feeds.ts';
import { stepFromOutputs, trainerOptimizer, type GrpoStepResult } from '../models/trainer.ts';
import { policyModel, grpoModel, resolutionOf, sftModel } from '../models/bundle.ts';
import { ssimMapSize } from '../models/ssim.ts';
import type { GrpoHyper } from '../grpo/algorithm.ts';
import type { GrpoScreen } from '../grpo/logp-check.ts';
import { flowSpaceOf, samplerSpecOf, velocitySpecOf } from './config.ts';
import { metricsByStep, type StepMetrics } from './metrics.ts';
import { encodeState, flowNoiseSeed, hyperFeeds, rolloutFlow, toFlowSpace, windowDraw } from './rollout.ts';
import { odePlan, rolloutPlan, type FlowSamplerSpec, type PlannedStep } from './sampler.ts';
import type { VelocitySpec } from './velocity.ts';
import type { Resolution } from '../models/graphs.ts';

type FlowRunConfig = Pick<RunConfig, 'model' | 'flow'>;

export function isFlowFamily(config: Pick<RunConfig, 'model'>): boolean {
  return config.model.family === 'flow';
}
export function flowSpecOf(config: FlowRunConfig): VelocitySpec {
  return velocitySpecOf(config.model, config.flow);
}
export function flowSamplerOf(config: FlowRunConfig): FlowSamplerSpec {
  return samplerSpecOf(config.flow);
}
/** The first timestep of every plan: 1 from noise, flow.startT from the corrupted image. */
export function flowStartT(config: FlowRunConfig): number {
  return config.flow.start === 'noise' ? 1 : config.flow.startT;
}
/**
 * The training rollout's plan for one sample id: its SDE window drawn from (run seed, sample id). The rollout worker
 * follows it, and the orchestrator checks a result's trained steps against it (orchestrator/results.ts).
 */
export function flowRolloutPlan(config: FlowRunConfig & Pick<RunConfig, 'run'>, sampleId: string): PlannedStep[] {
  return rolloutPlan(flowSamplerOf(config), windowDraw(config.run.seed, sampleId));
}
/** The deterministic evaluation (and export) plan: flow.evalSteps Euler steps. */
export function flowEvalPlan(config: FlowRunConfig, steps = config.flow.evalSteps): PlannedStep[] {
  return odePlan(steps, config.flow.shift, flowStartT(config));
}
/** What every report names: the family, the evaluation sampler and steps, and how it was trained. */
export function flowSamplerName(config: FlowRunConfig, evalSteps = config.flow.evalSteps): string {
  const f = config.flow;
  const w = f.sde.window;
  return `flow (ODE, ${evalSteps} steps; trained with ${f.sde.type} a=${f.sde.a}, ${f.steps} steps, window ${w.size} at ${w.start}${f.sde.lastStepSde ? ', last step SDE' : ''}${f.sde.trainLastStep ? ', last step trainable' : ''}; start ${f.start}${f.predict === 'residual' ? '; predicts a residual of the corrupted image' : ''}${f.space === 'residual' ? `; runs on the residual scaled by 1/${f.scale}` : ''}${f.inputGate ? '; input gated by 1 - t' : ''})`;
}

/** One trained step of one trajectory, as the rollout worker returns it (flow space, [3,H,W] tensors). */
export interface FlowStepRecord {
  index: number;
  t: number;
  tNext: number;
  a: number;
  xBefore: Float32Array;
  xAfter: Float32Array;
  logp: number;
  /** Dense advantages: the per-element log-density [3,H,W]. */
  logpMap?: Float32Array;
}

/**
 * A GRPO batch's training rows for the flow family: one per (action, trained step), action-major. The
 * batch-level images [N,3,H,W], advantages [N] and advantage maps [N,3,h,w] stay per action; `actionIndex`
 * maps each row to its action.
 */
export interface FlowRows {
  rows: number;
  actionIndex: Int32Array;
  stepIndex: Int32Array;
  t: Float32Array;
  tNext: Float32Array;
  a: Float32Array;
  /** [R,3,H,W] each. */
  x: Float32Array;
  xNext: Float32Array;
  /** [R] (scalar) or [R,3,H,W] (dense). */
  logpOld: Float32Array;
}

/** The rows of `records` (per action, its trained steps in order). */
export function flowRowsOf(records: readonly (readonly FlowStepRecord[])[], pix: number, dense: boolean): FlowRows {
  const R = records.reduce((s, r) => s + r.length, 0);
  const out: FlowRows = {
    rows: R, actionIndex: new Int32Array(R), stepIndex: new Int32Array(R),
    t: new Float32Array(R), tNext: new Float32Array(R), a: new Float32Array(R),
    x: new Float32Array(R * pix), xNext: new Float32Array(R * pix), logpOld: new Float32Array(dense ? R * pix : R),
  };
  let k = 0;
  records.forEach((steps, i) => {
    for (const s of steps) {
      out.actionIndex[k] = i;
      out.stepIndex[k] = s.index;
      out.t[k] = s.t;
      out.tNext[k] = s.tNext;
      out.a[k] = s.a;
      out.x.set(s.xBefore, k * pix);
      out.xNext.set(s.xAfter, k * pix);
      if (dense) {
        if (!s.logpMap) throw new Error(`flow rows: action ${i} step ${s.index} has no per-element log-density (dense advantages need it)`);
        out.logpOld.set(s.logpMap, k * pix);
      } else out.logpOld[k] = s.logp;
      k++;
    }
  });
  return out;
}

/** The Flow-GRPO graph's row inputs: the per-action tensors expanded onto the rows. */
export interface FlowGrpoInputs {
  n: number;
  /** [N,3,H,W] corrupted images in [0, 1]. */
  images: Float32Array;
  /** [N]; dense: the scalar part. */
  advantages: Float32Array;
  /** Dense: [N,3,h,w]. */
  advantageMap?: Float32Array;
  flow: FlowRows;
}

function rowFeeds(b: FlowGrpoInputs, height: number, width: number): Feeds {
  const pix = 3 * height * width;
  const f = b.flow;
  const R = f.rows;
  const dims = [R, 3, height, width];
  const y = new Float32Array(R * pix);
  const adv = new Float32Array(R);
  const h = ssimMapSize(height);
  const w = ssimMapSize(width);
  const mapLen = 3 * h * w;
  const maps = b.advantageMap ? new Float32Array(R * mapLen) : undefined;
  for (let k = 0; k < R; k++) {
    const i = f.actionIndex[k]!;
    if (!(i >= 0 && i < b.n)) throw new Error(`flow rows: row ${k} points at action ${i}, the batch has ${b.n}`);
    for (let j = 0; j < pix; j++) y[k * pix + j] = 2 * b.images[i * pix + j]! - 1;
    adv[k] = b.advantages[i]!;
    maps?.set(b.advantageMap!.subarray(i * mapLen, (i + 1) * mapLen), k * mapLen);
  }
  const dense = f.logpOld.length !== R;
  return {
    x: { data: f.x, dims }, x_next: { data: f.xNext, dims }, y: { data: y, dims },
    t: { data: f.t, dims: [R] }, t_next: { data: f.tNext, dims: [R] }, a: { data: f.a, dims: [R] },
    logp_old: { data: f.logpOld, dims: dense ? dims : [R] },
    advantage: { data: adv, dims: [R] },
    ...(maps ? { advantage_map: { data: maps, dims: [R, 3, h, w] } } : {}),
  };
}

/** One group's rollout: the final images (the actions, image space, unclamped) and each action's trained steps. */
export interface FlowGroupRollout {
  images: Float32Array;
  steps: FlowStepRecord[][];
}

export class FlowRunner {
  private constructor(private readonly config: RunConfig, private readonly session: GraphSession, private readonly resolution: Resolution) {}

  /** `resolution`: another image size than the training one (whole photographs; the network is fully convolutional). */
  static async create(config: RunConfig, device: Device = 'cpu', resolution: Resolution = resolutionOf(config)): Promise<FlowRunner> {
    return new FlowRunner(config, await GraphSession.create(policyModel(config, resolution), { device, name: 'flow policy' }), resolution);
  }

  /**
   * `n` items of ONE sample id (`image` [3,H,W] the corrupted input) with noise seeds `seeds`: the T-step
   * training plan, its SDE window drawn from (run seed, sample id), so a re-run gives the same trajectory.
   */
  async rollout(params: TensorMap, sampleId: string, image: Float32Array, seeds: readonly SeedPart[], keepLogpMap: boolean): Promise<FlowGroupRollout> {
    const r = resolutionOf(this.config);
    const pix = 3 * r.height * r.width;
    const n = seeds.length;
    const corrupted = new Float32Array(n * pix);
    for (let i = 0; i < n; i++) corrupted.set(image, i * pix);
    const plan = flowRolloutPlan(this.config, sampleId);
    const roll = await rolloutFlow(this.session, params, { corrupted, n, resolution: r, seeds }, plan, { start: this.config.flow.start, keepLogpMap, space: flowSpaceOf(this.config.flow) });
    const steps = Array.from({ length: n }, (_, i) => roll.steps.map((s): FlowStepRecord => ({
      index: s.index, t: s.t, tNext: s.tNext, a: s.a,
      xBefore: s.xBefore.slice(i * pix, (i + 1) * pix), xAfter: s.xAfter.slice(i * pix, (i + 1) * pix),
      logp: s.logp[i]!, ...(s.logpMap ? { logpMap: s.logpMap.slice(i * pix, (i + 1) * pix) } : {}),
    })));
    return { images: roll.image, steps };
  }

  /** The deterministic ODE evaluation of `corrupted` [n,3,H,W] (noise from the run seed and each id). */
  async evaluate(params: TensorMap, corrupted: Float32Array, ids: readonly string[], steps = this.config.flow.evalSteps): Promise<Float32Array> {
    const seeds = ids.map((id) => flowNoiseSeed(this.config.run.seed, `eval:${id}`, 0));
    const roll = await rolloutFlow(this.session, params, { corrupted, n: ids.length, resolution: this.resolution, seeds }, flowEvalPlan(this.config, steps), { start: this.config.flow.start, space: flowSpaceOf(this.config.flow) });
    return roll.image;
  }

  /** The step means of `b`'s rows under `params` (the KL reference's mean). */
  async referenceMean(params: TensorMap, b: FlowGrpoInputs): Promise<Float32Array> {
    const r = resolutionOf(this.config);
    const { x, y, t, t_next, a } = rowFeeds(b, r.height, r.width);
    const out = await this.session.run({ ...paramFeeds(params), x: x!, y: y!, t: t!, t_next: t_next!, a: a!, eps: { data: new Float32Array(x!.data.length), dims: x!.dims } }, ['mean']);
    return out.mean.data;
  }

  /** The step means and stds [R] of `b`'s rows under `params` (the learner's stale-row check, lib/grpo/stale-check.ts). */
  async stepMeanStd(params: TensorMap, b: FlowGrpoInputs): Promise<{ mean: Float32Array; std: Float32Array }> {
    const r = resolutionOf(this.config);
    const { x, y, t, t_next, a } = rowFeeds(b, r.height, r.width);
    const out = await this.session.run({ ...paramFeeds(params), x: x!, y: y!, t: t!, t_next: t_next!, a: a!, eps: { data: new Float32Array(x!.data.length), dims: x!.dims } }, ['mean', 'std']);
    return { mean: out.mean.data, std: out.std.data };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** The plain step's result (logp and ratio per training row) and the same per trained step index. */
export interface FlowGrpoStepResult extends GrpoStepResult {
  /** Ratio, clip fraction and KL per trained step index. */
  perStep: StepMetrics[];
}

export class FlowTrainer {
  private sft?: GraphSession;
  private grpo?: GraphSession;
  readonly optimizer: AdamW;
  /**
   * The SFT weights' moving average (sft.ema > 0), started from the parameters the trainer was given, or from
   * `sftAverage` (a resumed learner: the average stored with its AdamW state, learner/index.ts).
   */
  readonly sftEma?: ParamEma;

  private constructor(private readonly config: RunConfig, readonly params: TensorMap, private readonly device: Device, optimizerState?: AdamWState, sftAverage?: AverageState) {
    this.optimizer = trainerOptimizer(config, params, optimizerState);
    if (config.sft.ema > 0) this.sftEma = new ParamEma(sftAverage?.shadow ?? params, config.sft.ema, { updates: sftAverage?.updates ?? 0 });
  }

  static create(config: RunConfig, params: TensorMap, opts: { device?: Device; optimizerState?: AdamWState; sftAverage?: AverageState } = {}): FlowTrainer {
    return new FlowTrainer(config, params, opts.device ?? 'cpu', opts.optimizerState, opts.sftAverage);
  }

  /**
   * Stage I: the rectified-flow loss ||v(x_t, t, y) - (eps - x0)||^2 at t ~ U(0, 1]. t and eps are drawn from
   * (run seed, optimizer step count): the step count is in every checkpoint, so a restarted learner and the
   * single-process loop draw the same ones.
   */
  async sftStep(images: Float32Array, targets: Float32Array, n: number, lr = this.config.sft.lr): Promise<{ loss: number; step: StepResult }> {
    this.sft ??= await GraphSession.create(sftModel(this.config), { device: this.device, name: 'flow SFT step' });
    const r = resolutionOf(this.config);
    const dims = [n, 3, r.height, r.width];
    const key = this.optimizer.stepCount;
    const draw = rng(hashSeed(this.config.run.seed, 'flow-sft', key));
    const t = Float32Array.from({ length: n }, () => 1 - draw.float());
    const out = await this.sft.run({
      ...paramFeeds(this.params),
      x0: { data: encodeState(flowSpaceOf(this.config.flow), targets, images), dims },
      y: { data: toFlowSpace(images), dims },
      eps: { data: standardNormal(images.length, hashSeed(this.config.run.seed, 'flow-sft-noise', key)), dims },
      t: { data: t, dims: [n] },
    });
    const result = stepFromOutputs(this.optimizer, out, lr);
    if (result.step.applied) this.sftEma?.update(this.params);
    return result;
  }

  /**
   * SFT is over: with sft.ema the parameters become the moving average (in place), the weights published as
   * the warm start; without it nothing changes. The optimizer's moments are left as they are (GRPO restarts
   * them: startGrpoPhase).
   */
  finishSft(): void {
    this.sftEma?.copyTo(this.params);
  }

  /** The Flow-GRPO graph over the batch's rows (gradients accumulated: the loss is their mean), without updating. */
  async grpoForward(b: FlowGrpoInputs & { refMean: Float32Array }, hyper: Omit<GrpoHyper, 'lr'>): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
    this.grpo ??= await GraphSession.create(grpoModel(this.config), { device: this.device, name: 'flow GRPO step' });
    const r = resolutionOf(this.config);
    const feeds = rowFeeds(b, r.height, r.width);
    return this.grpo.run({ ...paramFeeds(this.params), ...feeds, ref_mean: { data: b.refMean, dims: feeds.x!.dims }, ...hyperFeeds(hyper) });
  }

  /** `screen`: as PolicyTrainer.grpoStep's, over the training rows (its logp_old replaces the rows'). */
  async grpoStep(b: FlowGrpoInputs & { refMean: Float32Array }, hyper: GrpoHyper, screen?: GrpoScreen): Promise<FlowGrpoStepResult> {
    let out = await this.grpoForward(b, hyper);
    const replaced = screen?.({ logp: out.logp!.data, ratio: out.ratio!.data });
    if (replaced) {
      const { logpOld, ...perAction } = replaced;
      out = await this.grpoForward({ ...b, ...perAction, flow: { ...b.flow, logpOld } }, hyper);
    }
    const { loss, step } = stepFromOutputs(this.optimizer, out, hyper.lr);
    const perStep = metricsByStep(b.flow.stepIndex, { ratio: out.ratio.data, clipFractionRows: out.clip_fraction_rows.data, klRows: out.kl_rows.data });
    return { step, loss, kl: out.kl.data[0]!, clipFraction: out.clip_fraction.data[0]!, logp: out.logp.data, ratio: out.ratio.data, perStep };
  }

  async release(): Promise<void> {
    await this.sft?.release();
    await this.grpo?.release();
  }
}
