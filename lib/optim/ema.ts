// An exponential moving average of the parameters (the weights diffusion codebases sample with), with the
// warm-up of diffusers' EMAModel (use_ema_warmup=False): the k-th update (k = 1, 2, ...) uses the decay
//
//   d_k    =  min(decay, k / (k + 9))                  ((1 + step) / (10 + step) with step = k - 1)
//   shadow <- d_k * shadow + (1 - d_k) * param          (per element, in float64, stored as float32)
//
// so the first updates follow the parameters closely and the average reaches its window of about
// 1 / (1 - decay) updates only once k / (k + 9) exceeds decay. The shadow starts as a copy of the parameters.
// It is held apart from the parameters: the optimizer trains `params`, and `copyTo` puts the average in
// their place when the weights are published (after SFT).
//
// With `warmup: false` every update uses `decay` itself (d_k = decay): the shadow starts at the parameters it
// was given and forgets them at rate decay^k. The warm-up matters at GRPO's lengths: k / (k + 9) stays below
// 0.99 until update 891, so with it a 400-step average is one over about the last 10% of the steps whatever
// the decay (round 9, docs/data-history.md "Round 9: grpo9").

import { cloneTensorMap, formatShape, sameShape, type TensorMap } from '../checkpoint/tensors.ts';

/** A moving average as saved beside the optimizer's moments (lib/checkpoint/optimizer-state.ts). */
export interface AverageState {
  updates: number;
  shadow: TensorMap;
}

export class ParamEma {
  readonly shadow: TensorMap;
  private count = 0;

  readonly warmup: boolean;

  /**
   * `decay` in (0, 1): the average's decay at full warm-up (or from the start, with warmup false). `updates`:
   * the count of a saved average whose shadow `params` are (a resumed learner, exportState), so the warm-up
   * continues where it was.
   */
  constructor(params: TensorMap, readonly decay: number, opts: { warmup?: boolean; updates?: number } = {}) {
    this.warmup = opts.warmup ?? true;
    if (!(decay > 0 && decay < 1)) throw new Error(`EMA decay must lie in (0, 1), got ${decay}`);
    const updates = opts.updates ?? 0;
    if (!(Number.isInteger(updates) && updates >= 0)) throw new Error(`EMA updates must be a non-negative integer, got ${updates}`);
    this.shadow = cloneTensorMap(params);
    this.count = updates;
  }

  /** What a resume needs: the shadow (a copy) and the updates applied so far. */
  exportState(): AverageState {
    return { updates: this.count, shadow: cloneTensorMap(this.shadow) };
  }

  /** Updates applied so far. */
  get updates(): number {
    return this.count;
  }

  /** The decay the next update uses. */
  nextDecay(): number {
    if (!this.warmup) return this.decay;
    const k = this.count + 1;
    return Math.min(this.decay, k / (k + 9));
  }

  /** One update toward `params` (same names and shapes as the shadow). */
  update(params: TensorMap): void {
    this.check(params);
    const d = this.nextDecay();
    for (const [name, s] of this.shadow) {
      const p = params.get(name)!.data;
      const a = s.data;
      for (let i = 0; i < a.length; i++) a[i] = d * a[i]! + (1 - d) * p[i]!;
    }
    this.count++;
  }

  /** Writes the average into `params` in place (their arrays keep their identity). */
  copyTo(params: TensorMap): void {
    this.check(params);
    for (const [name, s] of this.shadow) params.get(name)!.data.set(s.data);
  }

  private check(params: TensorMap): void {
    if (params.size !== this.shadow.size) throw new Error(`EMA: ${params.size} parameters given, the average holds ${this.shadow.size}`);
    for (const [name, s] of this.shadow) {
      const p = params.get(name);
      if (!p) throw new Error(`EMA: parameter ${name} is missing`);
      if (!sameShape(p.shape, s.shape)) throw new Error(`EMA: parameter ${name} has shape ${formatShape(p.shape)}, the average ${formatShape(s.shape)}`);
    }
  }
}
