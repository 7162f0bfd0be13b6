// Round 34's control for the mechanism (docs/results/flow34/results.md): does a random drift of the weights lower the
// network's gain as Flow-GRPO does? The same AdamW (the run's optim settings: lr 1e-4, betas, weight decay, clip) fed
// pure noise, independent N(0, 1) gradients scaled to a global norm of 0.03 (Flow-GRPO's scalar gradient norm,
// 0.026-0.037), for STEPS steps from the warm start; the weights are saved every SAVE steps, then measured with
// reach.ts. It also prints how far the weights moved (rms over all parameters of the change), beside any other
// checkpoints given (Flow-GRPO's, at the same step), so the drifts compare in size.
//
//   node --import tsx docs/results/flow34/adam-noise.ts WARM.safetensors STEPS SAVE OUT_PREFIX [OTHER.safetensors ...]
import { loadCheckpoint, saveCheckpoint } from '../../../lib/checkpoint/index.ts';
import { cloneTensorMap, type TensorMap } from '../../../lib/checkpoint/tensors.ts';
import { loadConfig } from '../../../lib/config/index.ts';
import { standardNormal, hashSeed } from '../../../lib/data/random.ts';
import { paramShapesOf } from '../../../lib/models/bundle.ts';
import { AdamW, adamWOptionsFromConfig } from '../../../lib/optim/index.ts';

const [warm, stepsArg, saveArg, prefix, ...others] = process.argv.slice(2);
if (!warm || !stepsArg || !saveArg || !prefix) throw new Error('usage: adam-noise.ts WARM STEPS SAVE OUT_PREFIX [OTHER ...]');
const FLOW32 = ['data.size=32', 'data.evalSize=48', 'flow.steps=8', 'flow.evalSteps=10', 'flow.predict=residual', 'flow.start=corrupted', 'flow.startT=0.4', 'model.family=flow', 'run.seed=60'];
const config = loadConfig(undefined, FLOW32);
const shapes = paramShapesOf(config);
const start = (await loadCheckpoint(warm, { expectedShapes: shapes })).params;
const params = cloneTensorMap(start);
const opt = new AdamW(params, adamWOptionsFromConfig(config.optim));
const total = [...params.values()].reduce((n, p) => n + p.data.length, 0);
const moved = (p: TensorMap) => {
  let s = 0;
  for (const [name, t] of p) { const w = start.get(name)!.data; for (let i = 0; i < t.data.length; i++) s += (t.data[i]! - w[i]!) ** 2; }
  return Math.sqrt(s / total);
};
const steps = Number(stepsArg);
const save = Number(saveArg);
for (let k = 1; k <= steps; k++) {
  const grads: TensorMap = new Map();
  for (const [name, p] of params) {
    const g = standardNormal(p.data.length, hashSeed(k, name, 'adam-noise'));
    for (let i = 0; i < g.length; i++) g[i] *= 0.03 / Math.sqrt(total);
    grads.set(name, { shape: [...p.shape], data: g });
  }
  const r = opt.step(grads);
  if (!r.applied) throw new Error(r.reason);
  if (k % save === 0) {
    await saveCheckpoint(`${prefix}-step${k}.safetensors`, { meta: { runId: 'adam-noise', version: k, step: k, lastBatchId: null, configHash: '' }, params: cloneTensorMap(params) });
    console.log(`noise step ${k}: rms change of the weights ${moved(params).toExponential(3)}`);
  }
}
for (const f of others) console.log(`${f}: rms change of the weights ${moved((await loadCheckpoint(f, { expectedShapes: shapes })).params).toExponential(3)}`);
