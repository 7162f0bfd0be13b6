// Evaluation on a fixed set of samples: each policy's recoveries (the policy mean, or sampled actions)
// and the identity baseline (the corrupted image returned unchanged), scored with the run's reward graph
// and expression, with PSNR beside it; overall, per corruption type and per level.
import type { RunConfig } from '../config/index.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import type { Sample } from '../data/dataset.ts';
import type { EvalDraws } from '../data/eval-draws.ts';
import { openRunDataset } from '../config/dataset.ts';
import { clamp01, fromCHWFloat, stackPairs, type RgbImage } from '../data/image.ts';
import { hashSeed, standardNormal } from '../data/random.ts';
import { compileRewardExpression, rewardConstants } from '../grpo/reward-expression.ts';
import { PolicyRunner } from '../models/runner.ts';
import { FlowRunner, flowSamplerName, isFlowFamily } from '../flow/family.ts';
import { RewardScorer } from '../models/scorer.ts';
import type { Device } from '../graph/device.ts';

export interface Scores {
  reward: number;
  ssim: number;
  clip_cos: number;
  psnr: number;
  count: number;
}

export interface EvalReport extends Scores {
  byType: Record<string, Scores>;
  byLevel: Record<string, Scores>;
  /**
   * Every evaluated draw in sample order (the same order for every policy of one evaluation): the image's id,
   * the corruption's type and level, and its scores. Paired intervals between policies are computed from these
   * (lib/eval/paired.ts). Absent in reports written before round 7.
   */
  perSample?: PerSample;
}

export interface PerSample {
  id: string[];
  type: string[];
  level: string[];
  reward: number[];
  ssim: number[];
  psnr: number[];
}

export type Policy = { kind: 'identity' } | { kind: 'mean'; params: TensorMap } | { kind: 'sampled'; params: TensorMap };

export interface EvalResult {
  reports: Record<string, EvalReport>;
  /**
   * Per policy, the recovered images (clamped), CHW one after another in sample order: [n,3,H,W] when every
   * sample has one size; whole photographs differ in size, so read one with outputImage().
   */
  outputs: Record<string, Float32Array>;
  /** Where sample i's CHW pixels start in each of `outputs`; -1 for a sample whose recovery was not kept (opts.keep). */
  offsets: number[];
  samples: Sample[];
  encoder: string;
  /** How the policies sampled: the family, the sampler and its steps (every report names them). */
  sampler: string;
}

const BATCH = 32;

function psnr(a: Float32Array, b: Float32Array, off: number, len: number): number {
  let se = 0;
  for (let i = off; i < off + len; i++) se += (a[i] - b[i]) ** 2;
  const mse = se / len;
  return mse === 0 ? 100 : 10 * Math.log10(1 / mse);
}

function summarise(rows: Array<Omit<Scores, 'count'> & { id: string; type: string; level: string }>): EvalReport {
  const agg = (rs: typeof rows): Scores => {
    const n = rs.length || 1;
    const sum = (k: 'reward' | 'ssim' | 'clip_cos' | 'psnr') => rs.reduce((s, r) => s + r[k], 0) / n;
    return { reward: sum('reward'), ssim: sum('ssim'), clip_cos: sum('clip_cos'), psnr: sum('psnr'), count: rs.length };
  };
  const by = (key: 'type' | 'level') => {
    const m: Record<string, typeof rows> = {};
    for (const r of rows) (m[r[key]] ??= []).push(r);
    return Object.fromEntries(Object.entries(m).sort().map(([k, v]) => [k, agg(v)]));
  };
  const perSample: PerSample = {
    id: rows.map((r) => r.id), type: rows.map((r) => r.type), level: rows.map((r) => r.level),
    reward: rows.map((r) => r.reward), ssim: rows.map((r) => r.ssim), psnr: rows.map((r) => r.psnr),
  };
  return { ...agg(rows), byType: by('type'), byLevel: by('level'), perSample };
}

/** Sample i's recovery by policy `name`, as an image. */
export function outputImage(ev: EvalResult, name: string, i: number): RgbImage {
  const out = ev.outputs[name];
  if (!out) throw new Error(`evaluation has no policy '${name}'`);
  const { width, height } = ev.samples[i].clean;
  if (ev.offsets[i] < 0) throw new Error(`evaluation kept no recovery of sample ${i} (not in opts.keep)`);
  return fromCHWFloat(out.subarray(ev.offsets[i], ev.offsets[i] + 3 * width * height), width, height);
}

/** The key of an image size in evaluate()'s runner caches. */
const sizeKey = (height: number, width: number): string => `${height}x${width}`;

/** The runner for images of height x width: `cache`'s, or made by `create` and kept there (the caller releases it). */
async function runnerOfSize<R>(cache: Map<string, R>, height: number, width: number, create: () => Promise<R>): Promise<R> {
  const key = sizeKey(height, width);
  let r = cache.get(key);
  if (!r) {
    r = await create();
    cache.set(key, r);
  }
  return r;
}

/**
 * Evaluates every policy on the same `samples` (typically the first N of the eval split). Samples may differ
 * in size (whole photographs): they are run in batches of one size, one policy graph per size (the policy is
 * fully convolutional, so the same parameters apply).
 */
export async function evaluate(
  config: RunConfig,
  samples: Sample[],
  policies: Record<string, Policy>,
  /**
   * device: where this process scores (the reward graph; the policy runs on the CPU), default cpu: the caller's
   * choice, as a worker's --device is, never the run config's (the eval CLI's --device, the demo's reward workers'
   * device; the orchestrator's periodic evaluation passes its CPU scorer). runner / scorer: sessions to reuse (a
   * periodic evaluator keeps them); the caller releases them. keep: the samples whose recovered images are kept in
   * `outputs` (default all; an every-type evaluation of 64 whole photographs holds about 300 MB of float pixels per
   * policy, and a grid needs a few).
   */
  opts: { device?: Device; clipModel?: string; runner?: PolicyRunner; scorer?: RewardScorer; keep?: readonly number[] } = {},
): Promise<EvalResult> {
  if (samples.length === 0) throw new Error('evaluate: no samples (is the eval split empty?)');
  const kept = opts.keep ? new Set(opts.keep) : null;
  const offsets: number[] = [];
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    if (kept && !kept.has(i)) {
      offsets.push(-1);
      continue;
    }
    offsets.push(total);
    total += 3 * samples[i].clean.width * samples[i].clean.height;
  }
  // Batches of samples of one size, in sample order within each size.
  const bySize = new Map<string, number[]>();
  samples.forEach((s, i) => {
    if (s.corrupted.width !== s.clean.width || s.corrupted.height !== s.clean.height) {
      throw new Error(`evaluate: sample ${s.id}: corrupted ${s.corrupted.width}x${s.corrupted.height} differs from clean ${s.clean.width}x${s.clean.height}`);
    }
    const key = sizeKey(s.clean.height, s.clean.width);
    const list = bySize.get(key) ?? [];
    if (list.length === 0) bySize.set(key, list);
    list.push(i);
  });
  const batches: Array<{ idx: number[]; height: number; width: number }> = [];
  for (const idx of bySize.values()) {
    const { height, width } = samples[idx[0]].clean;
    for (let b = 0; b < idx.length; b += BATCH) batches.push({ idx: idx.slice(b, b + BATCH), height, width });
  }
  const reward = compileRewardExpression(config.reward.expression, rewardConstants(config.reward));
  const scorer = opts.scorer ?? new RewardScorer(opts.clipModel ? { encoder: 'onnx', clipModel: opts.clipModel } : config.reward, opts.device ?? 'cpu');
  const needRunner = Object.values(policies).some((p) => p.kind !== 'identity');
  // The flow family evaluates with the deterministic ODE sampler (flow.evalSteps), 'mean' and 'sampled' alike.
  const flow = isFlowFamily(config);
  const runners = new Map<string, PolicyRunner>();
  const flowRunners = new Map<string, FlowRunner>();
  if (opts.runner && !flow) runners.set(sizeKey(opts.runner.height, opts.runner.width), opts.runner);
  const runnerFor = (height: number, width: number) => runnerOfSize(runners, height, width, () => PolicyRunner.create(config, 'cpu', { height, width }));
  const flowRunnerFor = (height: number, width: number) => runnerOfSize(flowRunners, height, width, () => FlowRunner.create(config, 'cpu', { height, width }));
  const reports: Record<string, EvalReport> = {};
  const outputs: Record<string, Float32Array> = {};
  type Row = Omit<Scores, 'count'> & { id: string; type: string; level: string; index: number };
  const rowsOf: Record<string, Row[]> = {};
  for (const name of Object.keys(policies)) {
    outputs[name] = new Float32Array(total);
    rowsOf[name] = [];
  }
  // One image size at a time, every policy on it, then that size's policy sessions are released: an onnxruntime
  // session keeps an arena sized for its largest batch, and whole photographs come in a dozen sizes (every-type
  // fills each size's batches). The batches and their noise are the same as size by size within each policy.
  const sizes: Array<typeof batches> = [];
  for (const b of batches) {
    const last = sizes[sizes.length - 1];
    if (last && last[0]!.height === b.height && last[0]!.width === b.width) last.push(b);
    else sizes.push([b]);
  }
  try {
    for (const group of sizes) {
      for (const [name, policy] of Object.entries(policies)) {
        const out = outputs[name]!;
        const rows = rowsOf[name]!;
        for (const { idx, height, width } of group) {
          const pix = 3 * height * width;
          const m = idx.length;
          const { corrupted: images, clean } = stackPairs(idx.map((i) => samples[i]));
          let recovered: Float32Array;
          if (policy.kind === 'identity' || !needRunner) {
            recovered = clamp01(images);
          } else if (flow) {
            recovered = clamp01(await (await flowRunnerFor(height, width)).evaluate(policy.params, images, idx.map((i) => samples[i].id)));
          } else {
            // Sampled actions use fixed noise per sample, so two evaluations of a policy agree.
            const noise = policy.kind === 'sampled' ? standardNormal(m * pix, hashSeed(config.run.seed, 'eval', idx[0], height, width)) : new Float32Array(m * pix);
            const r = await (await runnerFor(height, width)).run(policy.params, images, noise, m);
            recovered = clamp01(policy.kind === 'sampled' ? r.action : r.mean);
          }
          idx.forEach((i, k) => { if (offsets[i] >= 0) out.set(recovered.subarray(k * pix, (k + 1) * pix), offsets[i]); });
          const s = await scorer.score({ candidates: recovered, references: clean, n: m, height, width });
          idx.forEach((i, k) => {
            const c = { ssim: s.ssim[k], clip_cos: s.clip_cos[k] };
            const smp = samples[i];
            rows.push({ ...c, reward: reward.evaluate(c), psnr: psnr(recovered, clean, k * pix, pix), id: smp.id, type: smp.corruption.type, level: String(smp.corruption.level ?? 'unknown'), index: i });
          });
        }
      }
      const key = sizeKey(group[0]!.height, group[0]!.width);
      const r = runners.get(key);
      if (r && r !== opts.runner) {
        runners.delete(key);
        await r.release();
      }
      const fr = flowRunners.get(key);
      if (fr) {
        flowRunners.delete(key);
        await fr.release();
      }
    }
    for (const [name, rows] of Object.entries(rowsOf)) {
      rows.sort((a, b) => a.index - b.index);
      reports[name] = summarise(rows);
    }
  } finally {
    for (const r of runners.values()) if (r !== opts.runner) await r.release();
    for (const r of flowRunners.values()) await r.release();
    if (!opts.scorer) await scorer.close();
  }
  const sampler = flow ? flowSamplerName(config) : 'gaussian (policy mean; sampled: mean + sigma * fixed noise)';
  return { reports, outputs, offsets, samples, encoder: scorer.encoderName, sampler };
}

/**
 * The evaluation samples of a split: its first `count` readable images in index order, each corrupted once
 * ('one': epoch 0's draw, as rounds 1-6) or once per type of the mix ('every-type': lib/data/eval-draws.ts), an
 * image's draws one after another in CORRUPTION_TYPES order.
 */
export async function evalSamples(
  dataset: { size: number; get(i: number): Promise<Sample | null>; getEveryType(i: number): Promise<Sample[] | null> },
  count: number,
  draws: EvalDraws,
): Promise<Sample[]> {
  if (draws === 'one') return firstSamples(dataset, count);
  const out: Sample[] = [];
  for (let i = 0, images = 0; i < dataset.size && images < count; i++) {
    const s = await dataset.getEveryType(i);
    if (s) {
      out.push(...s);
      images++;
    }
  }
  return out;
}

/**
 * The samples a run's config evaluates: the eval split's first eval.samples images with eval.draws draws each
 * (evalSamples on openRunDataset). `count` and `draws` replace the config's where a caller has its own (the
 * eval command's --samples, eval.periodicDraws); the samples and their order are evalSamples's.
 */
export async function configEvalSamples(config: RunConfig, o: { count?: number; draws?: EvalDraws } = {}): Promise<Sample[]> {
  return evalSamples(await openRunDataset(config, 'eval'), o.count ?? config.eval.samples, o.draws ?? config.eval.draws);
}

/** How many distinct images (sample ids) `samples` hold. */
export function imageCount(samples: readonly Sample[]): number {
  return new Set(samples.map((s) => s.id)).size;
}

/**
 * The samples a grid of `rows` shows: distinct images in order, the k-th image's (k mod its draws)-th draw, so
 * an every-type evaluation shows different photographs with different corruptions (one draw each: the first rows).
 */
export function gridIndices(samples: readonly Sample[], rows: number): number[] {
  const byId = new Map<string, number[]>();
  samples.forEach((s, i) => {
    const l = byId.get(s.id);
    if (l) l.push(i);
    else byId.set(s.id, [i]);
  });
  return [...byId.values()].slice(0, rows).map((l, k) => l[k % l.length]!);
}

/** The first `count` readable samples of a dataset split, in index order. */
export async function firstSamples(dataset: { size: number; get(i: number): Promise<Sample | null> }, count: number): Promise<Sample[]> {
  const out: Sample[] = [];
  for (let i = 0; i < dataset.size && out.length < count; i++) {
    const s = await dataset.get(i);
    if (s) out.push(s);
  }
  return out;
}
