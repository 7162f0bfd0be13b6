// Round 33's estimator check (docs/results/flow33/results.md, "Diagnosis"): what the dense and the scalar Flow-GRPO
// gradients estimate, against finite differences, for one direction per channel: shifting the state after a
// trained SDE step by delta in every pixel of channel c (flow space). With the reward R = mean SSIM of the final
// image (clamped, as scored), the true derivative is d E[R] / d delta; the policy-gradient estimators of it are
// (per action i of a group, eps the step's noise, std its std, A_i = R_i - mean_g R, D_i = S_i - mean_g S the
// centred SSIM map, spread onto pixels as the dense GRPO graph does):
//   scalar_c = mean_i A_i sum_{e in c} eps_i(e) / std          (Flow-GRPO: one advantage per action)
//   dense_c  = mean_i sum_{e in c} spread(D_i)(e) eps_i(e) / std  (dense: each pixel its own advantage)
// Both equal (1 - 1/G) d E[R] / d delta in expectation if the estimator is unbiased (the group mean includes
// the action itself). finite_c = (E[R](+delta) - E[R](-delta)) / (2 delta), the same rollouts replayed from the
// shifted state with the same noise.
//
//   node --import tsx docs/results/flow33/estimator-check.ts PARAMS.safetensors GROUPS [delta] [key=value ...]
// delta 0: the estimators only (no finite differences), for many groups.
import { loadCheckpoint } from '../../../lib/checkpoint/index.ts';
import { loadConfig } from '../../../lib/config/index.ts';
import { openRunDataset } from '../../../lib/config/dataset.ts';
import { clamp01, toCHWFloat } from '../../../lib/data/image.ts';
import { hashSeed, rng } from '../../../lib/data/random.ts';
import { GraphSession } from '../../../lib/graph/runtime.ts';
import { paramFeeds } from '../../../lib/models/feeds.ts';
import { paramShapesOf, policyModel } from '../../../lib/models/bundle.ts';
import { RewardScorer } from '../../../lib/models/scorer.ts';
import { gaussianWindow1d, ssimMapSize } from '../../../lib/models/ssim.ts';
import { spreadToPixels } from '../../../lib/grpo/advantages.ts';
import { groupSampleId, grpoCursors, rolloutNoiseSeed } from '../../../lib/grpo/sampling.ts';
import { flowRolloutPlan } from '../../../lib/flow/family.ts';
import { fromFlowSpace, startNoise, stepNoise, toFlowSpace } from '../../../lib/flow/rollout.ts';
import { sdeCoefficients } from '../../../lib/flow/sampler.ts';
import type { PlannedStep } from '../../../lib/flow/sampler.ts';

const [file, groupsArg, deltaArg, ...sets] = process.argv.slice(2);
if (!file || !groupsArg) throw new Error('usage: estimator-check.ts PARAMS GROUPS [delta] [key=value ...]');
const FLOW32 = ['data.size=32', 'data.evalSize=48', 'flow.steps=8', 'flow.evalSteps=10', 'flow.predict=residual', 'flow.start=corrupted', 'flow.startT=0.4', 'model.family=flow', 'run.seed=60', 'sft.steps=800'];
const config = loadConfig(undefined, [...FLOW32, ...sets]);
if (config.flow.space !== 'image' || config.flow.sde.type !== 'sde') throw new Error('this check is written for flow.space image and the sde sampler');
const params = (await loadCheckpoint(file, { expectedShapes: paramShapesOf(config) })).params;
const delta = Number(deltaArg ?? 0.02);
const H = config.data.size;
const hw = H * H;
const pix = 3 * hw;
const G = config.grpo.groupSize;
const h = ssimMapSize(H);
const mapLen = 3 * h * h;
const window1d = gaussianWindow1d();
const session = await GraphSession.create(policyModel(config));
const scorer = new RewardScorer(config.reward);
const train = await openRunDataset(config, 'train');
const dims = [G, 3, H, H];
const rowFeed = (v: number) => ({ data: new Float32Array(G).fill(v), dims: [G] });

/** The plan from `from` on (state x before step `from`), the trained step `shiftAt`'s output plus `shift` [G,3,H,W]. */
const channelShift = (c: number, v: number) => { const d = new Float32Array(G * pix); for (let i = 0; i < G; i++) d.fill(v, i * pix + c * hw, i * pix + (c + 1) * hw); return d; };
async function run(plan: PlannedStep[], y: Float32Array, x0: Float32Array, seeds: number[], from: number, shiftAt: number, shift: Float32Array | null): Promise<{ image: Float32Array; states: Float32Array[] }> {
  let x = x0;
  const states: Float32Array[] = [];
  for (const s of plan.slice(from)) {
    const eps = new Float32Array(G * pix);
    if (s.a > 0) seeds.forEach((seed, i) => eps.set(stepNoise(seed, s.index, pix), i * pix));
    const out = await session.run({ ...paramFeeds(params), y: { data: y, dims }, x: { data: x, dims }, t: rowFeed(s.t), t_next: rowFeed(s.tNext), a: rowFeed(s.a), eps: { data: eps, dims } }, ['x_next']);
    x = out.x_next.data.slice();
    if (s.index === shiftAt && shift) for (let j = 0; j < x.length; j++) x[j] += shift[j]!;
    states.push(x);
  }
  return { image: fromFlowSpace(x), states };
}

const ssimOf = async (image: Float32Array, clean: Float32Array, maps: boolean) => scorer.score({ candidates: clamp01(image), references: clean, n: G, height: H, width: H }, maps);
const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0) / xs.length;

// acc[step slot][channel]: sums over groups of the three per-pixel quantities
type Acc = { scalar: number[]; dense: number[]; finite: number[]; scalarSq: number[]; denseSq: number[] };
const acc: Acc[] = [];
const transfer: number[][] = [];
const sizes = { pixel: 0, scalar: 0 };
const local: Array<{ diagonal: number; total: number }> = [];
const groups = Number(groupsArg);
let trainedIndices: number[] = [];
for (let gIdx = 0; gIdx < groups; gIdx++) {
  const cursor = grpoCursors(config, Math.floor(gIdx / config.grpo.samplesPerBatch))[gIdx % config.grpo.samplesPerBatch]!;
  const smp = await train.sample(cursor);
  const id = groupSampleId(cursor, smp.id);
  const corrupted = toCHWFloat(smp.corrupted);
  const cleanOne = toCHWFloat(smp.clean);
  const clean = new Float32Array(G * pix);
  const y = new Float32Array(G * pix);
  const yOne = toFlowSpace(corrupted);
  for (let i = 0; i < G; i++) { clean.set(cleanOne, i * pix); y.set(yOne, i * pix); }
  const seeds = Array.from({ length: G }, (_, i) => rolloutNoiseSeed(config.run.seed, id, i));
  const plan = flowRolloutPlan(config, id);
  const t0 = plan[0]!.t;
  const x0 = new Float32Array(G * pix);
  seeds.forEach((seed, i) => { const e = startNoise(seed, pix); for (let j = 0; j < pix; j++) x0[i * pix + j] = (1 - t0) * yOne[j]! + t0 * e[j]!; });
  const base = await run(plan, y, x0, seeds, 0, -1, null);
  const sc = await ssimOf(base.image, clean, true);
  const R = Array.from(sc.ssim);
  const Rm = mean(R);
  const maps = sc.ssim_map!;
  const meanMap = new Float32Array(mapLen);
  for (let i = 0; i < G; i++) for (let l = 0; l < mapLen; l++) meanMap[l] += maps[i * mapLen + l]! / G;
  const spread = Array.from({ length: G }, (_, i) => {
    const D = new Float32Array(mapLen);
    for (let l = 0; l < mapLen; l++) D[l] = maps[i * mapLen + l]! - meanMap[l]!;
    return spreadToPixels(D, 3, h, h, window1d);
  });
  // the per-pixel advantage's size against the scalar one's: rms over pixels of spread(D_i), rms over actions of A_i
  for (let i = 0; i < G; i++) {
    let sq = 0;
    for (let j = 0; j < pix; j++) sq += spread[i]![j]! ** 2;
    sizes.pixel += sq / pix / (G * groups);
    sizes.scalar += (R[i]! - Rm) ** 2 / (G * groups);
  }
  const trained = plan.filter((s) => s.trained);
  trainedIndices = trained.map((s) => s.index);
  for (const [slot, s] of trained.entries()) {
    acc[slot] ??= { scalar: [0, 0, 0], dense: [0, 0, 0], finite: [0, 0, 0], scalarSq: [0, 0, 0], denseSq: [0, 0, 0] };
    const std = sdeCoefficients(s.t, s.tNext, s.a).std;
    // pixel-level credit: a random +-delta per element after the step; the final image's response at the same
    // element (the Jacobian's diagonal, what a per-element advantage assumes) against its response elsewhere
    transfer[slot] ??= [0, 0, 0];
    local[slot] ??= { diagonal: 0, total: 0 };
    if (delta > 0) {
    const r = rng(hashSeed(gIdx, s.index, 'probe'));
    const probe = Float32Array.from({ length: G * pix }, () => (r.float() < 0.5 ? -delta : delta));
    {
      const pos0 = plan.findIndex((p) => p.index === s.index);
      const before0 = pos0 === 0 ? x0 : (await run(plan.slice(0, pos0), y, x0, seeds, 0, -1, null)).states.at(-1)!;
      const im = (await run(plan, y, before0, seeds, pos0, s.index, probe)).image;
      let diag = 0;
      let total = 0;
      for (let j = 0; j < G * pix; j++) { const d = (im[j]! - base.image[j]!) / delta; diag += (d * probe[j]!) / delta; total += d * d; }
      local[slot]!.diagonal += diag / (G * pix) / groups;
      local[slot]!.total += total / (G * pix) / groups;
    }
    }
    const pos = plan.findIndex((p) => p.index === s.index);
    for (let c = 0; c < 3; c++) {
      let sc1 = 0;
      let de1 = 0;
      for (let i = 0; i < G; i++) {
        const eps = stepNoise(seeds[i]!, s.index, pix);
        let sumEps = 0;
        let sumDense = 0;
        for (let p = 0; p < hw; p++) { const e = eps[c * hw + p]!; sumEps += e; sumDense += spread[i]![c * hw + p]! * e; }
        sc1 += ((R[i]! - Rm) * sumEps) / std / G;
        de1 += sumDense / std / G;
      }
      const a = acc[slot]!;
      a.scalar[c] += sc1; a.dense[c] += de1;
      a.scalarSq[c] += sc1 * sc1; a.denseSq[c] += de1 * de1;
      if (delta === 0) continue;
      // finite differences: replay from the state before the trained step with its output shifted by +-delta
      const before = pos === 0 ? x0 : (await run(plan.slice(0, pos), y, x0, seeds, 0, -1, null)).states.at(-1)!;
      const imPlus = (await run(plan, y, before, seeds, pos, s.index, channelShift(c, delta))).image;
      const imMinus = (await run(plan, y, before, seeds, pos, s.index, channelShift(c, -delta))).image;
      const plus = mean((await ssimOf(imPlus, clean, false)).ssim);
      const minus = mean((await ssimOf(imMinus, clean, false)).ssim);
      // how much of the uniform shift reaches the final image's channel c (image units per flow-space unit; 0.5 = all of it)
      let moved = 0;
      for (let i = 0; i < G; i++) for (let p = 0; p < hw; p++) moved += (imPlus[i * pix + c * hw + p]! - imMinus[i * pix + c * hw + p]!) / (2 * delta);
      transfer[slot]![c] += moved / (G * hw) / groups;
      a.finite[c] += (plus - minus) / (2 * delta);
    }
  }
}
const se = (sum: number, sq: number) => Math.sqrt(Math.max(0, sq / groups - (sum / groups) ** 2) / (groups - 1));
const f = (x: number) => (x >= 0 ? '+' : '') + x.toExponential(2);
console.log(`params ${file}, ${groups} groups of ${G}, delta ${delta}; per channel R/G/B: mean over groups (± standard error for the estimators); estimators x G/(G-1)`);
console.log(`advantage size (before the group std's normalisation, which both share): rms per pixel of spread(D) ${Math.sqrt(sizes.pixel).toExponential(2)}, rms of the scalar A ${Math.sqrt(sizes.scalar).toExponential(2)}, ratio ${Math.sqrt(sizes.pixel / sizes.scalar).toFixed(1)}`);
acc.forEach((a, slot) => {
  const k = G / (G - 1);
  const row = (name: string, sum: number[], sq?: number[]) => `  ${name.padEnd(8)} ${sum.map((s, c) => `${f((s / groups) * (sq ? k : 1))}${sq ? ` ± ${se(s, sq[c]!) * k < 0 ? '' : (se(s, sq[c]!) * k).toExponential(1)}` : ''}`).join('   ')}`;
  console.log(`trained step ${trainedIndices[slot]} (slot ${slot}):`);
  console.log(row('finite', a.finite));
  console.log(row('scalar', a.scalar, a.scalarSq));
  console.log(row('dense', a.dense, a.denseSq));
  console.log(`  shift reaching the image (0.5 = all) ${transfer[slot]!.map((x) => x.toFixed(3)).join('/')}; random per-element probe: same-element response ${local[slot]!.diagonal.toFixed(3)} (0.5 = the image follows the state pixel for pixel), mean squared response ${local[slot]!.total.toFixed(3)}`);
  console.log(`  ratio    scalar/finite ${a.scalar.map((x, c) => ((x * k) / a.finite[c]!).toFixed(2)).join('/')}   dense/finite ${a.dense.map((x, c) => ((x * k) / a.finite[c]!).toFixed(2)).join('/')}`);
});
await session.release();
await scorer.close();
