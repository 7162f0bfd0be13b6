// How a warm start moves the policy away from identity, without the rest of the pipeline: SFT only (the
// single-process loop, grpo.steps=0), then identity vs the warm start on (a) 128 px crops of the *training*
// photographs with fresh corruptions (epochs 1000-1003, never trained on: the over-fitting check that needs no
// evaluation photograph) and (b) the first 64 evaluation photographs, whole, drawn as the run's evaluation draws
// (eval.draws: every corruption type on each photograph by default). Prints reward, SSIM, PSNR and the
// per-type / per-level reward difference. docs/data-history.md ("Why the first photo defaults harmed the photographs") lists what it measured.
//
//   node --import tsx scripts/warm-start-probe.ts STEPS [key=value ...]   e.g. 300 sft.loss=l2 sft.lr=1e-3
import { loadConfig } from '../lib/config/index.ts';
import { openRunDataset } from '../lib/config/dataset.ts';
import type { Sample } from '../lib/data/dataset.ts';
import { configEvalSamples, evaluate, imageCount, type EvalReport } from '../lib/eval/evaluate.ts';
import { runSingleProcess } from '../lib/local/single-process.ts';

const [stepsArg, ...overrides] = process.argv.slice(2);
const steps = Number(stepsArg);
if (!Number.isInteger(steps) || steps <= 0) throw new Error(`warm-start-probe: the first argument must be the SFT steps (a positive integer), got ${JSON.stringify(stepsArg)}`);

const config = await loadConfig(undefined, [...overrides, `sft.steps=${steps}`, 'grpo.steps=0']);
const t0 = performance.now();
const run = await runSingleProcess(config);
const seconds = (performance.now() - t0) / 1000;

const cropConfig = await loadConfig(undefined, [...overrides, 'data.size=128']);
const train = await openRunDataset(cropConfig, 'train');
const trainCrops: Sample[] = [];
for (let epoch = 1000; epoch < 1004; epoch++) {
  for (let i = 0; i < train.size; i++) {
    const s = await train.get(i, epoch);
    if (s) trainCrops.push(s);
  }
}
const evalSamples = await configEvalSamples(config, { count: 64 });
const policies = { identity: { kind: 'identity' as const }, sft: { kind: 'mean' as const, params: run.sftParams } };

const f = (x: number) => x.toFixed(4);
const diffs = (a: Record<string, { reward: number }>, b: Record<string, { reward: number }>) =>
  Object.entries(a).map(([k, s]) => `${k} ${(b[k]!.reward - s.reward >= 0 ? '+' : '') + (b[k]!.reward - s.reward).toFixed(3)}`).join(', ');
const show = (name: string, id: EvalReport, sft: EvalReport) => {
  console.log(`${name}: reward identity ${f(id.reward)} / warm start ${f(sft.reward)}; SSIM ${f(id.ssim)} / ${f(sft.ssim)}; PSNR ${id.psnr.toFixed(2)} / ${sft.psnr.toFixed(2)} dB`);
  console.log(`  warm start - identity per type: ${diffs(id.byType, sft.byType)}`);
  console.log(`  per level: ${diffs(id.byLevel, sft.byLevel)}`);
};
const onCrops = (await evaluate(cropConfig, trainCrops, policies)).reports;
show(`training photographs, ${trainCrops.length} fresh 128 px crops`, onCrops.identity!, onCrops.sft!);
const onEval = (await evaluate(config, evalSamples, policies)).reports;
show(`evaluation photographs, ${imageCount(evalSamples)} whole (${evalSamples.length} draws)`, onEval.identity!, onEval.sft!);
console.log(`[${overrides.join(' ') || 'defaults'}] ${steps} SFT steps in ${seconds.toFixed(0)} s`);
