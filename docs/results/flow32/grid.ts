// Description only (round 32, flow32; written after the first two seeds' results were read): a grid of one seed's
// flow warm start and its three 240-s arms on 6 evaluation photographs (the sweep's every-type draws, gridIndices),
// from the weights the sweep kept. `recovery-grpo eval` refuses flow checkpoints (it checks them against the Gaussian
// policy's shapes), so this evaluates them with lib/eval/evaluate.ts as the sweep does.
// usage: node --import tsx docs/results/flow32/grid.ts SEED OUT.png
import { loadConfig } from '../../../lib/config/index.ts';
import { loadCheckpoint } from '../../../lib/checkpoint/index.ts';
import { paramShapesOf } from '../../../lib/models/bundle.ts';
import { configEvalSamples, evaluate, gridIndices, outputImage, type Policy } from '../../../lib/eval/evaluate.ts';
import { renderGrid } from '../../../lib/eval/grid.ts';
import { writeImage } from '../../../lib/data/image.ts';

const seed = Number(process.argv[2]);
const out = process.argv[3];
if (!Number.isInteger(seed) || !out) throw new Error('usage: grid.ts SEED OUT.png');
const config = loadConfig(undefined, [
  'data.size=32', 'data.evalSize=48', 'flow.steps=8', 'flow.evalSteps=10', 'flow.predict=residual', 'flow.start=corrupted',
  'flow.startT=0.4', 'model.family=flow', 'sft.steps=800', 'sft.lr=3e-4', 'sft.ema=0.999', `run.seed=${seed}`, 'eval.samples=32',
]);
const dir = 'runs/f32/base';
const files: Record<string, string> = {
  'warm start': `${dir}/warm-flow-seed${seed}-sft800.safetensors`,
  'scalar GRPO': `${dir}/arm-flow-scalar-seed${seed}.safetensors`,
  'dense GRPO': `${dir}/arm-flow-dense-seed${seed}.safetensors`,
  'more SFT': `${dir}/arm-flow-sft-seed${seed}.safetensors`,
};
const policies: Record<string, Policy> = {};
for (const [name, f] of Object.entries(files)) {
  policies[name] = { kind: 'mean', params: (await loadCheckpoint(f, { expectedShapes: paramShapesOf(config) })).params };
}
const samples = await configEvalSamples(config);
const shown = gridIndices(samples, 6);
const ev = await evaluate(config, samples.filter((_, i) => shown.includes(i)), policies);
const cols = Object.keys(files);
const rows = ev.samples.map((s, i) => ({
  label: s.corruption.type.replace(/_/g, ' '),
  images: [s.corrupted, ...cols.map((c) => outputImage(ev, c, i)), s.clean],
}));
await writeImage(renderGrid(['corrupted', ...cols, 'clean'], rows), out);
for (const c of cols) console.log(`${c}: reward ${ev.reports[c]!.reward.toFixed(4)}, PSNR ${ev.reports[c]!.psnr.toFixed(2)} dB (these ${ev.samples.length} draws)`);
