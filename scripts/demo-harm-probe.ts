// Where GRPO's groups lie against identity: for GRPO's first groups (the training stream the demo's GRPO
// reads), the warm start's G sampled actions are scored beside the identity (the corrupted image itself) and
// beside the policy mean (no noise). Per corruption type: how often identity beats every action of the group
// (the whole group below it), beats none, or falls inside the group's range; and the mean of identity minus
// the group's mean reward and minus the noise-free mean's reward. A reward penalty against identity
// (r - lambda * max(0, r_identity - r)) changes a group's standardised advantages only where identity falls
// inside the group's range: below every action it is an affine map of the group's rewards, which
// (r - mean) / std removes; this measures how often that is.
//
//   node --import tsx scripts/demo-harm-probe.ts [--seed N] [--groups 200] [key=value ...]
import { parseArgs } from 'node:util';
import { loadConfig } from '../lib/config/index.ts';
import { openRunDataset } from '../lib/config/dataset.ts';
import { runSingleProcess } from '../lib/local/single-process.ts';
import { clamp01, toCHWFloat } from '../lib/data/image.ts';
import { standardNormal } from '../lib/data/random.ts';
import { compileAlgorithm, rewardsOf } from '../lib/grpo/algorithm.ts';
import { meanStd } from '../lib/grpo/advantages.ts';
import { groupSampleId, grpoCursors, rolloutNoiseSeed } from '../lib/grpo/sampling.ts';
import { PolicyRunner } from '../lib/models/runner.ts';
import { RewardScorer } from '../lib/models/scorer.ts';
import { DEMO_OVERRIDES, DEMO_SFT_STEPS } from '../lib/local/demo-defaults.ts';

// Node's own argument parser; key=value overrides are the positionals (an unknown --flag is refused by name).
const { values, positionals } = parseArgs({
  options: { seed: { type: 'string', default: '0' }, groups: { type: 'string', default: '200' } },
  allowPositionals: true,
});
const seed = Number(values.seed);
const groups = Number(values.groups);
const overrides = positionals.map((a) => {
  if (!a.includes('=')) throw new Error(`demo-harm-probe: unknown argument ${JSON.stringify(a)}`);
  return a;
});
const config = loadConfig(undefined, [...DEMO_OVERRIDES, `sft.steps=${DEMO_SFT_STEPS}`, 'grpo.steps=0', ...overrides, `run.seed=${seed}`]);
const warm = await runSingleProcess(config);
const algo = compileAlgorithm(config);
const H = config.data.size;
const pix = 3 * H * H;
const G = config.grpo.groupSize;
const dataset = await openRunDataset(config, 'train');
const runner = await PolicyRunner.create(config);
const scorer = new RewardScorer(config.reward);
type Row = { n: number; allBelow: number; allAbove: number; inside: number; idMinusGroup: number; idMinusMean: number; std: number };
const rows = new Map<string, Row>();
for (let k = 0, done = 0; done < groups; k++) {
  for (const cursor of grpoCursors(config, k)) {
    if (done++ >= groups) break;
    const smp = await dataset.sample(cursor);
    const sampleId = groupSampleId(cursor, smp.id);
    const image = toCHWFloat(smp.corrupted);
    const clean = toCHWFloat(smp.clean);
    const n = G + 2;
    const images = new Float32Array(G * pix);
    const noise = new Float32Array(G * pix);
    for (let a = 0; a < G; a++) {
      images.set(image, a * pix);
      noise.set(standardNormal(pix, rolloutNoiseSeed(config.run.seed, sampleId, a)), a * pix);
    }
    const roll = await runner.run(warm.params, images, noise, G);
    // G actions, the noise-free mean, the identity
    const candidates = new Float32Array(n * pix);
    const references = new Float32Array(n * pix);
    candidates.set(clamp01(roll.action));
    candidates.set(clamp01(roll.mean.subarray(0, pix)), G * pix);
    candidates.set(image, (G + 1) * pix);
    for (let a = 0; a < n; a++) references.set(clean, a * pix);
    const sc = await scorer.score({ candidates, references, n, height: H, width: H }, false);
    const r = rewardsOf(algo, Array.from({ length: n }, (_, a) => ({ ssim: sc.ssim[a]!, clip_cos: sc.clip_cos[a]! })));
    const acts = r.slice(0, G);
    const [rMean, rId] = [r[G]!, r[G + 1]!];
    const row = rows.get(smp.corruption.type) ?? { n: 0, allBelow: 0, allAbove: 0, inside: 0, idMinusGroup: 0, idMinusMean: 0, std: 0 };
    row.n++;
    if (rId > Math.max(...acts)) row.allBelow++;
    else if (rId < Math.min(...acts)) row.allAbove++;
    else row.inside++;
    row.idMinusGroup += rId - acts.reduce((s, x) => s + x, 0) / G;
    row.idMinusMean += rId - rMean;
    row.std += meanStd(acts).std;
    rows.set(smp.corruption.type, row);
  }
}
await runner.release();
await scorer.close();
const total: Row = { n: 0, allBelow: 0, allAbove: 0, inside: 0, idMinusGroup: 0, idMinusMean: 0, std: 0 };
console.log('| corruption type | groups | identity above every action | inside the group | below every action | identity - group mean | identity - policy mean | group reward std |');
console.log('|---|---|---|---|---|---|---|---|');
for (const [t, x] of [...rows].sort()) {
  for (const key of Object.keys(total) as (keyof Row)[]) total[key] += x[key];
  console.log(`| ${t} | ${x.n} | ${x.allBelow} | ${x.inside} | ${x.allAbove} | ${(x.idMinusGroup / x.n).toFixed(4)} | ${(x.idMinusMean / x.n).toFixed(4)} | ${(x.std / x.n).toExponential(1)} |`);
}
console.log(`| all | ${total.n} | ${total.allBelow} | ${total.inside} | ${total.allAbove} | ${(total.idMinusGroup / total.n).toFixed(4)} | ${(total.idMinusMean / total.n).toFixed(4)} | ${(total.std / total.n).toExponential(1)} |`);
console.log(`[seed ${seed} ${overrides.join(' ') || 'defaults'}] warm start ${warm.sftSteps} SFT steps; ${total.n} groups of ${G}`);
