// The demo's training without its processes: the single-process loop (which trains exactly what the
// pipeline trains, test/e2e/parity.test.ts) with the demo's SFT and GRPO steps, then identity, the warm start
// and the final policy evaluated on the validation split (held-out training scenes, data.valImages) and, with
// --eval, on the evaluation split as the demo reports it. Prints reward / SSIM / PSNR, the per-type and
// per-level reward differences and the worst do-no-harm row. Settings are chosen on the validation split.
//
//   node --import tsx scripts/demo-probe.ts [--seed N] [--eval] [--val-draws 6] [--json out.json] [key=value ...]
//   (the data.valImages=... override sets the validation split; e.g. data.valImages=8)
import { writeFile } from 'node:fs/promises';
import { loadConfig } from '../lib/config/index.ts';
import { openRunDataset } from '../lib/config/dataset.ts';
import { evaluate, firstSamples, type EvalReport } from '../lib/eval/evaluate.ts';
import { runSingleProcess } from '../lib/local/single-process.ts';
import { DEMO_GRPO_STEPS, DEMO_OVERRIDES, DEMO_SFT_STEPS } from '../lib/local/demo-defaults.ts';

const args = process.argv.slice(2);
let seed = 0;
let withEval = false;
let jsonOut: string | undefined;
let valDraws = 6;
const overrides: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--seed') seed = Number(args[++i]);
  else if (a === '--eval') withEval = true;
  else if (a === '--json') jsonOut = args[++i];
  else if (a === '--val-draws') valDraws = Number(args[++i]);
  else if (a.includes('=')) overrides.push(a);
  else throw new Error(`demo-probe: unknown argument ${JSON.stringify(a)}`);
}
if (!Number.isInteger(seed)) throw new Error('demo-probe: --seed takes an integer');

const config = loadConfig(undefined, [...DEMO_OVERRIDES, `sft.steps=${DEMO_SFT_STEPS}`, `grpo.steps=${DEMO_GRPO_STEPS}`, ...overrides, `run.seed=${seed}`]);
const t0 = performance.now();
const run = await runSingleProcess(config);
const seconds = (performance.now() - t0) / 1000;
const policies = {
  identity: { kind: 'identity' as const },
  sft: { kind: 'mean' as const, params: run.sftParams },
  grpo: { kind: 'mean' as const, params: run.params },
};

const f = (x: number) => x.toFixed(4);
const sign = (x: number) => (x >= 0 ? '+' : '') + x.toFixed(3);
const worst = (id: EvalReport, p: EvalReport) => {
  let w = { key: '', d: Infinity, n: 0 };
  for (const [k, s] of [...Object.entries(id.byType), ...Object.entries(id.byLevel)]) {
    const d = ((p.byType[k] ?? p.byLevel[k])!.reward) - s.reward;
    if (d < w.d) w = { key: k, d, n: s.count };
  }
  return w;
};
const out: Record<string, unknown> = { seed, overrides, seconds, sftSteps: run.sftSteps, grpoSteps: run.grpoSteps };
const show = async (name: string, split: 'val' | 'eval') => {
  const ds = await openRunDataset(config, split);
  // The few validation photographs each get several corruption draws (epochs); evaluation is as the demo's.
  const samples = split === 'eval' ? await firstSamples(ds, ds.size) : [];
  for (let epoch = 0; split === 'val' && epoch < valDraws; epoch++) {
    for (let i = 0; i < ds.size; i++) {
      const s = await ds.get(i, epoch);
      if (s) samples.push(s);
    }
  }
  const r = (await evaluate(config, samples, policies)).reports;
  const [id, sft, grpo] = [r.identity!, r.sft!, r.grpo!];
  console.log(`${name} (${samples.length}): reward ${f(id.reward)} / ${f(sft.reward)} / ${f(grpo.reward)}; SSIM ${f(id.ssim)} / ${f(sft.ssim)} / ${f(grpo.ssim)}; PSNR ${id.psnr.toFixed(2)} / ${sft.psnr.toFixed(2)} / ${grpo.psnr.toFixed(2)}`);
  console.log(`  GRPO - identity per type: ${Object.entries(id.byType).map(([k, s]) => `${k} ${sign(grpo.byType[k]!.reward - s.reward)}`).join(', ')}`);
  console.log(`  per level: ${Object.entries(id.byLevel).map(([k, s]) => `${k} ${sign(grpo.byLevel[k]!.reward - s.reward)}`).join(', ')}`);
  const ws = worst(id, sft);
  const wg = worst(id, grpo);
  console.log(`  worst row: SFT ${ws.key} ${sign(ws.d)} (${ws.n}), GRPO ${wg.key} ${sign(wg.d)} (${wg.n})`);
  out[split] = { identity: id, sft, grpo, worstSft: ws, worstGrpo: wg };
};
await show('validation photographs', 'val');
if (withEval) await show('evaluation photographs', 'eval');
console.log(`[seed ${seed} ${overrides.join(' ') || 'defaults'}] ${run.sftSteps} SFT + ${run.grpoSteps} GRPO steps in ${seconds.toFixed(0)} s`);
if (jsonOut) await writeFile(jsonOut, JSON.stringify(out, null, 1));
