// The KL reference forward's two ways (docs/performance-history/pipeline.md, "Round 28: lcpu28"): PolicyRunner.run
// (every output: mean, action, logp, logp_map; round 27's lib/grpo/update.ts read only the mean) against
// PolicyRunner.mean (the mean alone, fetched), on a default-model GRPO batch (32 rows, 4 groups of 8 sharing an
// image), in this process: checks the two means are the same bytes, then prints the CPU per call of each, 3 rounds
// of 100 calls after 10 unmeasured ones.
//
//   RECOVERY_GRPO_THREADS=2 nice -n 10 node --import tsx bench/ref-forward.ts
import { loadavg } from 'node:os';
import { parseConfig } from '../lib/config/index.ts';
import { initialParamsOf } from '../lib/models/bundle.ts';
import { PolicyRunner } from '../lib/models/runner.ts';

const config = parseConfig({ run: { id: 'ref-forward-bench', seed: 0 } }, { overrides: [], source: 'bench' });
const H = config.data.size;
const G = config.grpo.groupSize;
const n = G * config.grpo.samplesPerBatch;
const per = 3 * H * H;
const params = initialParamsOf(config);
const runner = await PolicyRunner.create(config);
const images = new Float32Array(n * per);
for (let g = 0; g < n / G; g++) {
  const img = Float32Array.from({ length: per }, (_, i) => 0.5 + 0.3 * Math.sin(i * 0.01 * (g + 1)));
  for (let k = 0; k < G; k++) images.set(img, (g * G + k) * per);
}
const a = (await runner.run(params, images, new Float32Array(images.length), n)).mean;
const b = await runner.mean(params, images, n);
if (!Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))) throw new Error('mean() differs from run().mean');
console.log(`reference forward, ${n} rows (${n / G} distinct images): run().mean and mean() are the same bytes; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
const arms: Array<[string, () => Promise<Float32Array>]> = [
  ['run (every output)', async () => (await runner.run(params, images, new Float32Array(images.length), n)).mean],
  ['mean (the mean alone)', () => runner.mean(params, images, n)],
];
for (let r = 0; r < 3; r++) {
  for (const [name, f] of r % 2 ? [...arms].reverse() : arms) {
    for (let i = 0; i < 10; i++) await f();
    const c = process.cpuUsage();
    for (let i = 0; i < 100; i++) await f();
    const d = process.cpuUsage(c);
    console.log(`round ${r + 1}: ${name.padEnd(22)} ${((d.user + d.system) / 1000 / 100).toFixed(3)} ms CPU per call; load ${loadavg()[0]!.toFixed(1)}`);
  }
}
await runner.release();
process.exit(0);
