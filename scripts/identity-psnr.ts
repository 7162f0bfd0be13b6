// Which draws' identity PSNR (the corrupted image against the clean one) is high: the draws that dominate a
// mean of per-image PSNR, where the evaluation's cap (100 dB for MSE 0) sits when a corruption changes nothing
// (hsv_saturation on a grayscale photograph). Validation draws as scripts/demo-probe.ts makes them (6 per
// photograph), evaluation draws as the demo's (eval.draws: every corruption type on each photograph).
//
//   node --import tsx scripts/identity-psnr.ts --seed N --split val|eval [--above 40] [key=value ...]
import { parseArgs } from 'node:util';
import { loadConfig } from '../lib/config/index.ts';
import { openRunDataset } from '../lib/config/dataset.ts';
import { configEvalSamples } from '../lib/eval/evaluate.ts';
import { DEMO_OVERRIDES } from '../lib/local/demo-defaults.ts';

const { values, positionals } = parseArgs({
  options: { seed: { type: 'string', default: '0' }, split: { type: 'string', default: 'val' }, above: { type: 'string', default: '40' } },
  allowPositionals: true,
});
const split = values.split;
if (split !== 'val' && split !== 'eval') throw new Error(`identity-psnr: --split is val or eval, got ${JSON.stringify(split)}`);
for (const a of positionals) if (!a.includes('=')) throw new Error(`identity-psnr: unknown argument ${JSON.stringify(a)}`);
const config = loadConfig(undefined, [...DEMO_OVERRIDES, 'data.valImages=8', ...positionals, `run.seed=${Number(values.seed)}`]);
const ds = await openRunDataset(config, split);
const samples = split === 'eval' ? await configEvalSamples(config, { count: ds.size }) : [];
for (let epoch = 0; split === 'val' && epoch < 6; epoch++) {
  for (let i = 0; i < ds.size; i++) {
    const s = await ds.get(i, epoch);
    if (s) samples.push(s);
  }
}
let shown = 0;
for (const s of samples) {
  const a = s.clean.data;
  const b = s.corrupted.data;
  let se = 0;
  for (let i = 0; i < a.length; i++) se += ((a[i] - b[i]) / 255) ** 2;
  const mse = se / a.length;
  const psnr = mse === 0 ? 100 : 10 * Math.log10(1 / mse);
  if (psnr > Number(values.above)) {
    console.log(`${s.id} ${s.corruption.type} ${s.corruption.level} ${psnr.toFixed(1)} dB`);
    shown++;
  }
}
console.log(`${shown} of ${samples.length} ${split} draws (seed ${values.seed}) above ${values.above} dB`);
