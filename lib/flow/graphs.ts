// The flow family's ONNX graphs, all from one network definition (velocity-network.ts: the built-in
// velocity.ts or an imported network), so the learner recomputes
// exactly the log-probabilities the rollout produced. Every row of a batch carries its own t, t_next and
// noise level a, so rows from different steps and trajectories share one run. Contracts: docs/flow.md.

import { Graph, type Value } from '../graph/graph.ts';
import { add, div, greaterOrEqual, log, max, mul, neg, reduceMean, square, sqrt, sub, unsqueeze, where } from '../graph/ops.ts';
import { gradients } from '../graph/autodiff.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { clippedSurrogate, gaussianLogDensity, grpoInputs, imageInput, type Resolution } from '../models/graphs.ts';
import type { FlowSamplerType, PlannedStep } from './sampler.ts';
import type { FlowSpace } from './rollout.ts';
import { sin } from './velocity.ts';
import { bakeFlowNetworkParams, checkFlowNetworkResolution, declareFlowNetworkParams, flowNetworkParams, flowVelocity, type FlowNetworkSpec } from './velocity-network.ts';

/**
 * The KL term's form (flow.klForm). exact: the KL between the two step Gaussians, / (2 std^2) with the step's
 * std. flow_grpo: as train_sd3.py writes it for the sde sampler, / (2 s_t^2) without the step's -dt (for cps
 * the two agree).
 */
export type FlowKlForm = 'exact' | 'flow_grpo';

/** Floor on a step's std inside log-densities: ODE rows (std = 0) then give finite, meaningless logp. */
export const MIN_STEP_STD = 1e-12;

/** [N] -> [N,1,1,1], to scale images row by row. */
const perRow = (v: Value): Value => unsqueeze(v, [1, 2, 3]);

export interface StepTensors {
  /** The step's mean [N,3,H,W]. */
  mean: Value;
  /** Its std [N]. */
  std: Value;
}

/**
 * One sampling step's Gaussian, from x, v [N,3,H,W] and t, t_next, a [N], written as the formulas read
 * (sampler.ts holds the same step as coefficients, the independent reference):
 *   sde: s = a sqrt(t / (1 - t')), t' = t_next where t = 1 else t; dt = t_next - t
 *        mean = x (1 + s^2 dt / 2t) + v (1 + s^2 (1 - t) / 2t) dt,   std = s sqrt(-dt)
 *   cps: std = t_next sin(a pi / 2)
 *        mean = (1 - t_next)(x - t v) + sqrt(t_next^2 - std^2)(x + (1 - t) v)
 * With a = 0 the sde step is the Euler step x + v dt, bit for bit.
 */
export function flowStep(type: FlowSamplerType, x: Value, v: Value, t: Value, tNext: Value, a: Value): StepTensors {
  if (type === 'sde') {
    const dt = sub(tNext, t);
    const tDen = where(greaterOrEqual(t, 1), tNext, t);
    const s = mul(a, sqrt(div(t, sub(1, tDen))));
    const s2 = mul(s, s);
    const twoT = mul(t, 2);
    const cx = add(1, mul(div(s2, twoT), dt));
    const cv = mul(add(1, div(mul(s2, sub(1, t)), twoT)), dt);
    return { mean: add(mul(x, perRow(cx)), mul(v, perRow(cv))), std: mul(s, sqrt(neg(dt))) };
  }
  const std = mul(tNext, sin(mul(a, Math.PI / 2)));
  const c = sqrt(max(sub(mul(tNext, tNext), mul(std, std)), 0));
  const x0Hat = sub(x, mul(perRow(t), v));
  const x1Hat = add(x, mul(perRow(sub(1, t)), v));
  return { mean: add(mul(perRow(sub(1, tNext)), x0Hat), mul(perRow(c), x1Hat)), std };
}

/** log(max(std, MIN_STEP_STD)) as [N,1,1,1], for gaussianLogDensity. */
function stepLogStd(std: Value): Value {
  return perRow(log(max(std, MIN_STEP_STD)));
}

interface RowInputs {
  x: Value;
  y: Value;
  t: Value;
  tNext: Value;
  a: Value;
}

function rowInputs(g: Graph, r: Resolution): RowInputs {
  return {
    x: imageInput(g, 'x', r),
    y: imageInput(g, 'y', r),
    t: g.input('t', ['N']),
    tNext: g.input('t_next', ['N']),
    a: g.input('a', ['N']),
  };
}

/**
 * The rollout step: param.*, x, y, t, t_next, a, eps -> v, mean, x_next = mean + std eps, std [N],
 * logp [N] (averaged over C, H, W), logp_map [N,3,H,W]. An ODE step is this graph with a = 0.
 */
export function buildFlowStepGraph(spec: FlowNetworkSpec, r: Resolution, type: FlowSamplerType, baked?: TensorMap): Graph {
  checkFlowNetworkResolution(spec, r.height, r.width);
  const g = new Graph();
  const params = baked ? bakeFlowNetworkParams(g, spec, baked) : declareFlowNetworkParams(g, spec);
  const { x, y, t, tNext, a } = rowInputs(g, r);
  const eps = imageInput(g, 'eps', r);
  const v = flowVelocity(spec, params, x, t, y);
  const { mean, std } = flowStep(type, x, v, t, tNext, a);
  const xNext = add(mean, mul(perRow(std), eps));
  const density = gaussianLogDensity(xNext, mean, stepLogStd(std));
  g.output('v', v);
  g.output('mean', mean);
  g.output('x_next', xNext);
  g.output('std', std);
  g.output('logp', reduceMean(density, [1, 2, 3]));
  g.output('logp_map', density);
  return g;
}

function outputGradients(g: Graph, spec: FlowNetworkSpec, params: Map<string, Value>, loss: Value): void {
  const names = flowNetworkParams(spec).map((p) => p.name);
  const grads = gradients(loss, names.map((n) => params.get(n)!));
  names.forEach((n, i) => g.output(`grad.${n}`, grads[i]));
}

/**
 * Flow-GRPO's loss for a batch of trained steps (one row per trajectory and step):
 * param.*, x, x_next, y, t, t_next, a, logp_old, advantage [N], ref_mean, clip_low, clip_high, dual_clip, beta
 * -> loss, grad.*, logp, ratio, clip_fraction, kl, policy_terms, kl_rows (the loss's terms before reduction),
 * clip_fraction_rows [N].
 *   r = exp(logp - logp_old);  loss = mean_rows min(max(-A r, -A clamp(r, 1 - clip_low, 1 + clip_high)), dual_clip relu(-A))
 *        + beta * mean_rows( mean_chw((mean - ref_mean)^2) / (2 std^2) )
 * klForm 'flow_grpo' (sde only): the KL rows times -dt = t - t_next, i.e. / (2 s_t^2) as flow_grpo writes it.
 * The mean over rows is the gradient accumulated over trained steps, divided by their count.
 * Dense mode: logp_old is the per-element log-density [N,3,H,W], advantage_map [N,3,H-10,W-10] the
 * group-centred SSIM map, spread onto pixels as the Gaussian family does, plus the scalar advantage;
 * ratio and clipping are then per element.
 */
export function buildFlowGrpoGraph(spec: FlowNetworkSpec, r: Resolution, type: FlowSamplerType, mode: 'scalar' | 'dense' = 'scalar', klForm: FlowKlForm = 'exact'): Graph {
  checkFlowNetworkResolution(spec, r.height, r.width);
  const g = new Graph();
  const params = declareFlowNetworkParams(g, spec);
  const { x, y, t, tNext, a } = rowInputs(g, r);
  const xNext = imageInput(g, 'x_next', r);
  const { logpOld, advantage, advantageMap, refMean, clipLow, clipHigh, dualClip, beta } = grpoInputs(g, r, mode);

  const v = flowVelocity(spec, params, x, t, y);
  const { mean, std } = flowStep(type, x, v, t, tNext, a);
  const density = gaussianLogDensity(xNext, mean, stepLogStd(std));
  const logp = reduceMean(density, [1, 2, 3]);
  // The surrogate is the Gaussian family's (one definition); the clipped indicator is reduced per row here
  // (dense: over the row's elements) for the per-step metrics.
  const { ratio, perElement, clipped } = clippedSurrogate({ density, logp, logpOld, advantage, advantageMap, clipLow, clipHigh, dualClip, r });
  const clippedRows = advantageMap ? reduceMean(clipped, [1, 2, 3]) : clipped;
  const policyLoss = reduceMean(perElement);
  const safeStd = max(std, MIN_STEP_STD);
  const exactKlRows = div(reduceMean(square(sub(mean, refMean)), [1, 2, 3]), mul(square(safeStd), 2));
  // flow_grpo's form (train_sd3.py) divides by 2 s_t^2, without the step's -dt: the exact KL times -dt.
  const klRows = klForm === 'flow_grpo' && type === 'sde' ? mul(exactKlRows, sub(t, tNext)) : exactKlRows;
  const kl = reduceMean(klRows);
  const loss = add(policyLoss, mul(beta, kl));

  g.output('loss', loss);
  outputGradients(g, spec, params, loss);
  g.output('logp', logp);
  g.output('ratio', ratio);
  g.output('clip_fraction', reduceMean(clippedRows));
  g.output('kl', kl);
  // The loss before its reductions (per row, or per element in dense mode), for diagnostics and tests.
  g.output('policy_terms', perElement);
  g.output('kl_rows', klRows);
  // Per row (one trajectory's one step): the clipped fraction, for per-step metrics.
  g.output('clip_fraction_rows', clippedRows);
  return g;
}

/**
 * Stage I for the family, the rectified-flow loss: param.*, x0, y, eps, t [N] -> loss, grad.*, where
 * x_t = (1 - t) x0 + t eps and loss = mean(residual^2), residual = v(x_t, t, y) - (eps - x0) (also an output);
 * with predict residual, loss = mean((t residual)^2) = mean((x0_hat - x0)^2).
 */
export function buildFlowSftGraph(spec: FlowNetworkSpec, r: Resolution): Graph {
  checkFlowNetworkResolution(spec, r.height, r.width);
  const g = new Graph();
  const params = declareFlowNetworkParams(g, spec);
  const x0 = imageInput(g, 'x0', r);
  const y = imageInput(g, 'y', r);
  const eps = imageInput(g, 'eps', r);
  const t = g.input('t', ['N']);
  const xt = add(mul(perRow(sub(1, t)), x0), mul(perRow(t), eps));
  const residual = sub(flowVelocity(spec, params, xt, t, y), sub(eps, x0));
  // predict residual: the loss on x0_hat = x_t - t v, i.e. t^2 residual^2; the velocity loss's 1/t^2 weight
  // on the network's output would have no finite mean over t ~ U(0, 1].
  const loss = reduceMean(square(spec.predict === 'residual' ? mul(residual, perRow(t)) : residual));
  g.output('loss', loss);
  outputGradients(g, spec, params, loss);
  g.output('residual', residual);
  return g;
}

/**
 * A standalone deterministic sampler: the whole ODE loop of `plan` unrolled, weights baked in.
 * Flow space (default): y, x_start [N,3,H,W] -> x [N,3,H,W] (t = 0).
 * Image space (`imageSpace`, the export): image [N,3,H,W] in [0, 1], noise [N,3,H,W] ~ N(0, 1) -> restored
 * [N,3,H,W] = (x + 1) / 2, starting from the noise (start noise) or (1 - t0) y + t0 noise (start corrupted);
 * in the residual space restored = image + scale x, and the corrupted start is t0 noise.
 */
export function buildFlowOdeSamplerGraph(spec: FlowNetworkSpec, r: Resolution, params: TensorMap, plan: readonly PlannedStep[], imageSpace?: { start: 'noise' | 'corrupted'; space?: FlowSpace }): Graph {
  checkFlowNetworkResolution(spec, r.height, r.width);
  if (plan.some((s) => s.a !== 0)) throw new Error('ODE sampler: every planned step must have a = 0');
  if (plan.length === 0) throw new Error('ODE sampler: the plan has no steps');
  const g = new Graph();
  const baked = bakeFlowNetworkParams(g, spec, params);
  let y: Value;
  let x: Value;
  let image: Value | undefined;
  const space = imageSpace?.space ?? { kind: 'image' };
  if (imageSpace) {
    image = imageInput(g, 'image', r);
    y = sub(mul(image, 2), 1);
    const noise = imageInput(g, 'noise', r);
    const t0 = Math.fround(plan[0]!.t);
    // The corrupted start from the corrupted image's state: y, or 0 in the residual space.
    x = imageSpace.start === 'noise' ? noise : space.kind === 'residual' ? mul(noise, t0) : add(mul(y, Math.fround(1 - t0)), mul(noise, t0));
  } else {
    y = imageInput(g, 'y', r);
    x = imageInput(g, 'x_start', r);
  }
  const zeroRow = reduceMean(mul(y, 0), [1, 2, 3]); // [N] zeros, sized from the batch, to carry each t
  for (const s of plan) {
    const v = flowVelocity(spec, baked, x, add(zeroRow, s.t), y);
    x = add(x, mul(v, Math.fround(s.tNext - s.t)));
  }
  if (image) g.output('restored', space.kind === 'residual' ? add(image, mul(x, Math.fround(space.scale))) : mul(add(x, 1), 0.5));
  else g.output('x', x);
  return g;
}
