// Round 30 (drgrpo30): the population std of each GRPO group's 8 scalar rewards at a warm start, as the
// single-process loop (lib/local/single-process.ts) computes them for the sweep's dense arm at its first steps: the
// same config (weight30's settings, sft.steps=0 as compare.ts's GRPO arm), the same cursors (grpoCursors), noise
// seeds (rolloutNoiseSeed), rollout (PolicyRunner), scorer and reward expression (rewardsOf). No training.
// Usage: node --import tsx docs/results/drgrpo30/group_std.ts --warm FILE --seed N [--steps 64]
// Prints the mean, median and quartiles of the groups' std, and per corruption type.
import { parseArgs } from 'node:util';
import { loadConfig } from '../../../lib/config/index.ts';
import { openRunDataset } from '../../../lib/config/dataset.ts';
import { loadCheckpoint } from '../../../lib/checkpoint/index.ts';
import { paramShapesOf, initialParamsOf } from '../../../lib/models/bundle.ts';
import { PolicyRunner } from '../../../lib/models/runner.ts';
import { RewardScorer } from '../../../lib/models/scorer.ts';
import { compileAlgorithm, rewardsOf } from '../../../lib/grpo/algorithm.ts';
import { groupSampleId, grpoCursors, rolloutNoiseSeed } from '../../../lib/grpo/sampling.ts';
import { clamp01, toCHWFloat } from '../../../lib/data/image.ts';
import { standardNormal } from '../../../lib/data/random.ts';

const { values: a } = parseArgs({ options: { warm: { type: 'string' }, seed: { type: 'string' }, steps: { type: 'string', default: '64' } } });
if (!a.seed) throw new Error('usage: group_std.ts --warm FILE|init --seed N [--steps 64]');
const config = loadConfig(undefined, ['sft.loss=psnr', 'grpo.beta=0.05', 'grpo.ema=0.999', 'grpo.emaWarmup=true', 'eval.everyVersions=100',
  'model.family=gaussian', `run.seed=${a.seed}`, 'sft.steps=0', 'grpo.steps=1000000', 'grpo.advantageMode=dense']);
const params = !a.warm || a.warm === 'init' ? initialParamsOf(config) : (await loadCheckpoint(a.warm, { expectedShapes: paramShapesOf(config) })).params;
const algo = compileAlgorithm(config);
const H = config.data.size;
const pix = 3 * H * H;
const G = config.grpo.groupSize;
const dataset = await openRunDataset(config, 'train');
const runner = await PolicyRunner.create(config);
const scorer = new RewardScorer(config.reward);
const stds: number[] = [];
const byType = new Map<string, number[]>();
for (let k = 0; k < Number(a.steps); k++) {
  for (const cursor of grpoCursors(config, k)) {
    const smp = await dataset.sample(cursor);
    const sampleId = groupSampleId(cursor, smp.id);
    const image = toCHWFloat(smp.corrupted);
    const clean = toCHWFloat(smp.clean);
    const images = new Float32Array(G * pix);
    const noise = new Float32Array(G * pix);
    const refs = new Float32Array(G * pix);
    for (let i = 0; i < G; i++) {
      images.set(image, i * pix);
      refs.set(clean, i * pix);
      noise.set(standardNormal(pix, rolloutNoiseSeed(config.run.seed, sampleId, i)), i * pix);
    }
    const roll = await runner.run(params, images, noise, G);
    const sc = await scorer.score({ candidates: clamp01(roll.action), references: refs, n: G, height: H, width: H }, false);
    const r = rewardsOf(algo, Array.from({ length: G }, (_, i) => ({ ssim: sc.ssim[i]!, clip_cos: sc.clip_cos[i]! })));
    const m = r.reduce((s, x) => s + x, 0) / G;
    const sd = Math.sqrt(r.reduce((s, x) => s + (x - m) ** 2, 0) / G);
    stds.push(sd);
    const t = smp.corruption.type;
    byType.set(t, [...(byType.get(t) ?? []), sd]);
  }
}
const q = (xs: number[], p: number) => { const s = [...xs].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))]!; };
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
console.log(`seed ${a.seed} warm ${a.warm ?? 'init'}: ${stds.length} groups of ${G}; group reward std mean ${mean(stds).toFixed(5)} median ${q(stds, 0.5).toFixed(5)} quartiles ${q(stds, 0.25).toFixed(5)} ${q(stds, 0.75).toFixed(5)} min ${Math.min(...stds).toFixed(5)} max ${Math.max(...stds).toFixed(5)}`);
for (const [t, xs] of [...byType].sort()) console.log(`  ${t.padEnd(24)} n ${String(xs.length).padStart(3)} mean std ${mean(xs).toFixed(5)}`);
