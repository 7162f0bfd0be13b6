// Round 29 (scanlines29): trains the warm start `sweep --methods` trains for one seed with round 28's settings
// (lib/experiments/compare.ts warmStart: the overrides, model.family, run.seed, sft.steps, grpo.steps=0, in
// that order) and saves it as the sweep would (warm-gaussian-seed<k>-sft<n>.safetensors), so its sha256 can be
// compared with round 28's (docs/results/method-compare-warm28/command.txt).
// Usage: node --import tsx scripts/scanlines29-warm.ts SEED SFT_STEPS OUT_FILE
import { loadConfig } from '../lib/config/index.ts';
import { runSingleProcess } from '../lib/local/single-process.ts';
import { saveCheckpoint } from '../lib/checkpoint/index.ts';

export const WARM28_OVERRIDES = ['sft.loss=psnr', 'grpo.beta=0.05', 'grpo.ema=0.999', 'grpo.emaWarmup=true', 'eval.everyVersions=100'];

const [seedArg, stepsArg, out] = process.argv.slice(2);
if (!seedArg || !stepsArg || !out) throw new Error('usage: scanlines29-warm.ts SEED SFT_STEPS OUT_FILE');
const config = loadConfig(undefined, [...WARM28_OVERRIDES, 'model.family=gaussian', `run.seed=${seedArg}`, `sft.steps=${stepsArg}`, 'grpo.steps=0']);
const t = process.cpuUsage();
const r = await runSingleProcess(config, { log: (l) => console.log(l) });
await saveCheckpoint(out, r.checkpoint);
const c = process.cpuUsage(t);
console.log(`warm start seed ${seedArg}: ${r.sftSteps} SFT steps, ${((c.user + c.system) / 1e6).toFixed(0)} CPU s, ${out}`);
