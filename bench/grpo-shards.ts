// Data parallelism over the GRPO batch (round 26, grpo26): is the GRPO step faster as two shards of the batch, each
// on its own one-thread onnxruntime session in its own thread, their gradients summed in TypeScript, than as one run
// of the whole batch on a session with one thread per core? Interleaved in one process, on bench/grpo-setup.ts's case:
//   forward     the policy forward (the product's session, both cores): the ratio's denominator
//   step        PolicyTrainer.grpoStep: the GRPO graph on the whole batch, both cores, + AdamW (the figure)
//   sharded     the same graph on rows [0, n/2) on a one-thread session on this thread and [n/2, n) on a one-thread
//               session in a worker thread (lib/graph/graph-thread.ts) at once, gradients (a + b) / 2 in float32,
//               + AdamW
//   sharded-2w  the same with both shards in worker threads (the event loop free)
// and prints medians (wall and process CPU) and the ratios against the forward, plus how far the sharded gradients
// are from the whole batch's (a different float summation order, so not byte-equal).
//
//   [GRPO_SHARDS_SIZES=64,128] [GRPO_SHARDS_MODES=scalar,dense] [GRPO_SHARDS_REPS=5] node --import tsx bench/grpo-shards.ts
import { loadavg } from 'node:os';
import { grpoBenchCase, interleaved, type Timing } from './grpo-setup.ts';
import { grpoModel, resolutionOf } from '../lib/models/bundle.ts';
import { GraphSession, sessionOptions, type Feeds, type Fetches } from '../lib/graph/runtime.ts';
import { GraphThread } from '../lib/graph/graph-thread.ts';
import { sliceFeeds } from '../lib/models/lanes.ts';
import { grpoHyperFeeds, paramFeeds } from '../lib/models/feeds.ts';
import { grpoHyper } from '../lib/grpo/algorithm.ts';
import { ssimMapSize } from '../lib/models/ssim.ts';
import type { TensorMap } from '../lib/checkpoint/tensors.ts';

/** (a + b) / 2 of every grad.* output, in float32, a's then b's; the other outputs as the caller combines them. */
function halfSum(a: Fetches, b: Fetches): TensorMap {
  const grads: TensorMap = new Map();
  for (const [key, fa] of Object.entries(a)) {
    if (!key.startsWith('grad.')) continue;
    const x = fa.data;
    const y = b[key]!.data;
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = Math.fround(Math.fround(x[i]! + y[i]!) * 0.5);
    grads.set(key.slice(5), { shape: [...fa.dims], data: out });
  }
  return grads;
}

const sizes = (process.env.GRPO_SHARDS_SIZES ?? '64,128').split(',').map(Number);
const modes = (process.env.GRPO_SHARDS_MODES ?? 'scalar,dense').split(',') as Array<'scalar' | 'dense'>;
const reps = Number(process.env.GRPO_SHARDS_REPS ?? 5);
const N = 32;
const H = N / 2;
console.log(`load average at the start: ${loadavg().map((v) => v.toFixed(1)).join(' ')}`);
for (const size of sizes) for (const mode of modes) {
  const { config, params, runner, trainer, images, noise, batch } = await grpoBenchCase(size, mode, N);
  const hyper = grpoHyper(config);
  const model = grpoModel(config, { sharedRows: false }); // the bench's 32 images are distinct: the plain form
  const one = sessionOptions('cpu', 1);
  const local = await GraphSession.create(model, { intraOpThreads: 1, thread: 'off' });
  const [w1, w2] = await Promise.all([GraphThread.create(model, one), GraphThread.create(model, one)]);
  const r = resolutionOf(config);
  const dims = [N, 3, r.height, r.width];
  const rows = (): Feeds => {
    const f: Feeds = {
      image: { data: batch.images, dims },
      action: { data: batch.actions, dims },
      logp_old: { data: batch.logpOld, dims: mode === 'dense' ? dims : [N] },
      advantage: { data: batch.advantages, dims: [N] },
      ref_mean: { data: batch.refMean, dims },
    };
    if (mode === 'dense') f.advantage_map = { data: batch.advantageMap!, dims: [N, 3, ssimMapSize(r.height), ssimMapSize(r.width)] };
    return f;
  };
  const shardFeeds = (start: number): Feeds => ({ ...paramFeeds(params), ...grpoHyperFeeds(hyper), ...sliceFeeds(rows(), N, start, H) });
  const shardsLocal = async () => {
    const b = w1.run(shardFeeds(H)); // posted first: the worker runs while this thread runs its own shard
    const a = await local.run(shardFeeds(0));
    return [a, await b] as const;
  };
  const shardsWorkers = async () => Promise.all([w1.run(shardFeeds(0)), w2.run(shardFeeds(H))]);
  const stepOf = async (shards: () => Promise<readonly [Fetches, Fetches]>) => {
    const [a, b] = await shards();
    const loss = Math.fround(Math.fround(a.loss!.data[0]! + b.loss!.data[0]!) * 0.5);
    if (Number.isFinite(loss)) trainer.optimizer.step(halfSum(a, b), { lr: hyper.lr });
  };
  // how far the shards' gradients are from the whole batch's, before any step
  const whole = await trainer.grpoForward(batch);
  const [a, b] = await shardsLocal();
  const sum = halfSum(a, b);
  let worst = 0;
  for (const [k, g] of sum) {
    const ref = whole[`grad.${k}`]!.data;
    const scale = Math.max(...ref.map(Math.abs), 1e-30);
    for (let i = 0; i < g.data.length; i++) worst = Math.max(worst, Math.abs(g.data[i]! - ref[i]!) / scale);
  }
  const [c, d] = await shardsWorkers();
  const sameBits = [...halfSum(c, d)].every(([k, g]) => Buffer.from(g.data.buffer).equals(Buffer.from(sum.get(k)!.data.buffer)));
  console.log(`GRPO ${size} px ${mode}, batch ${N}: sharded gradients vs whole batch, worst |diff| / max|grad| per tensor ${worst.toExponential(2)}; shards on this thread + worker == both in workers bit for bit: ${sameBits}`);
  const [fwd, graph, step, g1, s1, s2] = await interleaved(reps, [
    ['forward', () => runner.run(params, images, noise, N)],
    ['graph', () => trainer.grpoForward(batch)],
    ['step', () => trainer.grpoStep(batch)],
    ['graph sharded', () => shardsLocal()],
    ['step sharded', () => stepOf(shardsLocal)],
    ['step sharded 2w', () => stepOf(shardsWorkers)],
  ]);
  const line = (label: string, t: Timing) => console.log(`  ${label.padEnd(44)} ${t.wall.toFixed(1).padStart(8)} ms wall ${t.cpu.toFixed(1).padStart(8)} ms CPU   ${(t.wall / fwd!.wall).toFixed(2)}x wall ${(t.cpu / fwd!.cpu).toFixed(2)}x CPU`);
  line('policy forward (both cores)', fwd!);
  line('GRPO graph, whole batch (both cores)', graph!);
  line('GRPO step, whole batch (the figure)', step!);
  line('GRPO graph, 2 shards (this thread + worker)', g1!);
  line('GRPO step, 2 shards (this thread + worker)', s1!);
  line('GRPO step, 2 shards (two workers)', s2!);
  console.log(`  RESULT grpo-shards ${size}px ${mode}: step ${(step!.wall / fwd!.wall).toFixed(2)}x, sharded step ${(s1!.wall / fwd!.wall).toFixed(2)}x / ${(s2!.wall / fwd!.wall).toFixed(2)}x (2 workers) the forward's wall (load average ${loadavg().map((v) => v.toFixed(1)).join(' ')})`);
  await Promise.all([local.release(), w1.release(), w2.release(), runner.release(), trainer.release()]);
}
