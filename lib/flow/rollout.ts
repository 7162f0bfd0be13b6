// The rollout driver: runs a step plan through the step graph, keeping what the learner needs for every
// trained step (the state before it, the state after it, its log-probability), and the final image.
// Noise comes from the per-item seed the orchestrator already derives (run seed, sample id, group index),
// split by step, so a re-run task gives the same trajectory bit for bit.

import type { TensorMap } from '../checkpoint/tensors.ts';
import { hashSeed, hashUnit, standardNormal, type SeedPart } from '../data/random.ts';
import type { Resolution } from '../models/graphs.ts';
import { SSIM_WINDOW } from '../models/ssim.ts';
import { grpoHyperFeeds, paramFeeds } from '../models/feeds.ts';
import type { Feed, Feeds, GraphSession } from '../graph/runtime.ts';
import type { FlowSamplerSpec, PlannedStep } from './sampler.ts';

/** Images live in [0, 1]; the flow runs on 2 x - 1, so data and the N(0, 1) noise have comparable scales. */
export function toFlowSpace(img: Float32Array): Float32Array {
  return img.map((v) => 2 * v - 1);
}
export function fromFlowSpace(x: Float32Array): Float32Array {
  return x.map((v) => (v + 1) / 2);
}

/**
 * Where the flow's state lives. image: 2 x - 1 of the image (the corrupted image y is the state y).
 * residual: the scaled residual (x - y) / scale of the corrupted image (latent diffusion's scale factor): the
 * clean target is then about unit-sized like the noise, the corrupted image is the state 0, and the image is
 * y + scale * state. The condition the network sees is 2 y - 1 in both.
 */
export type FlowSpace = { kind: 'image' } | { kind: 'residual'; scale: number };
export const IMAGE_SPACE: FlowSpace = { kind: 'image' };

/** Images [n,3,H,W] in [0, 1] -> states, given their corrupted images (same length). */
export function encodeState(space: FlowSpace, images: Float32Array, corrupted: Float32Array): Float32Array {
  if (space.kind === 'image') return toFlowSpace(images);
  if (images.length !== corrupted.length) throw new Error(`flow space: ${images.length} image values against ${corrupted.length} corrupted ones`);
  const inv = 1 / space.scale;
  return images.map((v, i) => (v - corrupted[i]!) * inv);
}
/** States -> images (not clamped). */
export function decodeState(space: FlowSpace, x: Float32Array, corrupted: Float32Array): Float32Array {
  if (space.kind === 'image') return fromFlowSpace(x);
  if (x.length !== corrupted.length) throw new Error(`flow space: ${x.length} state values against ${corrupted.length} corrupted ones`);
  return x.map((v, i) => corrupted[i]! + space.scale * v);
}

/** The per-item noise seed: the same parts the Gaussian family's noise comes from. */
export function flowNoiseSeed(runSeed: number, sampleId: string, groupIndex: number): number {
  return hashSeed(runSeed, sampleId, groupIndex);
}

/** The starting noise of one item. */
export function startNoise(seed: SeedPart, pix: number): Float32Array {
  return standardNormal(pix, hashSeed(seed, 'flow', 'start'));
}

/** The SDE noise of one item at one step. */
export function stepNoise(seed: SeedPart, step: number, pix: number): Float32Array {
  return standardNormal(pix, hashSeed(seed, 'flow', 'step', step));
}

/** The window draw of a group (sample id, not group index: every member trains the same steps). */
export function windowDraw(runSeed: number, sampleId: string): number {
  return hashUnit(runSeed, sampleId, 'flow-window');
}

export interface FlowTrainedStep {
  index: number;
  t: number;
  tNext: number;
  a: number;
  /** [n,3,H,W] flow-space states before and after the step. */
  xBefore: Float32Array;
  xAfter: Float32Array;
  /** [n] log-density of xAfter, averaged over C, H, W. */
  logp: Float32Array;
  /** [n,3,H,W] per-element log-density (kept for dense advantages). */
  logpMap?: Float32Array;
}

export interface FlowRollout {
  /** [n,3,H,W] the sample mapped back to image space (not clamped: callers clamp before scoring). */
  image: Float32Array;
  /** [n,3,H,W] the flow-space state at t = 0. */
  final: Float32Array;
  steps: FlowTrainedStep[];
}

export interface FlowRolloutInput {
  /** [n,3,H,W] corrupted images in [0, 1]. */
  corrupted: Float32Array;
  n: number;
  resolution: Resolution;
  /** One noise seed per item (flowNoiseSeed). */
  seeds: readonly SeedPart[];
}

const rowFeed = (n: number, value: number): Feed => ({ data: new Float32Array(n).fill(value), dims: [n] });

/** Runs `plan` (rolloutPlan or odePlan) from the start state `start` selects. */
export async function rolloutFlow(
  session: GraphSession,
  params: TensorMap,
  input: FlowRolloutInput,
  plan: readonly PlannedStep[],
  opts: { start: FlowSamplerSpec['start']; keepLogpMap?: boolean; space?: FlowSpace },
): Promise<FlowRollout> {
  const { n, resolution: r } = input;
  const pix = 3 * r.height * r.width;
  if (input.corrupted.length !== n * pix) throw new Error(`flow rollout: corrupted has ${input.corrupted.length} values, expected ${n} x 3 x ${r.height} x ${r.width}`);
  if (input.seeds.length !== n) throw new Error(`flow rollout: ${input.seeds.length} noise seeds for ${n} items`);
  if (plan.length === 0) throw new Error('flow rollout: the plan has no steps');
  const dims = [n, 3, r.height, r.width];
  const space = opts.space ?? IMAGE_SPACE;
  const y = toFlowSpace(input.corrupted);
  // The corrupted image as a state: y itself, or 0 in the residual space.
  const yState = encodeState(space, input.corrupted, input.corrupted);
  let x: Float32Array = new Float32Array(n * pix);
  const t0 = plan[0].t;
  input.seeds.forEach((seed, i) => {
    const eps = startNoise(seed, pix);
    if (opts.start === 'noise') x.set(eps, i * pix);
    else for (let j = 0; j < pix; j++) x[i * pix + j] = (1 - t0) * yState[i * pix + j] + t0 * eps[j];
  });
  const base: Feeds = { ...paramFeeds(params), y: { data: y, dims } };
  const steps: FlowTrainedStep[] = [];
  for (const s of plan) {
    const eps = new Float32Array(n * pix);
    if (s.a > 0) input.seeds.forEach((seed, i) => eps.set(stepNoise(seed, s.index, pix), i * pix));
    const wanted = s.trained ? (opts.keepLogpMap ? ['x_next', 'logp', 'logp_map'] : ['x_next', 'logp']) : ['x_next'];
    const out = await session.run(
      { ...base, x: { data: x, dims }, t: rowFeed(n, s.t), t_next: rowFeed(n, s.tNext), a: rowFeed(n, s.a), eps: { data: eps, dims } },
      wanted,
    );
    const next = out.x_next.data;
    if (s.trained) {
      steps.push({ index: s.index, t: s.t, tNext: s.tNext, a: s.a, xBefore: x, xAfter: next, logp: out.logp.data, logpMap: out.logp_map?.data });
    }
    x = next;
  }
  return { image: decodeState(space, x, input.corrupted), final: x, steps };
}

/** The rows a training graph consumes: one per (item, trained step), stacked step-major. */
export interface FlowTrainingRows {
  n: number;
  feeds: Feeds;
  /** [n] each row's step index in the trajectory (for per-step metrics). */
  stepOfRow: Int32Array;
}

/**
 * Stacks the trained steps of a rollout into training-graph feeds (x, x_next, y, t, t_next, a, logp_old,
 * advantage), every step's rows carrying the trajectory's advantage. `advantage` is [items]; the
 * hyper-parameters and ref_mean are added by the caller.
 */
export function flowTrainingRows(
  steps: readonly FlowTrainedStep[],
  corrupted: Float32Array,
  items: number,
  r: Resolution,
  advantage: Float32Array,
  /** Dense mode: [items,3,H-10,W-10] group-centred SSIM maps; logp_old is then per element. */
  advantageMap?: Float32Array,
): FlowTrainingRows {
  const pix = 3 * r.height * r.width;
  const mapLen = 3 * (r.height - SSIM_WINDOW + 1) * (r.width - SSIM_WINDOW + 1);
  const dense = advantageMap !== undefined;
  const n = steps.length * items;
  if (advantage.length !== items) throw new Error(`flow training rows: ${advantage.length} advantages for ${items} trajectories`);
  if (dense && advantageMap.length !== items * mapLen) throw new Error(`flow training rows: advantage map has ${advantageMap.length} values, expected ${items} x ${mapLen}`);
  const maps = dense ? new Float32Array(n * mapLen) : undefined;
  const y = toFlowSpace(corrupted);
  const x = new Float32Array(n * pix);
  const xNext = new Float32Array(n * pix);
  const ys = new Float32Array(n * pix);
  const logpOld = new Float32Array(dense ? n * pix : n);
  const t = new Float32Array(n);
  const tNext = new Float32Array(n);
  const a = new Float32Array(n);
  const adv = new Float32Array(n);
  const stepOfRow = new Int32Array(n);
  steps.forEach((s, k) => {
    stepOfRow.fill(s.index, k * items, (k + 1) * items);
    x.set(s.xBefore, k * items * pix);
    xNext.set(s.xAfter, k * items * pix);
    ys.set(y, k * items * pix);
    if (dense) {
      if (!s.logpMap) throw new Error(`flow training rows: step ${s.index} kept no per-element log-density (rollout without keepLogpMap)`);
      logpOld.set(s.logpMap, k * items * pix);
    } else logpOld.set(s.logp, k * items);
    t.fill(s.t, k * items, (k + 1) * items);
    tNext.fill(s.tNext, k * items, (k + 1) * items);
    a.fill(s.a, k * items, (k + 1) * items);
    adv.set(advantage, k * items);
    maps?.set(advantageMap!, k * items * mapLen);
  });
  const dims = [n, 3, r.height, r.width];
  const mapFeed: Feeds = maps ? { advantage_map: { data: maps, dims: [n, 3, r.height - SSIM_WINDOW + 1, r.width - SSIM_WINDOW + 1] } } : {};
  return {
    n,
    stepOfRow,
    feeds: {
      ...mapFeed,
      x: { data: x, dims },
      x_next: { data: xNext, dims },
      y: { data: ys, dims },
      t: { data: t, dims: [n] },
      t_next: { data: tNext, dims: [n] },
      a: { data: a, dims: [n] },
      logp_old: { data: logpOld, dims: dense ? dims : [n] },
      advantage: { data: adv, dims: [n] },
    },
  };
}

/** The reference policy's step means for training rows (the KL term's ref_mean). */
export async function referenceMeans(stepSession: GraphSession, refParams: TensorMap, rows: FlowTrainingRows): Promise<Feed> {
  const { x, y, t, t_next, a } = rows.feeds;
  const eps = { data: new Float32Array(x.data.length), dims: x.dims };
  const out = await stepSession.run({ ...paramFeeds(refParams), x, y, t, t_next, a, eps }, ['mean']);
  return out.mean;
}

export interface FlowLossSettings {
  clipLow: number;
  clipHigh: number;
  beta: number;
  /** grpo.dualClip (absent: its default). */
  dualClip?: number;
}

export function hyperFeeds(h: FlowLossSettings): Feeds {
  return grpoHyperFeeds(h);
}
