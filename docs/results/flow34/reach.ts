// Round 34's reach probe (docs/results/flow34/results.md, "Mechanism"): how much of a change of the sampler's state
// reaches the final image, step by step, and why. For every step j of a training rollout (the run's own plan: its
// SDE window with its fixed noise, ODE elsewhere) it measures, from finite differences on the step graph:
//
//   gain g_j    how much the network's own estimate of the clean image, x0_hat = x - t v (for every prediction; with
//               predict residual it is y + f), follows the state x at step j: d x0_hat / d x for a uniform shift
//               of one channel (`uniform`) and for a random +-delta per element, its same-element response
//               (`element`). 1 = the estimate moves with the state; 0 = it ignores the state.
//   reach R_j   how much of a shift of the state after step j reaches the final state (the image in flow space,
//               2 image - 1): 1 = all of it, 0 = none (round 33's "shift reaching the image" is R / 2 in image
//               units). Uniform per channel, and same-element for the random probe.
//
// An ODE step is x_next = r x + (1 - r) x0_hat with r = t_next / t (the Euler step with v = (x - x0_hat) / t), so
// its derivative is r + (1 - r) g: the state is carried only by the direct part r, which is 0 on the last step
// (t_next = 0), and by the network's gain. The reach is the product of these factors over the steps after j
// (printed as `product`, from the measured uniform gains, beside the replayed reach).
//
// It also prints the spread of the group's final images (std over the G members, per element, mean over elements and
// groups, flow units): how much of the rollouts' noise (start and SDE steps) reaches what the reward scores.
//
//   node --import tsx docs/results/flow34/reach.ts PARAMS.safetensors GROUPS [key=value ...]
// key=value are config overrides after round 32's flow settings (seed 60), e.g. flow.sde.lastStepSde=true.
import { loadCheckpoint } from '../../../lib/checkpoint/index.ts';
import { loadConfig } from '../../../lib/config/index.ts';
import { openRunDataset } from '../../../lib/config/dataset.ts';
import { toCHWFloat } from '../../../lib/data/image.ts';
import { hashSeed, rng } from '../../../lib/data/random.ts';
import { GraphSession } from '../../../lib/graph/runtime.ts';
import { paramFeeds } from '../../../lib/models/feeds.ts';
import { paramShapesOf, policyModel } from '../../../lib/models/bundle.ts';
import { groupSampleId, grpoCursors, rolloutNoiseSeed } from '../../../lib/grpo/sampling.ts';
import { flowRolloutPlan } from '../../../lib/flow/family.ts';
import { startNoise, stepNoise, toFlowSpace } from '../../../lib/flow/rollout.ts';
import type { PlannedStep } from '../../../lib/flow/sampler.ts';

const [file, groupsArg, ...sets] = process.argv.slice(2);
if (!file || !groupsArg) throw new Error('usage: reach.ts PARAMS GROUPS [key=value ...]');
const FLOW32 = ['data.size=32', 'data.evalSize=48', 'flow.steps=8', 'flow.evalSteps=10', 'flow.predict=residual', 'flow.start=corrupted', 'flow.startT=0.4', 'model.family=flow', 'run.seed=60', 'sft.steps=800'];
const config = loadConfig(undefined, [...FLOW32, ...sets]);
if (config.flow.space !== 'image') throw new Error('this probe is written for flow.space image');
const params = (await loadCheckpoint(file, { expectedShapes: paramShapesOf(config) })).params;
const delta = 0.05;
const H = config.data.size;
const hw = H * H;
const pix = 3 * hw;
const G = config.grpo.groupSize;
const T = config.flow.steps;
const session = await GraphSession.create(policyModel(config));
const train = await openRunDataset(config, 'train');
const dims = [G, 3, H, H];
const rowFeed = (v: number) => ({ data: new Float32Array(G).fill(v), dims: [G] });
const zeros = new Float32Array(G * pix);

async function step(y: Float32Array, x: Float32Array, s: PlannedStep, eps: Float32Array): Promise<Float32Array> {
  const out = await session.run({ ...paramFeeds(params), y: { data: y, dims }, x: { data: x, dims }, t: rowFeed(s.t), t_next: rowFeed(s.tNext), a: rowFeed(s.a), eps: { data: eps, dims } }, ['x_next']);
  return out.x_next.data.slice();
}
/** The plan's steps from position `from` on, from state x, each SDE step with its fixed noise; the final state. */
async function replay(plan: PlannedStep[], y: Float32Array, x: Float32Array, noises: Float32Array[], from: number): Promise<Float32Array> {
  for (const s of plan.slice(from)) x = await step(y, x, s, s.a > 0 ? noises[s.index]! : zeros);
  return x;
}
const channelShift = (x: Float32Array, c: number, v: number) => {
  const d = x.slice();
  for (let i = 0; i < G; i++) for (let p = 0; p < hw; p++) d[i * pix + c * hw + p] += v;
  return d;
};
/** Mean over the items' pixels of channel c of (a - b) / (2 delta). */
const channelResponse = (a: Float32Array, b: Float32Array, c: number) => {
  let s = 0;
  for (let i = 0; i < G; i++) for (let p = 0; p < hw; p++) s += a[i * pix + c * hw + p]! - b[i * pix + c * hw + p]!;
  return s / (G * hw) / (2 * delta);
};
/** Same-element response to a +-delta probe: mean of (a - b) * probe / delta^2 (1 = the element follows). */
const elementResponse = (a: Float32Array, b: Float32Array, probe: Float32Array) => {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += ((a[j]! - b[j]!) * probe[j]!) / (delta * delta);
  return s / a.length;
};

const groups = Number(groupsArg);
// sums over groups, per step position: gain[j][c] (c = 3: the per-element probe), reach[j][c]
const gain = Array.from({ length: T }, () => [0, 0, 0, 0]);
const reach = Array.from({ length: T }, () => [0, 0, 0, 0]);
const trainedCount = new Array<number>(T).fill(0);
let spread = 0;
let planShown: PlannedStep[] = [];
for (let gIdx = 0; gIdx < groups; gIdx++) {
  const cursor = grpoCursors(config, Math.floor(gIdx / config.grpo.samplesPerBatch))[gIdx % config.grpo.samplesPerBatch]!;
  const smp = await train.sample(cursor);
  const id = groupSampleId(cursor, smp.id);
  const yOne = toFlowSpace(toCHWFloat(smp.corrupted));
  const y = new Float32Array(G * pix);
  for (let i = 0; i < G; i++) y.set(yOne, i * pix);
  const seeds = Array.from({ length: G }, (_, i) => rolloutNoiseSeed(config.run.seed, id, i));
  const plan = flowRolloutPlan(config, id);
  planShown = plan;
  plan.forEach((s) => { if (s.trained) trainedCount[s.index]! += 1; });
  const noises = plan.map((s) => {
    const e = new Float32Array(G * pix);
    if (s.a > 0) seeds.forEach((seed, i) => e.set(stepNoise(seed, s.index, pix), i * pix));
    return e;
  });
  const t0 = plan[0]!.t;
  let x: Float32Array = new Float32Array(G * pix);
  seeds.forEach((seed, i) => { const e = startNoise(seed, pix); for (let j = 0; j < pix; j++) x[i * pix + j] = (1 - t0) * yOne[j]! + t0 * e[j]!; });
  // the states before each step (states[T] = the final state)
  const states: Float32Array[] = [x];
  for (const s of plan) { x = await step(y, x, s, s.a > 0 ? noises[s.index]! : zeros); states.push(x); }
  const final = states[T]!;
  for (let j = 0; j < pix; j++) {
    let m = 0;
    let q = 0;
    for (let i = 0; i < G; i++) { const v = final[i * pix + j]!; m += v / G; q += (v * v) / G; }
    spread += Math.sqrt(Math.max(0, q - m * m) * G / (G - 1)) / pix / groups;
  }
  const r = rng(hashSeed(gIdx, 'reach-probe'));
  const probe = Float32Array.from({ length: G * pix }, () => (r.float() < 0.5 ? -delta : delta));
  const plus = (x: Float32Array) => x.map((v, j) => v + probe[j]!);
  const minus = (x: Float32Array) => x.map((v, j) => v - probe[j]!);
  for (const [pos, s] of plan.entries()) {
    // the network's gain at this step: the ODE step from a shifted state, x0_hat = (x_next - r x) / (1 - r)
    const ode = { ...s, a: 0 };
    const ratio = s.tNext / s.t;
    const xs = states[pos]!;
    const x0hat = async (x: Float32Array) => (await step(y, x, ode, zeros)).map((v, j) => (v - ratio * x[j]!) / (1 - ratio));
    for (let c = 0; c < 3; c++) gain[pos]![c] += channelResponse(await x0hat(channelShift(xs, c, delta)), await x0hat(channelShift(xs, c, -delta)), c) / groups;
    gain[pos]![3] += elementResponse(await x0hat(plus(xs)), await x0hat(minus(xs)), probe) / 2 / groups;
    if (pos === plan.length - 1) continue;
    // the reach of a shift of the state after this step, replayed through the rest of the plan with the same noise
    const after = states[pos + 1]!;
    for (let c = 0; c < 3; c++) reach[pos]![c] += channelResponse(await replay(plan, y, channelShift(after, c, delta), noises, pos + 1), await replay(plan, y, channelShift(after, c, -delta), noises, pos + 1), c) / groups;
    reach[pos]![3] += elementResponse(await replay(plan, y, plus(after), noises, pos + 1), await replay(plan, y, minus(after), noises, pos + 1), probe) / 2 / groups;
  }
}
const f3 = (v: number) => (v >= 0 ? ' ' : '') + v.toFixed(3);
const avg3 = (v: number[]) => (v[0]! + v[1]! + v[2]!) / 3;
console.log(`params ${file}; ${groups} groups of ${G}; ${sets.join(' ') || 'no overrides'}; delta ${delta}`);
console.log(`spread of the group's final images (std over members, flow units): ${spread.toFixed(4)}`);
console.log(`predict ${config.flow.predict}, start ${config.flow.start} (t0 ${planShown[0]!.t.toFixed(3)}), window ${config.flow.sde.window.size} at ${config.flow.sde.window.start}, a ${config.flow.sde.a}, lastStepSde ${config.flow.sde.lastStepSde}`);
console.log('step  t      t_next  r      trained  gain R/G/B (uniform)   element | reach after the step R/G/B   mean   element | product of later steps\' r + (1 - r) g');
planShown.forEach((s, pos) => {
  const g = gain[pos]!;
  const ratio = s.tNext / s.t;
  let product = 1;
  planShown.forEach((later, q) => { if (q > pos) { const rq = later.tNext / later.t; product *= rq + (1 - rq) * avg3(gain[q]!); } });
  const reachText = pos === planShown.length - 1 ? '(the last step)' : `${reach[pos]!.slice(0, 3).map(f3).join('/')}  ${f3(avg3(reach[pos]!))}  ${f3(reach[pos]![3]!)} | ${f3(product)}`;
  console.log(`${String(s.index).padEnd(5)} ${s.t.toFixed(3)}  ${s.tNext.toFixed(3)}   ${ratio.toFixed(3)}  ${String(trainedCount[s.index]).padStart(3)}/${groups}  ${g.slice(0, 3).map(f3).join('/')}  ${f3(g[3]!)} | ${reachText}`);
});
await session.release();
