// Trains the committed PyTorch export (test/fixtures/pytorch/restoration-net) through the single-process loop,
// SFT then GRPO, and prints the evaluation reward of the start, the SFT end, the result and the identity, with
// the settings of test/import/pytorch.test.ts (docs/import.md reports its output):
//   node --import tsx scripts/pytorch/train-restoration-net.ts [SFT_STEPS=20] [GRPO_STEPS=4] ['key=value ...']
import { join } from 'node:path';
import { loadConfig } from '../../lib/config/index.ts';
import { openRunDataset } from '../../lib/config/dataset.ts';
import { runSingleProcess } from '../../lib/local/single-process.ts';
import { evaluate, firstSamples } from '../../lib/eval/evaluate.ts';
import { checkNetworkOf, initialParamsOf } from '../../lib/models/bundle.ts';

async function main(): Promise<void> {
  const fixture = join(import.meta.dirname, '../../test/fixtures/pytorch/restoration-net');
  const [sft = '20', grpo = '4', extra = ''] = process.argv.slice(2);
  const config = loadConfig(undefined, [
    'data.size=16', 'data.source.kind=procedural', 'data.source.count=32', 'sft.batchSize=4', 'grpo.groupSize=4', 'grpo.samplesPerBatch=2',
    'grpo.maxStaleness=0', 'grpo.advantageMode=scalar', 'eval.samples=8', 'eval.everyVersions=0', 'sft.lr=3e-3', 'optim.lr=1e-4',
    `model.network.onnx=${fixture}.onnx`, `model.network.weights=${fixture}.safetensors`, ...extra.split(' ').filter(Boolean),
    `sft.steps=${sft}`, `grpo.steps=${grpo}`, 'run.id=pytorch',
  ]);
  await checkNetworkOf(config); // the fixture's start-up check, before its first use (initialParamsOf, evaluate)
  const samples = await firstSamples(await openRunDataset(config, 'eval'), config.eval.samples);
  const start = initialParamsOf(config);
  const t0 = performance.now();
  const r = await runSingleProcess(config, { params: initialParamsOf(config) });
  const seconds = (performance.now() - t0) / 1000;
  const ev = await evaluate(config, samples, { start: { kind: 'mean', params: start }, sft: { kind: 'mean', params: r.sftParams }, final: { kind: 'mean', params: r.params }, identity: { kind: 'identity' } });
  console.log(`${sft} SFT + ${grpo} GRPO steps in ${seconds.toFixed(1)} s; evaluation on ${samples.length} images:`);
  console.log('| policy | reward | SSIM | PSNR |\n| --- | --- | --- | --- |');
  for (const [k, v] of Object.entries(ev.reports)) console.log(`| ${k} | ${v.reward.toFixed(4)} | ${v.ssim.toFixed(4)} | ${v.psnr.toFixed(2)} |`);
}

void main();
