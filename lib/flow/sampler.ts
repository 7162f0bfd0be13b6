// The flow-matching sampler in plain TypeScript: the reference the ONNX graphs are checked against, and
// the step plan (timesteps, SDE window) the rollout driver follows. Rectified flow: x_t = (1 - t) x0 + t eps,
// t = 1 is noise, t = 0 data, the network predicts v = eps - x0, and a step goes from t to t_next < t.
// Formulas: docs/flow.md (read from flow_grpo's sd3_sde_with_logprob.py; not copied).

/** `sde`: Flow-GRPO's reverse SDE; `cps`: its coefficients-preserving variant. */
export type FlowSamplerType = 'sde' | 'cps';

/**
 * Every step is linear in the state and the velocity: mean = x * cx + v * cv, x_next = mean + std * eps.
 * With std = 0 the step is deterministic.
 */
export interface StepCoefficients {
  cx: number;
  cv: number;
  std: number;
}

function checkStep(t: number, tNext: number, a: number): void {
  if (!(t > 0 && t <= 1)) throw new Error(`flow step: t must lie in (0, 1], got ${t}`);
  if (!(tNext >= 0 && tNext < t)) throw new Error(`flow step: t_next must lie in [0, t), got ${tNext} with t = ${t}`);
  if (!(a >= 0 && Number.isFinite(a))) throw new Error(`flow step: the noise level a must be finite and >= 0, got ${a}`);
}

/** The Euler (probability-flow ODE) step: x_next = x + v dt. */
export function odeCoefficients(t: number, tNext: number): StepCoefficients {
  checkStep(t, tNext, 0);
  return { cx: 1, cv: tNext - t, std: 0 };
}

/**
 * The SDE's diffusion scale s_t = a sqrt(t / (1 - t)); at t = 1 the denominator would vanish, so the next
 * timestep stands in for t there (flow_grpo uses sigmas[1], which is t_next on the first step).
 */
export function sdeNoiseScale(t: number, tNext: number, a: number): number {
  const tDen = t >= 1 ? tNext : t;
  return a * Math.sqrt(t / (1 - tDen));
}

/** Flow-GRPO's `sde` step: mean = x (1 + s^2 dt / 2t) + v (1 + s^2 (1 - t) / 2t) dt, std = s sqrt(-dt). */
export function sdeCoefficients(t: number, tNext: number, a: number): StepCoefficients {
  checkStep(t, tNext, a);
  const dt = tNext - t;
  const s = sdeNoiseScale(t, tNext, a);
  const s2 = s * s;
  return { cx: 1 + (s2 / (2 * t)) * dt, cv: (1 + (s2 * (1 - t)) / (2 * t)) * dt, std: s * Math.sqrt(-dt) };
}

/**
 * The `cps` step: std = t_next sin(a pi / 2), x0_hat = x - t v, x1_hat = x + (1 - t) v,
 * mean = (1 - t_next) x0_hat + sqrt(t_next^2 - std^2) x1_hat, collected into coefficients of x and v.
 */
export function cpsCoefficients(t: number, tNext: number, a: number): StepCoefficients {
  checkStep(t, tNext, a);
  const std = tNext * Math.sin((a * Math.PI) / 2);
  const c = Math.sqrt(Math.max(0, tNext * tNext - std * std));
  return { cx: 1 - tNext + c, cv: -(1 - tNext) * t + c * (1 - t), std };
}

export function stepCoefficients(type: FlowSamplerType, t: number, tNext: number, a: number): StepCoefficients {
  return type === 'sde' ? sdeCoefficients(t, tNext, a) : cpsCoefficients(t, tNext, a);
}

/** mean = x cx + v cv, elementwise. */
export function stepMean(x: ArrayLike<number>, v: ArrayLike<number>, c: StepCoefficients): Float64Array {
  if (x.length !== v.length) throw new Error(`flow step: x has ${x.length} values, v has ${v.length}`);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * c.cx + v[i] * c.cv;
  return out;
}

/** x_next = mean + std * eps. */
export function stepSample(mean: ArrayLike<number>, std: number, eps: ArrayLike<number>): Float64Array {
  if (mean.length !== eps.length) throw new Error(`flow step: mean has ${mean.length} values, eps has ${eps.length}`);
  const out = new Float64Array(mean.length);
  for (let i = 0; i < mean.length; i++) out[i] = mean[i] + std * eps[i];
  return out;
}

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** The Gaussian log-density of x_next under N(mean, std^2), averaged over the elements (C, H, W of one item). */
export function gaussianLogpMean(xNext: ArrayLike<number>, mean: ArrayLike<number>, std: number): number {
  if (!(std > 0)) throw new Error(`flow step: a log-density needs std > 0, got ${std}`);
  let s = 0;
  for (let i = 0; i < xNext.length; i++) {
    const z = (xNext[i] - mean[i]) / std;
    s += -0.5 * z * z;
  }
  return s / xNext.length - Math.log(std) - HALF_LOG_2PI;
}

// ---------------------------------------------------------------------------------------------------
// Timesteps and the step plan

/** SD3's timestep shift: u -> shift u / (1 + (shift - 1) u); shift > 1 spends more steps at high noise. */
export function shiftTimestep(u: number, shift: number): number {
  return (shift * u) / (1 + (shift - 1) * u);
}

/**
 * T + 1 timesteps from `startT` down to 0: t_k = startT * shift(1 - k / T). Rounded to float32, because
 * the graphs take t as float32 and the learner must feed the exact values the rollout used.
 */
export function timesteps(steps: number, shift: number, startT = 1): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`flow.steps must be an integer >= 1, got ${steps}`);
  if (!(shift > 0 && Number.isFinite(shift))) throw new Error(`flow.shift must be finite and > 0, got ${shift}`);
  if (!(startT > 0 && startT <= 1)) throw new Error(`flow.startT must lie in (0, 1], got ${startT}`);
  return Array.from({ length: steps + 1 }, (_, k) => Math.fround(startT * shiftTimestep(1 - k / steps, shift)));
}

/** Where the SDE window sits: a fixed first step, or drawn per group in the high-noise half. */
export interface SdeWindow {
  /** Number of SDE (trained) steps. */
  size: number;
  /** First SDE step (0-based), or 'random': uniform over starts that keep the window in the first half. */
  start: number | 'random';
}

export interface FlowSamplerSpec {
  type: FlowSamplerType;
  /** Sampling steps of a training rollout. */
  steps: number;
  /** Noise level a (flow_grpo: 0.7 for SD3, 1.3 for BAGEL). */
  a: number;
  /** SD3 timestep shift (1: uniform). */
  shift: number;
  window: SdeWindow;
  /** 'noise': x_1 = eps (as Robust-U1); 'corrupted': x_startT = (1 - startT) y + startT eps. */
  start: 'noise' | 'corrupted';
  /** First timestep for start = 'corrupted' (1 for 'noise'). */
  startT: number;
  /** The last step (never trained) samples with the SDE, as flow_grpo's sampler does; default: an ODE step. */
  lastStepSde?: boolean;
  /**
   * The window ends at the last step (t_next = 0), which is then an SDE step and trained (sde only: cps has std 0
   * there; a random window, or one ending earlier, is refused). Its noise is added after the network's last evaluation, so it reaches the image whatever the
   * network learns (docs/flow.md, "Round 34: flow34"); default: the last step is never trained.
   */
  trainLastStep?: boolean;
}

export interface PlannedStep {
  index: number;
  t: number;
  tNext: number;
  /** Noise level fed to the step graph: spec.a inside the window, 0 (the ODE step) outside. */
  a: number;
  trained: boolean;
}

/**
 * The window's first step. `draw` is a uniform number in [0, 1) (the caller derives it from the run seed
 * and the group, so every member of a group trains the same steps).
 */
export function windowStart(steps: number, w: SdeWindow, draw: number, trainLastStep = false): number {
  if (!Number.isInteger(w.size) || w.size < 1) throw new Error(`flow.sde.window.size must be an integer >= 1, got ${w.size}`);
  // the option trains the last step: a window that does not end there would leave it untrained under a name that says
  // otherwise (review34)
  if (trainLastStep && w.start === 'random') throw new Error(`flow.sde.trainLastStep needs a numeric window ending at the last step (start ${steps - w.size} for size ${w.size}), got a random one`);
  if (w.start === 'random') {
    const half = Math.floor(steps / 2);
    const last = Math.min(half, steps - 1) - w.size;
    if (last < 0) throw new Error(`flow.sde.window: a random window of ${w.size} steps does not fit in the first half of ${steps} steps (the last step is never trained)`);
    return Math.min(last, Math.floor(draw * (last + 1)));
  }
  if (!Number.isInteger(w.start) || w.start < 0) throw new Error(`flow.sde.window.start must be an integer >= 0 or 'random', got ${w.start}`);
  if (trainLastStep) {
    if (w.start + w.size > steps) throw new Error(`flow.sde.window: steps ${w.start}..${w.start + w.size - 1} reach past the last step (${steps - 1})`);
    if (w.start + w.size < steps) throw new Error(`flow.sde.trainLastStep needs the window to end at the last step (${steps - 1}); steps ${w.start}..${w.start + w.size - 1} leave it untrained (start ${steps - w.size} for size ${w.size})`);
  } else if (w.start + w.size > steps - 1) {
    throw new Error(`flow.sde.window: steps ${w.start}..${w.start + w.size - 1} reach past step ${steps - 2}; the last step (${steps - 1}) is never trained (unless flow.sde.trainLastStep)`);
  }
  return w.start;
}

/** The training rollout's steps: SDE with noise level a inside the window (and on the last step with lastStepSde), ODE elsewhere. */
export function rolloutPlan(spec: FlowSamplerSpec, windowDraw: number): PlannedStep[] {
  if (!(spec.a > 0 && Number.isFinite(spec.a))) throw new Error(`flow.sde.a must be finite and > 0 for training rollouts, got ${spec.a}`);
  if (spec.type === 'cps' && spec.a >= 1) throw new Error(`flow.sde.a must be < 1 for the cps sampler (std = t_next sin(a pi/2)), got ${spec.a}`);
  if (spec.type === 'cps' && spec.trainLastStep) throw new Error('flow.sde.trainLastStep needs the sde sampler: the cps step has std 0 at t_next = 0, no density to train');
  const ts = timesteps(spec.steps, spec.shift, spec.start === 'noise' ? 1 : spec.startT);
  const first = windowStart(spec.steps, spec.window, windowDraw, spec.trainLastStep === true);
  return ts.slice(0, -1).map((t, k) => {
    const trained = k >= first && k < first + spec.window.size;
    const sde = trained || (spec.lastStepSde === true && k === spec.steps - 1);
    return { index: k, t, tNext: ts[k + 1], a: sde ? spec.a : 0, trained };
  });
}

/** The deterministic evaluation sampler: `steps` Euler steps, nothing trained. */
export function odePlan(steps: number, shift: number, startT = 1): PlannedStep[] {
  const ts = timesteps(steps, shift, startT);
  return ts.slice(0, -1).map((t, k) => ({ index: k, t, tNext: ts[k + 1], a: 0, trained: false }));
}
