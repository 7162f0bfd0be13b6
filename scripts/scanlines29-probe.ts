// Round 29 (scanlines29, docs/results/scanlines29/): from a kept warm start, train one arm as `sweep --methods`
// trains it (lib/experiments/compare.ts: GRPO with sft.steps=0 and unbounded grpo.steps until the budget clock
// reaches the budget; continued SFT; direct reward backprop), then evaluate the warm start and the trained policy,
// each as its mean (what the sweep reports) and as one sampled action (fixed eval noise, lib/eval/evaluate.ts),
// on the evaluation photographs with every-type draws of the given types. Writes per-draw scores and the GRPO
// training rewards to a JSON file; scripts/scanlines29-summary.py turns them into paired intervals.
// Usage: node --import tsx scripts/scanlines29-probe.ts --warm FILE --seed N --arm dense|scalar|sft|backprop|none
//          [--budget 60] [--train-types all|t1,t2] [--eval-types scan_lines,...] [--set key=value]... --out FILE.json
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfig, type RunConfig } from '../lib/config/index.ts';
import { loadCheckpoint } from '../lib/checkpoint/index.ts';
import { cloneTensorMap, type TensorMap } from '../lib/checkpoint/tensors.ts';
import { paramShapesOf } from '../lib/models/bundle.ts';
import { runRewardBackprop, runSingleProcess } from '../lib/local/single-process.ts';
import { configEvalSamples, evaluate, type EvalReport } from '../lib/eval/evaluate.ts';

const WARM28_OVERRIDES = ['sft.loss=psnr', 'grpo.beta=0.05', 'grpo.ema=0.999', 'grpo.emaWarmup=true', 'eval.everyVersions=100'];
const { values: a } = parseArgs({
  options: {
    warm: { type: 'string' }, seed: { type: 'string' }, arm: { type: 'string' }, budget: { type: 'string', default: '60' },
    'train-types': { type: 'string', default: 'all' }, 'eval-types': { type: 'string', default: 'scan_lines,sharpness_change,gaussian_noise' },
    set: { type: 'string', multiple: true, default: [] }, out: { type: 'string' },
  },
});
if (!a.warm || !a.seed || !a.arm || !a.out) throw new Error('usage: scanlines29-probe.ts --warm FILE --seed N --arm dense|scalar|sft|backprop|none [--budget S] [--train-types all|a,b] [--eval-types a,b] [--set k=v]... --out FILE.json');
const arm = a.arm;
if (!['dense', 'scalar', 'sft', 'backprop', 'none'].includes(arm)) throw new Error(`--arm: unknown '${arm}'`);
// A list override is JSON (data.corruptions.types=[scan_lines] is refused: the override parser reads YAML-free JSON).
const typesOverride = (t: string) => (t === 'all' ? 'data.corruptions.types=all' : `data.corruptions.types=${JSON.stringify(t.split(','))}`);
const base = [...WARM28_OVERRIDES, 'model.family=gaussian', ...(a.set ?? []), `run.seed=${a.seed}`];
const cfg = (extra: string[]): RunConfig => loadConfig(undefined, [...base, ...extra]);
const UNBOUNDED = 1_000_000;
const budgetSeconds = Number(a.budget);
const evalConfig = cfg([typesOverride(a['eval-types']!)]);
const warm = (await loadCheckpoint(a.warm, { expectedShapes: paramShapesOf(evalConfig) })).params;
// sigma is the parameter log_std (kept in the checkpoint, not trained at model.learnLogStd false): a
// --set model.logStd=X replaces the warm start's (else the checkpoint's log(0.01) would win over the override).
if ((a.set ?? []).some((x) => x.startsWith('model.logStd='))) {
  const t = warm.get('log_std');
  if (!t) throw new Error('the warm start has no log_std parameter');
  warm.set('log_std', { ...t, data: Float32Array.from([evalConfig.model.logStd]) });
}

const trainTypes = typesOverride(a['train-types']!);
const t0 = process.cpuUsage();
let trained: { params: TensorMap; steps: number; rewards: number[] } | null = null;
if (arm === 'backprop') {
  const r = await runRewardBackprop(cfg([trainTypes, 'sft.steps=0']), { params: cloneTensorMap(warm), steps: UNBOUNDED, budgetSeconds, budgetClock: 'cpu' });
  trained = { params: r.params, steps: r.steps, rewards: r.rewards };
} else if (arm === 'sft') {
  const r = await runSingleProcess(cfg([trainTypes, `sft.steps=${UNBOUNDED}`, 'grpo.steps=0']), { params: cloneTensorMap(warm), budgetSeconds, budgetClock: 'cpu' });
  trained = { params: r.params, steps: r.sftSteps, rewards: [] };
} else if (arm !== 'none') {
  const r = await runSingleProcess(cfg([trainTypes, 'sft.steps=0', `grpo.steps=${UNBOUNDED}`, `grpo.advantageMode=${arm}`]), { params: cloneTensorMap(warm), budgetSeconds, budgetClock: 'cpu' });
  trained = { params: r.params, steps: r.grpoSteps, rewards: r.rewards };
}
const c = process.cpuUsage(t0);
const trainCpu = (c.user + c.system) / 1e6;

const samples = await configEvalSamples(evalConfig);
const policies = {
  identity: { kind: 'identity' as const },
  start_mean: { kind: 'mean' as const, params: warm },
  start_sampled: { kind: 'sampled' as const, params: warm },
  ...(trained ? { final_mean: { kind: 'mean' as const, params: trained.params }, final_sampled: { kind: 'sampled' as const, params: trained.params } } : {}),
};
const ev = await evaluate(evalConfig, samples, policies, { keep: [] });
const strip = (r: EvalReport) => ({ reward: r.reward, ssim: r.ssim, psnr: r.psnr, byType: r.byType, perSample: r.perSample });
const out = {
  args: a, overrides: base, arm, steps: trained?.steps ?? 0, trainCpuSeconds: trainCpu, trainRewards: trained?.rewards ?? [],
  sigma: Math.exp(evalConfig.model.logStd), reports: Object.fromEntries(Object.entries(ev.reports).map(([k, r]) => [k, strip(r)])),
};
await writeFile(a.out, JSON.stringify(out));
const t = (k: string) => ev.reports[k]?.byType['scan_lines']?.reward.toFixed(4) ?? '-';
console.log(`${arm} seed ${a.seed} train ${a['train-types']} ${(a.set ?? []).join(' ')}: ${trained?.steps ?? 0} steps ${trainCpu.toFixed(0)} CPU s; scan_lines reward mean start ${t('start_mean')} final ${t('final_mean')}, sampled start ${t('start_sampled')} final ${t('final_sampled')} -> ${a.out}`);
