// AdamW with PyTorch's semantics (torch.optim.AdamW, non-amsgrad, non-foreach) and global grad-norm clipping
// (torch.nn.utils.clip_grad_norm_), on TensorMaps of float32. Per element, in float64:
//
//   g      <- g * min(1, maxGradNorm / (||g||_2 + 1e-6))      (||g|| over ALL gradients together)
//   p      <- p - lr * weightDecay * p                         (decoupled decay, skipped for noDecay(name))
//   m      <- b1 * m + (1 - b1) * g
//   v      <- b2 * v + (1 - b2) * g^2
//   mhat   =  m / (1 - b1^t),   vhat = v / (1 - b2^t)
//   p      <- p - lr * mhat / (sqrt(vhat) + eps)
//
// Parameters and moments are stored as float32 (as PyTorch does for float32 parameters), so exportState()
// is lossless and a run resumed from a checkpoint continues bit-for-bit like one that never stopped.
// A step whose gradients contain NaN or +-Infinity is refused as a whole: nothing changes, not even t.

import { formatShape, sameShape, type TensorMap } from '../checkpoint/tensors.ts';

export interface AdamWOptions {
  /** Learning rate (default 1e-4). Can be changed later through `optimizer.lr`. */
  lr?: number;
  /** (beta1, beta2), default (0.9, 0.999). */
  betas?: readonly [number, number];
  /** Added to sqrt(vhat), default 1e-8. */
  eps?: number;
  /** Decoupled weight decay, default 1e-4. */
  weightDecay?: number;
  /** Global L2 norm clip, default 1.0; null, 0 or Infinity turns clipping off. */
  maxGradNorm?: number | null;
  /** Parameters for which this returns true get no weight decay (default: none excluded, as PyTorch). */
  noDecay?: (name: string) => boolean;
}

/** The optimizer's state as a checkpoint carries it: step count t and the two moments per parameter. */
export interface AdamWState {
  step: number;
  m: TensorMap;
  v: TensorMap;
}

export type StepResult =
  | { applied: true; gradNorm: number; clipped: boolean; step: number }
  | { applied: false; reason: string; gradNorm: number };

export const ADAMW_DEFAULTS = {
  lr: 1e-4,
  betas: [0.9, 0.999] as const,
  eps: 1e-8,
  weightDecay: 1e-4,
  maxGradNorm: 1.0,
} as const;

/** Excludes biases and log-std parameters (names ending in `bias`, `.b`, `log_std`, `logStd`) from decay. */
export function biasAndLogStdNoDecay(name: string): boolean {
  return /(^|[._/])(bias|b|log_std|logStd|logstd)$/.test(name);
}

/** Builds a noDecay predicate from regular-expression sources (as the run config lists them). */
export function noDecayFromPatterns(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map((p) => new RegExp(p));
  return (name) => res.some((re) => re.test(name));
}

/** The `optim` section of the run config (lib/config), structurally, so this module does not import it. */
export interface AdamWConfig {
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  maxGradNorm: number;
  excludeFromWeightDecay: readonly string[];
}

/** AdamW options from the run config's `optim` section (maxGradNorm 0 = no clipping). */
export function adamWOptionsFromConfig(c: AdamWConfig): AdamWOptions {
  return {
    lr: c.lr,
    betas: c.betas,
    eps: c.eps,
    weightDecay: c.weightDecay,
    maxGradNorm: c.maxGradNorm === 0 ? null : c.maxGradNorm,
    noDecay: noDecayFromPatterns(c.excludeFromWeightDecay),
  };
}

/**
 * Global L2 norm of all gradients, accumulated in float64 (torch's clip_grad_norm_ with norm_type 2).
 * NaN if any element is NaN, Infinity if any is infinite.
 */
export function globalGradNorm(grads: TensorMap): number {
  let sum = 0;
  for (const g of grads.values()) {
    const d = g.data;
    for (let i = 0; i < d.length; i++) sum += d[i]! * d[i]!;
  }
  return Math.sqrt(sum);
}

function findNonFinite(grads: TensorMap): { name: string; index: number; value: number } | undefined {
  for (const [name, g] of grads) {
    const d = g.data;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return { name, index: i, value: d[i]! };
  }
  return undefined;
}

function checkPositive(name: string, x: number, allowZero = false): void {
  if (!Number.isFinite(x) || x < 0 || (!allowZero && x === 0)) throw new Error(`AdamW: ${name} must be ${allowZero ? '>= 0' : '> 0'}, got ${x}`);
}

export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly maxGradNorm: number | null;
  private readonly params: TensorMap;
  private readonly noDecay: (name: string) => boolean;
  private m: TensorMap = new Map();
  private v: TensorMap = new Map();
  private t = 0;

  /** `params` is updated in place by step(); the optimizer keeps a reference to it. */
  constructor(params: TensorMap, options: AdamWOptions = {}) {
    this.params = params;
    this.lr = options.lr ?? ADAMW_DEFAULTS.lr;
    [this.beta1, this.beta2] = options.betas ?? ADAMW_DEFAULTS.betas;
    this.eps = options.eps ?? ADAMW_DEFAULTS.eps;
    this.weightDecay = options.weightDecay ?? ADAMW_DEFAULTS.weightDecay;
    const mg = options.maxGradNorm === undefined ? ADAMW_DEFAULTS.maxGradNorm : options.maxGradNorm;
    this.maxGradNorm = mg === null || mg === 0 || mg === Infinity ? null : mg;
    this.noDecay = options.noDecay ?? (() => false);
    checkPositive('lr', this.lr, true);
    for (const [k, b] of [['beta1', this.beta1], ['beta2', this.beta2]] as const) {
      if (!(b >= 0 && b < 1)) throw new Error(`AdamW: ${k} must be in [0, 1), got ${b}`);
    }
    checkPositive('eps', this.eps, true);
    checkPositive('weightDecay', this.weightDecay, true);
    if (this.maxGradNorm !== null) checkPositive('maxGradNorm', this.maxGradNorm);
    for (const [name, p] of params) {
      this.m.set(name, { shape: [...p.shape], data: new Float32Array(p.data.length) });
      this.v.set(name, { shape: [...p.shape], data: new Float32Array(p.data.length) });
    }
  }

  /** Number of applied steps so far (t of the bias correction). */
  get stepCount(): number {
    return this.t;
  }

  /**
   * One update from `grads`. Every gradient must name a parameter and have its shape; a parameter with no
   * gradient is left alone this step (no decay, moments unchanged, as PyTorch does for grad None).
   * `lr` overrides the learning rate for this step only (schedules).
   */
  step(grads: TensorMap, options: { lr?: number } = {}): StepResult {
    for (const [name, g] of grads) {
      const p = this.params.get(name);
      if (!p) throw new Error(`AdamW: gradient "${name}" has no matching parameter`);
      if (g.data.length !== p.data.length || !sameShape(g.shape, p.shape)) {
        throw new Error(`AdamW: gradient "${name}" has shape ${formatShape(g.shape)}, parameter has ${formatShape(p.shape)}`);
      }
    }
    const lr = options.lr ?? this.lr;
    checkPositive('lr', lr, true);
    const gradNorm = globalGradNorm(grads);
    const bad = findNonFinite(grads);
    if (bad) {
      return { applied: false, reason: `non-finite gradient in ${bad.name} (element ${bad.index} is ${bad.value})`, gradNorm };
    }
    let scale = 1;
    let clipped = false;
    if (this.maxGradNorm !== null) {
      const coef = this.maxGradNorm / (gradNorm + 1e-6);
      if (coef < 1) {
        scale = coef;
        clipped = true;
      }
    }
    const t = this.t + 1;
    const { beta1: b1, beta2: b2, eps } = this;
    const bc1 = 1 - b1 ** t;
    const bc2 = 1 - b2 ** t;
    for (const [name, g] of grads) {
      const p = this.params.get(name)!.data;
      const m = this.m.get(name)!.data;
      const v = this.v.get(name)!.data;
      const gd = g.data;
      const decay = this.noDecay(name) ? 1 : 1 - lr * this.weightDecay;
      for (let i = 0; i < p.length; i++) {
        const gi = gd[i]! * scale;
        const mi = b1 * m[i]! + (1 - b1) * gi;
        const vi = b2 * v[i]! + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        // Decay first (PyTorch: param.mul_(1 - lr*wd)), then the Adam step, rounding to f32 once at the end.
        p[i] = p[i]! * decay - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
      }
    }
    this.t = t;
    return { applied: true, gradNorm, clipped, step: t };
  }

  /**
   * The state itself, not a copy (exportState copies): for a caller that encodes it at once, before the next step()
   * changes it (the learner's moments, written every version: learner/index.ts publish).
   */
  stateView(): AdamWState {
    return { step: this.t, m: this.m, v: this.v };
  }

  /** A copy of the state (t, m, v) for a checkpoint. */
  exportState(): AdamWState {
    const copy = (src: TensorMap): TensorMap =>
      new Map([...src].map(([k, x]) => [k, { shape: [...x.shape], data: new Float32Array(x.data) }]));
    return { step: this.t, m: copy(this.m), v: copy(this.v) };
  }

  /** Restores exported state; names and shapes must match the parameters exactly. The data is copied. */
  importState(state: AdamWState): void {
    if (!Number.isSafeInteger(state.step) || state.step < 0) throw new Error(`AdamW state: step must be an integer >= 0, got ${state.step}`);
    const m: TensorMap = new Map();
    const v: TensorMap = new Map();
    for (const [which, src, dst] of [['m', state.m, m], ['v', state.v, v]] as const) {
      for (const name of src.keys()) {
        if (!this.params.has(name)) throw new Error(`AdamW state: ${which}."${name}" has no matching parameter`);
      }
      for (const [name, p] of this.params) {
        const x = src.get(name);
        if (!x) throw new Error(`AdamW state: ${which}."${name}" is missing`);
        if (x.data.length !== p.data.length || !sameShape(x.shape, p.shape)) {
          throw new Error(`AdamW state: ${which}."${name}" has shape ${formatShape(x.shape)}, parameter has ${formatShape(p.shape)}`);
        }
        dst.set(name, { shape: [...p.shape], data: new Float32Array(x.data) });
      }
    }
    this.m = m;
    this.v = v;
    this.t = state.step;
  }
}
