// Graph call sizes in the pipeline (docs/performance-history/pipeline.md, "Round 8: pipe8"): CPU time per action of one
// onnxruntime thread running the default policy graph (rollout worker) and reward graph (reward worker) on calls
// of 8 (one GRPO group), 16, 24 and 32 images, interleaved. The rollout worker runs one group per call so that
// scoring overlaps the rest of the batch's rollouts; this prints what smaller calls cost per action.
//   node --import tsx bench/pipeline-callsize.ts        # CALLSIZE_REPS (default 30) interleaved rounds
import { loadConfig } from '../lib/config/index.ts';
import { setIntraOpThreads } from '../lib/graph/runtime.ts';
import { initialParamsOf } from '../lib/models/bundle.ts';
import { PolicyRunner } from '../lib/models/runner.ts';
import { RewardScorer } from '../lib/models/scorer.ts';

const REPS = Number(process.env.CALLSIZE_REPS ?? 30);
setIntraOpThreads(1);
const config = loadConfig(undefined, []);
const runner = await PolicyRunner.create(config);
const params = initialParamsOf(config);
const per = 3 * config.data.size * config.data.size;
const sizes = [8, 16, 24, 32];
const scorer = new RewardScorer(config.reward, 'cpu');
const cpu = new Map<string, number[]>();
const add = (k: string, v: number) => cpu.set(k, [...(cpu.get(k) ?? []), v]);
const input = (n: number) => Float32Array.from({ length: n * per }, (_, i) => ((i * 7919) % 101) / 101);
const H = config.data.size;
const calls: Record<string, (n: number, x: Float32Array) => Promise<unknown>> = {
  policy: (n, x) => runner.run(params, x, x, n),
  reward: (n, x) => scorer.score({ candidates: x, references: x.map((v) => 1 - v), n, height: H, width: H }),
};
for (const n of sizes) for (const call of Object.values(calls)) await call(n, input(n)); // warm-up
for (let r = 0; r < REPS; r++) {
  for (const n of r % 2 ? [...sizes].reverse() : sizes) {
    for (const [name, call] of Object.entries(calls)) {
      const images = input(n);
      const c0 = process.cpuUsage();
      await call(n, images);
      const c = process.cpuUsage(c0);
      add(`${name} ${n}`, (c.user + c.system) / 1000 / n);
    }
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const name of Object.keys(calls)) {
  for (const n of sizes) console.log(`${name} call of ${String(n).padStart(2)} images: ${median(cpu.get(`${name} ${n}`)!).toFixed(3)} ms CPU per action (median of ${REPS})`);
}
await runner.release();
await scorer.close();
