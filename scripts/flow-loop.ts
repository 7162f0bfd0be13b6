// Runs the flow family's single-process Flow-GRPO loop (lib/flow/train-loop.ts) at tiny sizes on the
// procedural dataset and prints the evaluation SSIM before and after each stage, as JSON on the last line.
//   node --import tsx scripts/flow-loop.ts [--size 16] [--sft 300] [--grpo 40] [--mode scalar|dense] [--seed 0]
import { parseArgs } from 'node:util';
import { parseConfig } from '../lib/config/index.ts';
import { runFlowLoop } from '../lib/flow/train-loop.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '16' },
    sft: { type: 'string', default: '300' },
    grpo: { type: 'string', default: '40' },
    mode: { type: 'string', default: 'scalar' },
    seed: { type: 'string', default: '0' },
    sampler: { type: 'string', default: 'sde' },
    start: { type: 'string', default: 'noise' },
    'start-t': { type: 'string', default: '0.6' },
    'eval-sweep': { type: 'string', default: '' },
  },
});
const int = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be an integer >= 0, got ${v}`);
  return n;
};
const mode = values.mode;
if (mode !== 'scalar' && mode !== 'dense') throw new Error(`--mode must be scalar or dense, got ${mode}`);
const sampler = values.sampler;
if (sampler !== 'sde' && sampler !== 'cps') throw new Error(`--sampler must be sde or cps, got ${sampler}`);

const start = values.start;
if (start !== 'noise' && start !== 'corrupted') throw new Error(`--start must be noise or corrupted, got ${start}`);
const startT = Number(values['start-t']);
if (!(startT > 0 && startT <= 1)) throw new Error(`--start-t must lie in (0, 1], got ${values['start-t']}`);
const size = int('size', values.size);
const config = parseConfig({
  run: { seed: int('seed', values.seed) },
  grpo: { groupSize: 8, clipLow: 1e-4, clipHigh: 1e-4, beta: 0, advantageMode: mode },
  data: { size, source: { kind: 'procedural', count: 128 } } });
const t0 = performance.now();
const result = await runFlowLoop(
  config,
  {
    model: { arch: 'unet', width: 16, depth: 2, timeFrequencies: 8, timeWidth: 32 },
    sampler: { type: sampler, steps: 8, a: sampler === 'sde' ? 0.7 : 0.5, shift: 3, window: { size: 2, start: 'random' }, start, startT },
    evalSteps: 20,
    evalStepsSweep: values['eval-sweep'] ? values['eval-sweep'].split(',').map((k) => int('eval-sweep', k)) : [],
    evalItems: 16,
    sft: { steps: int('sft', values.sft), batchSize: 16, lr: 2e-3 },
    grpo: { steps: int('grpo', values.grpo), samplesPerBatch: 2, lr: 1e-4 },
  },
  (l) => console.log(l),
);
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ size, mode, sampler, start, startT: start === 'noise' ? 1 : startT, seconds: Number(seconds.toFixed(1)), evalSsim: result.evalSsim, evalSweep: result.evalSweep, sftLossLast: result.sftLoss.at(-1), rewardFirst10: avg(result.grpo.slice(0, 10).map((l) => l.reward)), rewardLast10: avg(result.grpo.slice(-10).map((l) => l.reward)) }));

function avg(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}
