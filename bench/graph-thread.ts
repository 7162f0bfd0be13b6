// What running a graph in a worker thread (lib/graph/graph-thread.ts, the roles' --graph-thread) costs against the
// calling thread: the policy forward and the GRPO graph, interleaved, medians of wall and process CPU (all threads).
// The thread copies the feeds in and transfers the outputs back; the graph itself is the same.
//
//   [GRAPH_THREAD_SIZES=32,128] [GRAPH_THREAD_REPS=7] nice -n 10 node --import tsx bench/graph-thread.ts
import { GraphSession, type Feeds } from '../lib/graph/runtime.ts';
import { grpoModel, policyModel } from '../lib/models/bundle.ts';
import { paramFeeds } from '../lib/models/feeds.ts';
import { grpoBenchCase } from './grpo-setup.ts';

const sizes = (process.env.GRAPH_THREAD_SIZES ?? '32,128').split(',').map(Number);
const reps = Number(process.env.GRAPH_THREAD_REPS ?? 7);
const N = 32;

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

for (const size of sizes) {
  const { config, params, batch } = await grpoBenchCase(size, 'scalar', N);
  const dims = [N, 3, size, size];
  const forward: Feeds = { ...paramFeeds(params), image: { data: batch.images, dims }, noise: { data: new Float32Array(batch.images.length), dims } };
  const step: Feeds = {
    ...paramFeeds(params),
    image: { data: batch.images, dims },
    action: { data: batch.actions, dims },
    logp_old: { data: batch.logpOld, dims: [N] },
    advantage: { data: batch.advantages, dims: [N] },
    ref_mean: { data: batch.refMean, dims },
    clip_low: { data: Float32Array.of(0.2), dims: [] },
    clip_high: { data: Float32Array.of(0.28), dims: [] },
    dual_clip: { data: Float32Array.of(3), dims: [] },
    beta: { data: Float32Array.of(0.01), dims: [] },
  };
  for (const [graph, model, feeds] of [['policy forward', policyModel(config), forward], ['GRPO graph', grpoModel(config), step]] as const) {
    const arms = [
      { label: 'calling thread', session: await GraphSession.create(model, { thread: 'off' }), wall: [] as number[], cpu: [] as number[] },
      { label: 'worker thread', session: await GraphSession.create(model, { thread: 'on' }), wall: [] as number[], cpu: [] as number[] },
    ];
    for (const a of arms) await a.session.run(feeds); // warm-up: the arena
    for (let r = 0; r < reps; r++) {
      for (const a of r % 2 ? [...arms].reverse() : arms) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await a.session.run(feeds);
        a.wall.push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        a.cpu.push((c.user + c.system) / 1000);
      }
    }
    const [here, there] = arms.map((a) => ({ wall: median(a.wall), cpu: median(a.cpu) }));
    console.log(`${size} px, batch ${N}, ${graph}: calling thread ${here!.wall.toFixed(1)} ms wall / ${here!.cpu.toFixed(1)} ms CPU; worker thread ${there!.wall.toFixed(1)} / ${there!.cpu.toFixed(1)} (x${(there!.wall / here!.wall).toFixed(3)} wall, x${(there!.cpu / here!.cpu).toFixed(3)} CPU; medians of ${reps}, interleaved)`);
    for (const a of arms) await a.session.release();
  }
}
