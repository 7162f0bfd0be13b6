// Diagnostic behind "the GRPO KL term jumps" (docs/dense-advantages.md, "Limits"): trains 300 SFT steps and
// 150 dense GRPO steps on seed 0 with the single-process loop, then compares the GRPO and SFT policy means on
// the first 600 training images: the KL term per image group (lens flare by level, everything else), how much
// of it lies outside [0, 1], and the SSIM, embedding-cosine and mean-brightness change.
//   node --import tsx scripts/diagnose-kl.ts      (about a minute here)
import { loadConfig } from '../lib/config/index.ts';
import { runSingleProcess } from '../lib/local/single-process.ts';
import { openRunDataset } from '../lib/config/dataset.ts';
import { PolicyRunner } from '../lib/models/runner.ts';
import { toCHWFloat } from '../lib/data/image.ts';
import { cloneTensorMap } from '../lib/checkpoint/tensors.ts';
import { RewardScorer } from '../lib/models/scorer.ts';
const main = async () => {
  const warm = await runSingleProcess(loadConfig(undefined, ['run.seed=0', 'sft.steps=300', 'grpo.steps=0']));
  const sft = cloneTensorMap(warm.params);
  const config = loadConfig(undefined, ['run.seed=0', 'sft.steps=0', 'grpo.steps=150']);
  const r = await runSingleProcess(config, { params: warm.params });
  const ds = await openRunDataset(config, 'train');
  const runner = await PolicyRunner.create(config);
  const pix = 3 * 32 * 32; const sigma2 = 0.01 ** 2;
  const scorer = new RewardScorer(undefined, 'cpu');
  const by: Record<string, { kl: number; klOut: number; n: number; outRef: number; outCur: number; dS: number; dC: number; meanShift: number }> = {};
  for (let i = 0; i < 600; i++) {
    const s = await ds.sample(i);
    const key = s.corruption.type === 'lens_flare' ? `lens_flare@${(s.corruption.level ?? 0).toFixed(2)}` : 'other';
    const img = toCHWFloat(s.corrupted);
    const a = (await runner.run(r.params, img, new Float32Array(pix), 1)).mean;
    const b = (await runner.run(sft, img, new Float32Array(pix), 1)).mean;
    const cl = (x: Float32Array) => x.map((v) => Math.min(1, Math.max(0, v)));
    const ref = toCHWFloat(s.clean);
    const sa = await scorer.score({ candidates: cl(a), references: ref, n: 1, height: 32, width: 32 }, false);
    const sb = await scorer.score({ candidates: cl(b), references: ref, n: 1, height: 32, width: 32 }, false);
    let mdiff = 0; for (let p = 0; p < pix; p++) mdiff += (a[p]! - b[p]!) / pix;
    let kl = 0, klOut = 0, outRef = 0, outCur = 0;
    for (let p = 0; p < pix; p++) {
      const d = (a[p]! - b[p]!) ** 2 / (2 * sigma2) / pix;
      kl += d;
      const out = b[p]! > 1 || b[p]! < 0 || a[p]! > 1 || a[p]! < 0;
      if (out) klOut += d;
      if (b[p]! > 1 || b[p]! < 0) outRef++;
      if (a[p]! > 1 || a[p]! < 0) outCur++;
    }
    const e = (by[key] ??= { kl: 0, klOut: 0, n: 0, outRef: 0, outCur: 0, dS: 0, dC: 0, meanShift: 0 });
    e.dS += sa.ssim[0]! - sb.ssim[0]!; e.dC += sa.clip_cos[0]! - sb.clip_cos[0]!; e.meanShift += mdiff; e.kl += kl; e.klOut += klOut; e.n++; e.outRef += outRef / pix; e.outCur += outCur / pix;
  }
  for (const [k, e] of Object.entries(by)) console.log(k.padEnd(20), `n ${e.n} kl ${(e.kl / e.n).toFixed(2)}, of which outside [0,1] ${(e.klOut / e.n).toFixed(2)}; pixels outside: sft ${(100 * e.outRef / e.n).toFixed(1)}%, grpo ${(100 * e.outCur / e.n).toFixed(1)}%; GRPO-SFT: ssim ${(e.dS / e.n).toFixed(4)} cos ${(e.dC / e.n).toFixed(4)} mean pixel shift ${(e.meanShift / e.n).toFixed(3)}`);
  await runner.release();
};
main();
