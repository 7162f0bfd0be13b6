// The flow family's SFT curve on a validation split taken from the TRAINING photographs (never the evaluation
// split): the 10 training photographs of the built-in split are written to a manifest, and that manifest's
// own seeded group split (data.evalImages=VAL) holds VAL or more of them out as validation. The warm start
// trains on the rest through the same SFT step as the pipeline (FlowTrainer.sftStep, sftCursors, the
// configured lr schedule); every EVERY steps the ODE evaluation scores the held-out photographs, whole, under
// K corruptions each (epochs 0..K-1), against identity. Prints one line per point and writes JSON.
//
//   node --import tsx scripts/flow/sft-curve.ts STEPS EVERY OUT.json [key=value ...]
//   e.g. nice -n 10 node --import tsx scripts/flow/sft-curve.ts 1200 200 runs/flow-val/noise.json \
//          data.size=32 data.evalSize=48 flow.evalSteps=10 sft.lr=1e-3
//   env VAL (default 2) held-out photographs at least, K (default 8) corruptions per photograph;
//   EVAL_STEPS (e.g. 1,4) also scores ODEs of these step counts at every point (reward only).
//   EVAL_CORRUPTED (e.g. 0.3,0.5) also scores the SDEdit-style sampler from the corrupted image at these start
//   levels (flow.start=corrupted, flow.startT; the same network: the start changes only the sampler).
//   With sft.ema=D every point scores the weights' moving average (the published warm start) and also the
//   trained weights themselves ("without EMA").
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadConfig } from '../../lib/config/index.ts';
import { openRunDataset } from '../../lib/config/dataset.ts';
import type { Sample } from '../../lib/data/dataset.ts';
import { stackPairs } from '../../lib/data/image.ts';
import { PHOTO_MANIFEST, parsePhotoManifest, splitPhotoGroups } from '../../lib/data/photos.ts';
import { evaluate, type Scores } from '../../lib/eval/evaluate.ts';
import { FlowTrainer } from '../../lib/flow/family.ts';
import { sftCursors } from '../../lib/grpo/sampling.ts';
import { checkNetworkOf, initialParamsOf } from '../../lib/models/bundle.ts';
import { sftLearningRate } from '../../lib/optim/schedule.ts';

const [stepsArg, everyArg, outArg, ...overrides] = process.argv.slice(2);
const steps = Number(stepsArg);
const every = Number(everyArg);
if (!Number.isInteger(steps) || steps <= 0) throw new Error(`sft-curve: STEPS must be a positive integer, got ${JSON.stringify(stepsArg)}`);
if (!Number.isInteger(every) || every <= 0) throw new Error(`sft-curve: EVERY must be a positive integer, got ${JSON.stringify(everyArg)}`);
if (!outArg?.endsWith('.json')) throw new Error(`sft-curve: OUT must be a .json path, got ${JSON.stringify(outArg)}`);
const val = Number(process.env.VAL ?? 2);
const K = Number(process.env.K ?? 8);
const extraEvalSteps = (process.env.EVAL_STEPS ?? '').split(',').filter(Boolean).map(Number);
if (extraEvalSteps.some((k) => !Number.isInteger(k) || k < 1)) throw new Error(`sft-curve: EVAL_STEPS must be positive integers, got ${process.env.EVAL_STEPS}`);
const extraStartT = (process.env.EVAL_CORRUPTED ?? '').split(',').filter(Boolean).map(Number);
if (extraStartT.some((t) => !(t > 0 && t < 1))) throw new Error(`sft-curve: EVAL_CORRUPTED must be start levels in (0, 1), got ${process.env.EVAL_CORRUPTED}`);

// The built-in split's training photographs (splitSeed 0, evalImages 64: the defaults every run uses).
const text = readFileSync(PHOTO_MANIFEST, 'utf8');
const entries = parsePhotoManifest(text, PHOTO_MANIFEST);
const split = splitPhotoGroups(entries, 64, 0);
const lines = text.split(/\r?\n/).filter((l) => l.trim() && split.get(JSON.parse(l).id) === 'train');
mkdirSync(dirname(outArg), { recursive: true });
const manifest = join(dirname(outArg), 'training-photos.jsonl');
writeFileSync(manifest, lines.join('\n') + '\n');

const config = await loadConfig(undefined, [
  'model.family=flow', ...overrides, `data.source.path=${manifest}`, `data.evalImages=${val}`, `sft.steps=${steps}`, 'grpo.steps=0',
]);
await checkNetworkOf(config); // an imported network (an override's model.network): its start-up check, before any use
const train = await openRunDataset(config, 'train');
const held = await openRunDataset(config, 'eval');
const samples: Sample[] = [];
for (let e = 0; e < K; e++) for (let i = 0; i < held.size; i++) {
  const s = await held.get(i, e);
  if (s) samples.push(s);
}
console.log(`training photographs: ${train.size} for training, ${held.size} held out (${samples.length} validation samples, whole at evalSize ${config.data.evalSize ?? '-'})`);

// The size of what the residual space scales (flow.space=residual, flow.scale): the std of clean - corrupted
// over the first 4 SFT batches (image units).
{
  let sum = 0, sq = 0, cnt = 0;
  for (let s = 1; s <= 4; s++) {
    const batch = [];
    for (const c of sftCursors(config, s)) batch.push(await train.sample(c));
    const { corrupted, clean } = stackPairs(batch);
    for (let i = 0; i < clean.length; i++) { const d = clean[i]! - corrupted[i]!; sum += d; sq += d * d; cnt++; }
  }
  const m = sum / cnt;
  console.log(`clean - corrupted over 4 training batches: mean ${m.toFixed(4)}, std ${Math.sqrt(sq / cnt - m * m).toFixed(4)} (image units)`);
}

const params = initialParamsOf(config);
const trainer = FlowTrainer.create(config, params);
const identity = (await evaluate(config, samples, { identity: { kind: 'identity' } })).reports.identity!;
const fmt = (s: Scores) => `reward ${s.reward.toFixed(4)} ssim ${s.ssim.toFixed(4)} psnr ${s.psnr.toFixed(2)}`;
console.log(`identity: ${fmt(identity)}`);
const points: Array<{ step: number; seconds: number; loss: number; reward_by_eval_steps?: Record<string, number>; corrupted_start?: Record<string, Scores>; raw?: Scores } & Scores> = [];
// With sft.ema the point scores the moving average (what SFT publishes) and, as `raw`, the trained weights.
const scored = trainer.sftEma?.shadow ?? params;
const evalAt = async (step: number, seconds: number, loss: number) => {
  const r = (await evaluate(config, samples, { policy: { kind: 'mean', params: scored } })).reports.policy!;
  const raw = trainer.sftEma ? (await evaluate(config, samples, { policy: { kind: 'mean', params } })).reports.policy! : undefined;
  const { reward, ssim, clip_cos, psnr, count } = r;
  const byEvalSteps: Record<string, number> = {};
  for (const k of extraEvalSteps) {
    const c = { ...config, flow: { ...config.flow, evalSteps: k } };
    byEvalSteps[k] = (await evaluate(c, samples, { policy: { kind: 'mean', params: scored } })).reports.policy!.reward;
  }
  const byStart: Record<string, Scores> = {};
  for (const t0 of extraStartT) {
    const c = { ...config, flow: { ...config.flow, start: 'corrupted' as const, startT: t0 } };
    byStart[t0] = (await evaluate(c, samples, { policy: { kind: 'mean', params: scored } })).reports.policy!;
  }
  points.push({ step, seconds, loss, reward, ssim, clip_cos, psnr, count, ...(extraEvalSteps.length ? { reward_by_eval_steps: byEvalSteps } : {}), ...(extraStartT.length ? { corrupted_start: byStart } : {}), ...(raw ? { raw } : {}) });
  const extra = extraEvalSteps.map((k) => ` | ${k}-step ODE reward ${byEvalSteps[k]!.toFixed(4)}`).join('') + extraStartT.map((t0) => ` | from corrupted at t ${t0}: ${fmt(byStart[t0]!)}`).join('') + (raw ? ` | without EMA: ${fmt(raw)}` : '');
  console.log(`step ${step} (${seconds.toFixed(0)} s training) loss(last ${every}) ${loss.toFixed(4)}: ${fmt(r)}${extra}`);
  writeFileSync(outArg, JSON.stringify({ overrides, steps, every, val: held.size, samples: samples.length, identity, points }, null, 2));
};
await evalAt(0, 0, NaN);
let trainMs = 0;
let lossSum = 0;
for (let s = 1; s <= steps; s++) {
  const t = performance.now();
  const batch = [];
  for (const c of sftCursors(config, s)) batch.push(await train.sample(c));
  const { corrupted, clean } = stackPairs(batch);
  const lr = sftLearningRate(config.sft, s);
  const r = await trainer.sftStep(corrupted, clean, config.sft.batchSize, lr);
  lossSum += r.loss;
  trainMs += performance.now() - t;
  if (s % every === 0) {
    await evalAt(s, trainMs / 1000, lossSum / every);
    lossSum = 0;
  }
}
await trainer.release();
