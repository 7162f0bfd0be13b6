// The KL reference forward of one GRPO batch (default config: 4 groups of G = 8), on all 32 rows as before and
// once per distinct image (lib/grpo/update.ts referenceMean), side by side, one onnxruntime thread, CPU time per
// call (user + system) and wall median:   node --import tsx bench/pipeline-refmean.ts   (REFMEAN_REPS, default 20)
import { loadConfig } from '../lib/config/index.ts';
import { setIntraOpThreads } from '../lib/graph/runtime.ts';
import { policySpecOf } from '../lib/models/bundle.ts';
import { initPolicyParams } from '../lib/models/policy.ts';
import { PolicyRunner } from '../lib/models/runner.ts';
import { standardNormal } from '../lib/data/random.ts';
import { referenceMean } from '../lib/grpo/update.ts';

const REPS = Number(process.env.REFMEAN_REPS ?? 20);
setIntraOpThreads(1);
const config = loadConfig(undefined, []);
const runner = await PolicyRunner.create(config);
const params = initPolicyParams(policySpecOf(config), 0);
for (const p of params.values()) if (p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.05));
const G = config.grpo.groupSize;
const groups = config.grpo.samplesPerBatch;
const px = 3 * runner.height * runner.width;
const n = G * groups;
const images = new Float32Array(n * px);
for (let g = 0; g < groups; g++) {
  const img = Float32Array.from(standardNormal(px, g), (v) => 0.5 + 0.1 * v);
  for (let k = 0; k < G; k++) images.set(img, (g * G + k) * px);
}
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const arms = {
  [`all ${n} rows`]: () => runner.run(params, images, new Float32Array(images.length), n),
  [`${groups} distinct images`]: () => referenceMean(runner, params, images, n),
};
const wall: Record<string, number[]> = {};
const cpuSum: Record<string, number> = {};
for (let r = 0; r < REPS + 1; r++) {
  for (const [name, f] of Object.entries(arms)) {
    const c0 = cpu();
    const t0 = performance.now();
    await f();
    if (r === 0) continue; // warm-up
    (wall[name] ??= []).push(performance.now() - t0);
    cpuSum[name] = (cpuSum[name] ?? 0) + cpu() - c0;
  }
}
console.log(`KL reference forward, ${runner.height}x${runner.width}, G=${G}, ${groups} groups, 1 thread, ${REPS} interleaved rounds:`);
for (const name of Object.keys(arms)) {
  const w = wall[name]!.sort((a, b) => a - b);
  console.log(`  ${name}: wall median ${w[w.length >> 1]!.toFixed(1)} ms, CPU ${(cpuSum[name]! / REPS).toFixed(1)} ms per call`);
}
await runner.release();
