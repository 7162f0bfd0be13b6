// Round 33's diagnostic runs (docs/results/flow33/results.md, "Diagnosis"): flow GRPO from a kept warm start for a
// fixed number of steps (not a time budget, so arms compare step for step), printing every `every` steps the means
// over those steps of the reward, its SSIM, the per-channel error of the rollouts (clamp01(action) - clean, the
// colour cast) and the KL; then the policy mean evaluated on `evalSamples` draws with its per-channel error.
//
//   node --import tsx docs/results/flow33/probe.ts WARM.safetensors STEPS LABEL [--eval N] [--every K] [key=value ...]
//
// key=value are config overrides after the sweep's (round 32's flow settings, seed 60 unless run.seed is given).
// Name grpo.advantageMode: the flow family's default became scalar during this round (runs before that default
// trained dense without it: dense and beta04 in results.md).
import { loadCheckpoint, saveCheckpoint } from '../../../lib/checkpoint/index.ts';
import { cloneTensorMap } from '../../../lib/checkpoint/tensors.ts';
import { loadConfig } from '../../../lib/config/index.ts';
import { runSingleProcess, type SingleProcessStep } from '../../../lib/local/single-process.ts';
import { configEvalSamples, evaluate } from '../../../lib/eval/evaluate.ts';
import { paramShapesOf } from '../../../lib/models/bundle.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  args.splice(i, 2);
  return v;
};
const evalSamples = opt('--eval', 64);
// --save-at K: the weights after GRPO step K (and every K steps after it) into runs/f33/<label>-step<k>.safetensors
const saveAt = opt('--save-at', 0);
const every = opt('--every', 20);
const [warm, stepsArg, label, ...sets] = args;
if (!warm || !stepsArg || !label) throw new Error('usage: probe.ts WARM STEPS LABEL [--eval N] [--every K] [key=value ...]');
const FLOW32 = ['data.size=32', 'data.evalSize=48', 'flow.steps=8', 'flow.evalSteps=10', 'flow.predict=residual', 'flow.start=corrupted', 'flow.startT=0.4', 'model.family=flow', 'run.seed=60'];
const config = loadConfig(undefined, [...FLOW32, 'sft.steps=0', `grpo.steps=${stepsArg}`, `eval.samples=${evalSamples}`, ...sets]);
// the flow family's default mode is scalar since this round (FAMILY_DEFAULTS): every run names what it trained
console.log(`${label}: grpo.advantageMode ${config.grpo.advantageMode}, beta ${config.grpo.beta}, lr ${config.optim.lr}, seed ${config.run.seed}, ${stepsArg} steps`);
const params = (await loadCheckpoint(warm, { expectedShapes: paramShapesOf(config) })).params;
const steps: SingleProcessStep[] = [];
const fmt = (v: number[]) => v.map((x) => (x >= 0 ? '+' : '') + x.toFixed(4)).join('/');
const meanOf = (xs: number[][]) => xs[0]!.map((_, c) => xs.reduce((s, x) => s + x[c]!, 0) / xs.length);
const pending: Promise<unknown>[] = [];
const t0 = process.cpuUsage();
const r = await runSingleProcess(config, {
  params,
  onStep: (s) => {
    steps.push(s);
    // onStep runs after the step's update: params are the weights after step s.step
    if (saveAt > 0 && s.step % saveAt === 0) pending.push(saveCheckpoint(`runs/f33/${label}-step${s.step}.safetensors`, { meta: { runId: label, version: s.step, step: s.step, lastBatchId: null, configHash: '' }, params: cloneTensorMap(params) }));
    if (s.step % every !== 0) return;
    const last = steps.slice(-every);
    const m = (f: (s: SingleProcessStep) => number) => last.reduce((a, s) => a + f(s), 0) / last.length;
    const ssim = last[0]!.channelSsim ? ` rgb ssim ${meanOf(last.map((s) => s.channelSsim!)).map((x) => x.toFixed(4)).join('/')}` : '';
    console.log(`${label} ${s.step} reward ${m((s) => s.reward).toFixed(4)} ssim ${m((s) => s.components.ssim!).toFixed(4)} rgb error ${fmt(meanOf(last.map((s) => s.channelError)))}${ssim} kl ${m((s) => s.kl).toExponential(2)} grad ${m((s) => s.gradNorm).toExponential(2)} clip ${m((s) => s.clipFraction).toFixed(4)}`);
  },
});
const cpu = process.cpuUsage(t0);
await Promise.all(pending);
const samples = await configEvalSamples(config);
const ev = await evaluate(config, samples, { start: { kind: 'mean', params: r.sftParams }, final: { kind: 'mean', params: r.params } });
// Per channel, the mean over the evaluated draws of mean_pixels(output - clean): the cast in the ODE evaluation.
const castOf = (name: string) => {
  const out = ev.outputs[name]!;
  const acc = [0, 0, 0];
  samples.forEach((s, i) => {
    const { width, height, data } = s.clean;
    const hw = width * height;
    for (let c = 0; c < 3; c++) {
      let sum = 0;
      for (let p = 0; p < hw; p++) sum += out[ev.offsets[i]! + c * hw + p]! - data[p * 3 + c]! / 255;
      acc[c] += sum / hw / samples.length;
    }
  });
  return acc;
};
for (const name of ['start', 'final']) {
  const rep = ev.reports[name]!;
  console.log(`${label} eval ${name}: reward ${rep.reward.toFixed(4)} ssim ${rep.ssim.toFixed(4)} psnr ${rep.psnr.toFixed(2)} rgb error ${fmt(castOf(name))} (${samples.length} draws)`);
}
console.log(`${label} done: ${r.grpoSteps} steps, ${((cpu.user + cpu.system) / 1e6).toFixed(0)} CPU s`);
