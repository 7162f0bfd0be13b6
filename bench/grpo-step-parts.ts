// The GRPO step's parts as the learner and the single-process loop run them (docs/performance-history/pipeline.md, "Round 14: lrn14"):
// the reference forward (once per distinct image), the GRPO graph (forward and gradients) and AdamW, each timed alone
// (CPU of the process, all threads, and wall), on a default-run batch (32 px, 4 groups x 8, dense advantages), with 1
// and 2 onnxruntime threads in turn (a fresh process each: the thread count is per process).
//
//   nice -n 10 node --import tsx bench/grpo-step-parts.ts     # PARTS_STEPS=40 PARTS_THREADS=1,2 PARTS_REPS=2
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { allocatorEnvFor } from '../lib/deploy/allocator-env.ts';

const STEPS = Number(process.env.PARTS_STEPS ?? 40);
const WARM = 5;

async function child(threads: number): Promise<void> {
  const { setIntraOpThreads } = await import('../lib/graph/runtime.ts');
  setIntraOpThreads(threads);
  const { parseConfig } = await import('../lib/config/index.ts');
  const { initialParamsOf } = await import('../lib/models/bundle.ts');
  const { PolicyRunner } = await import('../lib/models/runner.ts');
  const { PolicyTrainer } = await import('../lib/models/trainer.ts');
  const { grpoHyper, startGrpoPhase } = await import('../lib/grpo/algorithm.ts');
  const { gradientsFrom } = await import('../lib/models/feeds.ts');
  const { ssimMapSize } = await import('../lib/models/ssim.ts');
  const config = parseConfig({ run: { id: 'parts', seed: 0 } }, { overrides: [], source: 'bench' });
  const H = config.data.size;
  const G = config.grpo.groupSize;
  const n = G * config.grpo.samplesPerBatch;
  const per = 3 * H * H;
  const h = ssimMapSize(H);
  const params = initialParamsOf(config);
  const trainer = PolicyTrainer.create(config, params);
  const ref = startGrpoPhase(params, trainer.optimizer);
  const runner = await PolicyRunner.create(config);
  const images = new Float32Array(n * per);
  for (let g = 0; g < n / G; g++) {
    const img = Float32Array.from({ length: per }, (_, i) => 0.5 + 0.3 * Math.sin(i * (0.013 + 0.007 * g)));
    for (let k = 0; k < G; k++) images.set(img, (g * G + k) * per);
  }
  const noise = Float32Array.from({ length: n * per }, (_, i) => 0.8 * Math.sin(i * 12.9898));
  const rolled = await runner.sample(params, images, noise, n, true);
  const advantages = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  const advantageMap = Float32Array.from({ length: n * 3 * h * h }, (_, i) => 0.01 * Math.cos(i));
  const hyper = grpoHyper(config);
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const sums = { reference: [0, 0], graph: [0, 0], adamw: [0, 0] };
  const timed = async <T>(part: keyof typeof sums, count: boolean, fn: () => Promise<T> | T): Promise<T> => {
    const [c, t] = [cpu(), performance.now()];
    const r = await fn();
    if (count) {
      sums[part][0] += cpu() - c;
      sums[part][1] += performance.now() - t;
    }
    return r;
  };
  for (let k = 0; k < STEPS + WARM; k++) {
    const count = k >= WARM;
    const refMean = (await timed('reference', count, () => runner.run(ref, images, new Float32Array(images.length), n))).mean;
    const out = await timed('graph', count, () => trainer.grpoForward({ n, images, actions: rolled.action, logpOld: rolled.logpMap!, advantages, advantageMap, refMean }, hyper));
    await timed('adamw', count, () => trainer.optimizer.step(gradientsFrom(out), { lr: hyper.lr }));
  }
  console.log(`threads ${threads}: ` + Object.entries(sums).map(([k, [c, w]]) => `${k} CPU ${(c! / STEPS).toFixed(2)} ms, wall ${(w! / STEPS).toFixed(2)}`).join('; ') + `; load ${loadavg()[0]!.toFixed(1)}`);
}

const [flag, t] = process.argv.slice(2);
if (flag === '--child') {
  await child(Number(t));
  process.exit(0); // onnxruntime's threads would keep the process up
}
const threads = (process.env.PARTS_THREADS ?? '1,2').split(',').map(Number);
const reps = Number(process.env.PARTS_REPS ?? 2);
console.log(`GRPO step parts, default run batch, ${STEPS} steps (first ${WARM} not counted); load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
for (let r = 0; r < reps; r++) {
  for (const th of r % 2 === 0 ? threads : [...threads].reverse()) {
    process.stdout.write(execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', String(th)], { encoding: 'utf8', env: { ...process.env, ...allocatorEnvFor(process.env) } }));
  }
}
