// Evaluation on a fixed set of samples: each policy's recoveries (the policy mean, or sampled actions)
// and the identity baseline (the corrupted image returned unchanged), scored with the run's reward graph
// and expression, with PSNR beside it; overall, per corruption type and per level.
import type { RunConfig } from '../config/index.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import type { Sample } from '../data/dataset.ts';
import { clamp01, stackPairs } from '../data/image.ts';
import { hashSeed, standardNormal } from '../data/random.ts';
import { compileRewardExpression, rewardConstants } from '../grpo/reward-expression.ts';
import { PolicyRunner } from '../models/runner.ts';
import { FlowRunner, flowSamplerName, isFlowFamily } from '../flow/family.ts';
import { RewardScorer } from '../models/scorer.ts';

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
}

export type Policy = { kind: 'identity' } | { kind: 'mean'; params: TensorMap } | { kind: 'sampled'; params: TensorMap };

export interface EvalResult {
  reports: Record<string, EvalReport>;
  /** Per policy, the recovered images [n,3,H,W] (clamped), for grids. */
  outputs: Record<string, Float32Array>;
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

function summarise(rows: Array<Omit<Scores, 'count'> & { type: string; level: string }>): EvalReport {
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
  return { ...agg(rows), byType: by('type'), byLevel: by('level') };
}

/** Evaluates every policy on the same `samples` (typically the first N of the eval split). */
export async function evaluate(
  config: RunConfig,
  samples: Sample[],
  policies: Record<string, Policy>,
  /** runner / scorer: sessions to reuse (a periodic evaluator keeps them); the caller releases them. */
  opts: { clipModel?: string; runner?: PolicyRunner; scorer?: RewardScorer } = {},
): Promise<EvalResult> {
  if (samples.length === 0) throw new Error('evaluate: no samples (is the eval split empty?)');
  const H = config.data.size;
  const pix = 3 * H * H;
  const n = samples.length;
  const { corrupted, clean } = stackPairs(samples);
  const reward = compileRewardExpression(config.reward.expression, rewardConstants(config.reward));
  const scorer = opts.scorer ?? new RewardScorer(opts.clipModel ? { encoder: 'onnx', clipModel: opts.clipModel } : config.reward, config.reward.device);
  const needsPolicy = Object.values(policies).some((p) => p.kind !== 'identity');
  // The flow family evaluates with the deterministic ODE sampler (flow.evalSteps), 'mean' and 'sampled' alike.
  const flow = isFlowFamily(config);
  const flowRunner = flow && needsPolicy ? await FlowRunner.create(config) : undefined;
  const runner = flow ? undefined : opts.runner ?? (needsPolicy ? await PolicyRunner.create(config) : undefined);
  const reports: Record<string, EvalReport> = {};
  const outputs: Record<string, Float32Array> = {};
  try {
    for (const [name, policy] of Object.entries(policies)) {
      const out = new Float32Array(n * pix);
      for (let b = 0; b < n; b += BATCH) {
        const m = Math.min(BATCH, n - b);
        const images = corrupted.subarray(b * pix, (b + m) * pix);
        if (policy.kind === 'identity') {
          out.set(images, b * pix);
          continue;
        }
        if (flowRunner) {
          out.set(await flowRunner.evaluate(policy.params, images, samples.slice(b, b + m).map((smp) => smp.id)), b * pix);
          continue;
        }
        // Sampled actions use fixed noise per sample, so two evaluations of a policy agree.
        const noise = policy.kind === 'sampled' ? standardNormal(m * pix, hashSeed(config.run.seed, 'eval', b)) : new Float32Array(m * pix);
        const r = await runner!.run(policy.params, images, noise, m);
        out.set(policy.kind === 'sampled' ? r.action : r.mean, b * pix);
      }
      const recovered = clamp01(out);
      const rows = [];
      for (let b = 0; b < n; b += BATCH) {
        const m = Math.min(BATCH, n - b);
        const s = await scorer.score({ candidates: recovered.subarray(b * pix, (b + m) * pix), references: clean.subarray(b * pix, (b + m) * pix), n: m, height: H, width: H });
        for (let i = 0; i < m; i++) {
          const c = { ssim: s.ssim[i], clip_cos: s.clip_cos[i] };
          const smp = samples[b + i];
          rows.push({ ...c, reward: reward.evaluate(c), psnr: psnr(recovered, clean, (b + i) * pix, pix), type: smp.corruption.type, level: String(smp.corruption.level ?? 'unknown') });
        }
      }
      reports[name] = summarise(rows);
      outputs[name] = recovered;
    }
  } finally {
    if (!opts.runner) await runner?.release();
    await flowRunner?.release();
    if (!opts.scorer) await scorer.close();
  }
  const sampler = flow ? flowSamplerName(config) : 'gaussian (policy mean; sampled: mean + sigma * fixed noise)';
  return { reports, outputs, samples, encoder: scorer.encoderName, sampler };
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
