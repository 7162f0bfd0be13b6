// What the learner's stale-row check (lib/grpo/stale-check.ts) costs beside its GRPO step, at maxStaleness 1 on
// the default run's batch (4 groups x 8 actions, dense advantages, beta 0.004 so the step has its reference forward):
//
// - `step`: grpoUpdate as the learner runs it (the reference forward, the GRPO graph's forward and backward, AdamW);
// - `check`: staleCheck of the same batch with every row one version old (the worst case at staleness 1: one forward
//   of the policy network over the batch's distinct images, the log-densities in JS), at grpo.staleCheckFraction 1;
// - `keep`: ParamHistory.keep, the copy of the parameters the learner makes before each step;
// - `check26`: round 26's recompute (the policy graph over every checked row, then the density), against `check`,
//   round 27's (the network on the rows' distinct images alone; the same bytes, test/grpo/stale-check-distinct.test.ts),
//   at STALE_BENCH_THREADS (default 2) threads per operator, the learner's. Each arm's process CPU (all threads) too.
//
// The arms take turns going first, round by round, in one process (onnxruntime's default threads, as the learner's).
//
//   nice -n 10 node --import tsx bench/stale-check.ts      # STALE_BENCH_ROUNDS=15 STALE_BENCH_SIZES=32,64
import { loadavg } from 'node:os';
import { loadConfig } from '../lib/config/index.ts';
import { initialParamsOf } from '../lib/models/bundle.ts';
import { LOG_STD } from '../lib/models/policy.ts';
import { PolicyRunner } from '../lib/models/runner.ts';
import { PolicyTrainer } from '../lib/models/trainer.ts';
import { ssimMapSize } from '../lib/models/ssim.ts';
import { cloneTensorMap } from '../lib/checkpoint/tensors.ts';
import { standardNormal } from '../lib/data/random.ts';
import { grpoHyper } from '../lib/grpo/algorithm.ts';
import { grpoUpdate } from '../lib/grpo/update.ts';
import { gatherRows, gaussianRowLogp, ParamHistory, policyRecompute, staleCheck } from '../lib/grpo/stale-check.ts';
import type { TensorMap } from '../lib/checkpoint/tensors.ts';
import { setIntraOpThreads } from '../lib/graph/runtime.ts';

setIntraOpThreads(Number(process.env.STALE_BENCH_THREADS ?? 2));

const ROUNDS = Number(process.env.STALE_BENCH_ROUNDS ?? 15);
const SIZES = (process.env.STALE_BENCH_SIZES ?? '32').split(',').map(Number);
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

for (const size of SIZES) {
  const config = loadConfig(undefined, [`data.size=${size}`, 'grpo.maxStaleness=1']);
  const G = config.grpo.groupSize;
  const n = G * config.grpo.samplesPerBatch;
  const per = 3 * size * size;
  const v0 = initialParamsOf(config);
  const paramCount = [...v0.values()].reduce((a, t) => a + t.data.length, 0);
  const images = new Float32Array(n * per);
  for (let g = 0; g < n / G; g++) {
    const img = Float32Array.from(standardNormal(per, 100 + g), (z) => 0.5 + 0.1 * z);
    for (let k = 0; k < G; k++) images.set(img, (g * G + k) * per);
  }
  const runner = await PolicyRunner.create(config);
  const roll = await runner.run(v0, images, standardNormal(n * per, 7), n);
  const h = ssimMapSize(size);
  const batch = {
    n, images, actions: roll.action, logpOld: roll.logpMap,
    advantages: Float32Array.from(standardNormal(n, 8)), advantageMap: Float32Array.from(standardNormal(n * 3 * h * h, 9), (z) => 0.1 * z),
  };
  const sampleIds = Array.from({ length: n }, (_, i) => `s${Math.floor(i / G)}`);
  const trainer = PolicyTrainer.create(config, cloneTensorMap(v0));
  const refRunner = await PolicyRunner.create(config);
  const reference = { params: v0, runner: async () => refRunner };
  const history = new ParamHistory(1);
  history.keep(0, v0);
  const kept = new ParamHistory(1); // the keep arm's own: the check's version 0 stays v0
  const hyper = grpoHyper(config);
  const key = Buffer.alloc(32, 1);
  type Recompute = (params: TensorMap, rows: number[]) => Promise<{ logp: ArrayLike<number>; ratio: ArrayLike<number> }>;
  // round 26's policyRecompute, verbatim
  const round26: Recompute = async (params, rows) => gaussianRowLogp(gatherRows(batch.actions, rows, per), await runner.mean(params, gatherRows(batch.images, rows, per), rows.length), params.get(LOG_STD)!.data[0]!, gatherRows(batch.logpOld, rows, per), rows.length);
  type MeanOf = (params: TensorMap, images: Float32Array, n: number) => Promise<Float32Array>;
  const checkWith = async (meanOf: MeanOf | Recompute, old = false) => {
    const r = await staleCheck({
      batch: { rows: n, versions: Array(n).fill(0), groups: sampleIds, logpOld: batch.logpOld }, version: 1, seq: 2, history, tolerance: config.grpo.logpTolerance,
      fraction: 1, key, recompute: old ? (meanOf as Recompute) : policyRecompute(batch, LOG_STD, meanOf as MeanOf),
    });
    if (r.checked !== n || r.excluded.length) throw new Error(`bench: the honest batch's check gave ${JSON.stringify(r)}`);
  };
  const arms = {
    step: async () => { await grpoUpdate(trainer, reference, batch, hyper); },
    check26: () => checkWith(round26, true),
    check: () => checkWith((p, im, m) => runner.mean(p, im, m)),
    keep: async () => { kept.keep(0, trainer.params); },
  };
  const times: Record<keyof typeof arms, number[]> = { step: [], check26: [], check: [], keep: [] };
  const cpu: Record<keyof typeof arms, number[]> = { step: [], check26: [], check: [], keep: [] };
  const names = Object.keys(arms) as (keyof typeof arms)[];
  for (const a of names) await arms[a](); // warm-up: sessions created
  const loadBefore = load();
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? [...names].reverse() : names;
    for (const a of order) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await arms[a]();
      times[a].push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu[a].push((c.user + c.system) / 1000);
    }
  }
  const step = median(times.step);
  const check = median(times.check);
  console.log(`size ${size}, ${n} actions (${n / G} groups), dense, ${paramCount} parameters (${(paramCount * 4 / 1e6).toFixed(2)} MB a version), ${ROUNDS} rounds, load average ${loadBefore} -> ${load()}`);
  console.log(`  step ${step.toFixed(1)} ms, check (all ${n} rows stale) ${check.toFixed(1)} ms = ${(100 * check / step).toFixed(1)}% of the step, keep ${median(times.keep).toFixed(2)} ms (medians)`);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const fig = (a: keyof typeof arms) => `wall ${median(times[a]).toFixed(2)} ms, CPU ${mean(cpu[a]).toFixed(2)} ms`;
  console.log(`  check, round 26 (every row, one session): ${fig('check26')}; round 27 (distinct images): ${fig('check')} (wall medians, CPU means; step CPU ${mean(cpu.step).toFixed(1)} ms)`);
  await trainer.release();
  await runner.release();
  await refRunner.release();
}
