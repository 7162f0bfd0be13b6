// The demo's training without its processes: the single-process loop (which trains exactly what the
// pipeline trains, test/e2e/parity.test.ts) with the demo's SFT and GRPO steps, then identity, the warm start
// and the final policy evaluated on the validation split (held-out training scenes, data.valImages) and, with
// --eval, on the evaluation split as the demo reports it. Prints reward / SSIM / PSNR, the per-type and
// per-level reward differences and the worst do-no-harm row. Settings are chosen on the validation split.
//
//   node --import tsx scripts/demo-probe.ts [--seed N] [--eval] [--val-draws 6] [--every K] [--json out.json] [key=value ...]
//   (the data.valImages=... override sets the validation split; e.g. data.valImages=8)
//   Both splits are drawn as eval.draws says (default every-type: each photograph once per corruption type, levels
//   from (seed, photograph, type)); with eval.draws=one each validation photograph gets --val-draws seeded draws
//   (epochs 0..N-1, rounds 3-6) and each evaluation photograph one.
//   --save-warm-start F writes the warm start (safetensors, with the settings that made it); --warm-start F
//   starts from it instead of repeating the SFT steps (refused unless seed, data, model and sft settings match):
//   the GRPO phase is then the one the full probe trains, so GRPO settings are compared from one warm start.
//   --ema D1,D2 (with --warm-start): also evaluates moving averages of the GRPO weights with these decays
//   (lib/optim/ema.ts without its warm-up, started at the warm start, one update per trained GRPO batch), at
//   every --every snapshot and at the end, as `emaD@K` in the curve; --ema-warmup D1,... the same with the
//   warm-up min(D, k / (k + 9)) (as sft.ema), as `emawD@K` (round 9).
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfig } from '../lib/config/index.ts';
import { openRunDataset } from '../lib/config/dataset.ts';
import { evalSamples, evaluate, type EvalReport } from '../lib/eval/evaluate.ts';
import { formatPaired, pairedRows } from '../lib/eval/paired.ts';
import { runSingleProcess } from '../lib/local/single-process.ts';
import { cloneTensorMap, type TensorMap } from '../lib/checkpoint/tensors.ts';
import { decodeSafetensors, encodeSafetensors } from '../lib/checkpoint/safetensors.ts';
import { canonicalJson } from '../lib/checkpoint/digest.ts';
import { checkNetworkOf, initialParamsOf } from '../lib/models/bundle.ts';
import { ParamEma } from '../lib/optim/ema.ts';
import { DEMO_GRPO_STEPS, DEMO_OVERRIDES, DEMO_SFT_STEPS } from '../lib/local/demo-defaults.ts';

// Node's own argument parser; key=value overrides are the positionals (an unknown --flag is refused by name).
const { values, positionals } = parseArgs({
  options: {
    seed: { type: 'string', default: '0' },
    eval: { type: 'boolean', default: false },
    json: { type: 'string' },
    'val-draws': { type: 'string', default: '6' },
    every: { type: 'string', default: '0' },
    'warm-start': { type: 'string' },
    'save-warm-start': { type: 'string' },
    ema: { type: 'string' },
    'ema-warmup': { type: 'string' },
  },
  allowPositionals: true,
});
const seed = Number(values.seed);
const withEval = values.eval;
const jsonOut = values.json;
const valDraws = Number(values['val-draws']);
const every = Number(values.every);
const overrides = positionals.map((a) => {
  if (!a.includes('=')) throw new Error(`demo-probe: unknown argument ${JSON.stringify(a)}`);
  return a;
});
if (!Number.isInteger(seed)) throw new Error('demo-probe: --seed takes an integer');

const config = loadConfig(undefined, [...DEMO_OVERRIDES, `sft.steps=${DEMO_SFT_STEPS}`, `grpo.steps=${DEMO_GRPO_STEPS}`, ...overrides, `run.seed=${seed}`]);
await checkNetworkOf(config); // an imported network (an override's model.network): its start-up check, before any use
const t0 = performance.now();
// The loop trains `params` in place: snapshots every --every GRPO steps are evaluated on the validation split too.
// What made the warm start: a saved one is used only for the same seed, data, model and SFT settings.
const warmKey = canonicalJson({ seed, data: config.data, model: config.model, sft: config.sft, reward: config.reward });
let params = initialParamsOf(config);
const warmFile = values['warm-start'];
if (warmFile) {
  const saved = decodeSafetensors(new Uint8Array(await readFile(warmFile)), warmFile);
  if (saved.metadata.warm_start !== warmKey) {
    throw new Error(`demo-probe: ${warmFile} was made with other settings than these (seed, data, model, sft, reward):\n  file: ${saved.metadata.warm_start}\n  now:  ${warmKey}`);
  }
  for (const [k, t] of params) {
    const w = saved.tensors.get(k);
    if (!w || w.data.length !== t.data.length) throw new Error(`demo-probe: ${warmFile} has no tensor ${k} of ${t.data.length} elements`);
  }
  params = new Map([...params].map(([k, t]) => [k, { shape: [...t.shape], data: saved.tensors.get(k)!.data }]));
}
const snapshots = new Map<number, TensorMap>();
// --ema: the averages start at the warm start and take one update per applied GRPO step (onStep is called
// only after a trained batch, as grpo.ema's update).
const decays = (v: string | undefined) => (v ? v.split(',').map(Number) : []);
const emas = [
  ...decays(values.ema).map((d) => ({ name: `ema${d}`, ema: new ParamEma(params, d, { warmup: false }) })),
  ...decays(values['ema-warmup']).map((d) => ({ name: `emaw${d}`, ema: new ParamEma(params, d) })),
];
if (emas.length > 0 && !warmFile) throw new Error('demo-probe: --ema needs --warm-start (the averages start at the warm start)');
const emaSnapshots = new Map<string, TensorMap>();
const run = await runSingleProcess(config, {
  params,
  sftDone: warmFile !== undefined,
  onStep: (st) => {
    for (const e of emas) e.ema.update(params);
    if (every > 0 && st.step % every === 0 && st.step < config.grpo.steps) {
      snapshots.set(st.step, cloneTensorMap(params));
      for (const e of emas) emaSnapshots.set(`${e.name}@${st.step}`, cloneTensorMap(e.ema.shadow));
    }
  },
});
for (const e of emas) emaSnapshots.set(`${e.name}@${run.grpoSteps}`, cloneTensorMap(e.ema.shadow));
const seconds = (performance.now() - t0) / 1000;
if (values['save-warm-start']) await writeFile(values['save-warm-start'], encodeSafetensors(run.sftParams, { warm_start: warmKey }));
const policies = {
  identity: { kind: 'identity' as const },
  sft: { kind: 'mean' as const, params: run.sftParams },
  grpo: { kind: 'mean' as const, params: run.params },
};
const snapshotPolicies = Object.fromEntries([
  ...[...snapshots].map(([k, p]) => [`grpo@${k}`, { kind: 'mean' as const, params: p }] as const),
  ...[...emaSnapshots].map(([k, p]) => [k, { kind: 'mean' as const, params: p }] as const),
]);

const f = (x: number) => x.toFixed(4);
const sign = (x: number) => (x >= 0 ? '+' : '') + x.toFixed(3);
// The worst type or level row of p - identity: its draws (n), photographs and 95% paired interval over them.
const worst = (id: EvalReport, p: EvalReport) => {
  let w = { key: '', d: Infinity, n: 0, images: 0, ci: '' };
  const paired = pairedRows(p, id);
  for (const [k, s] of [...Object.entries(id.byType), ...Object.entries(id.byLevel)]) {
    const d = ((p.byType[k] ?? p.byLevel[k])!.reward) - s.reward;
    const row = paired.byType[k] ?? paired.byLevel[k]!;
    if (d < w.d) w = { key: k, d, n: s.count, images: row.images, ci: formatPaired(row) };
  }
  return w;
};
const out: Record<string, unknown> = { seed, overrides, ...(warmFile ? { warmStart: warmFile } : {}), seconds, sftSteps: run.sftSteps, grpoSteps: run.grpoSteps };
const show = async (name: string, split: 'val' | 'eval') => {
  const ds = await openRunDataset(config, split);
  // every-type: both splits as the demo's evaluation. one: the few validation photographs each get several
  // corruption draws (epochs), the evaluation photographs one (rounds 3-6).
  const everyType = config.eval.draws === 'every-type';
  const samples = split === 'eval' || everyType ? await evalSamples(ds, ds.size, config.eval.draws) : [];
  for (let epoch = 0; split === 'val' && !everyType && epoch < valDraws; epoch++) {
    for (let i = 0; i < ds.size; i++) {
      const s = await ds.get(i, epoch);
      if (s) samples.push(s);
    }
  }
  const r = (await evaluate(config, samples, split === 'val' ? { ...policies, ...snapshotPolicies } : policies, { keep: [] })).reports;
  const [id, sft, grpo] = [r.identity!, r.sft!, r.grpo!];
  if (split === 'val' && Object.keys(snapshotPolicies).length > 0) {
    const curve = Object.keys(snapshotPolicies).map((k) => `${k} ${f(r[k]!.reward)} (worst ${sign(worst(id, r[k]!).d)})`);
    console.log(`  GRPO on the way: ${curve.join(', ')}`);
    out.curve = Object.fromEntries(Object.keys(snapshotPolicies).map((k) => [k, { reward: r[k]!.reward, ssim: r[k]!.ssim, psnr: r[k]!.psnr, worst: worst(id, r[k]!) }]));
  }
  console.log(`${name} (${samples.length}): reward ${f(id.reward)} / ${f(sft.reward)} / ${f(grpo.reward)}; SSIM ${f(id.ssim)} / ${f(sft.ssim)} / ${f(grpo.ssim)}; PSNR ${id.psnr.toFixed(2)} / ${sft.psnr.toFixed(2)} / ${grpo.psnr.toFixed(2)}`);
  console.log(`  GRPO - identity per type: ${Object.entries(id.byType).map(([k, s]) => `${k} ${sign(grpo.byType[k]!.reward - s.reward)}`).join(', ')}`);
  console.log(`  per level: ${Object.entries(id.byLevel).map(([k, s]) => `${k} ${sign(grpo.byLevel[k]!.reward - s.reward)}`).join(', ')}`);
  const ws = worst(id, sft);
  const wg = worst(id, grpo);
  console.log(`  worst row: SFT ${ws.key} ${ws.ci} (${ws.images} photographs, ${ws.n} draws), GRPO ${wg.key} ${wg.ci} (${wg.images} photographs, ${wg.n} draws)`);
  out[split] = { identity: id, sft, grpo, worstSft: ws, worstGrpo: wg };
};
await show('validation photographs', 'val');
if (withEval) await show('evaluation photographs', 'eval');
console.log(`[seed ${seed} ${overrides.join(' ') || 'defaults'}] ${run.sftSteps} SFT + ${run.grpoSteps} GRPO steps in ${seconds.toFixed(0)} s`);
if (jsonOut) await writeFile(jsonOut, JSON.stringify(out, null, 1));
