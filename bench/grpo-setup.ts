// The GRPO benches' common case (bench models' step ratio, bench/grpo-overhead.ts): the default policy at `size`,
// small random parameters, a batch of `n` rolled-out actions with random advantages (and advantage maps, dense).
import { loadConfig, type RunConfig } from '../lib/config/index.ts';
import { initPolicyParams } from '../lib/models/policy.ts';
import { policySpecOf } from '../lib/models/bundle.ts';
import { PolicyRunner } from '../lib/models/runner.ts';
import { PolicyTrainer } from '../lib/models/trainer.ts';
import { standardNormal } from '../lib/data/random.ts';

export async function grpoBenchCase(size: number, mode: 'scalar' | 'dense', n: number) {
  const config: RunConfig = loadConfig(undefined, [`data.size=${size}`, `grpo.advantageMode=${mode}`]);
  const pix = n * 3 * size * size;
  const params = initPolicyParams(policySpecOf(config), 0);
  for (const p of params.values()) if (p.data.every((v) => v === 0) && p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.01));
  const runner = await PolicyRunner.create(config);
  const trainer = PolicyTrainer.create(config, params);
  const images = Float32Array.from(standardNormal(pix, 1), (v) => 0.5 + 0.1 * v);
  const noise = standardNormal(pix, 2);
  const roll = await runner.run(params, images, noise, n);
  const dense = mode === 'dense';
  const batch = {
    n,
    images,
    actions: roll.action,
    logpOld: dense ? roll.logpMap : roll.logp,
    advantages: standardNormal(n, 4),
    advantageMap: dense ? standardNormal(n * 3 * (size - 10) * (size - 10), 5) : undefined,
    refMean: roll.mean,
  };
  return { config, params, runner, trainer, images, noise, batch };
}

export interface Timing { wall: number; cpu: number }

/**
 * Medians of wall and process CPU time of each arm over `reps` rounds, after one unmeasured call each; the arms take
 * turns going first (grpo-shards.ts, grpo-step-ab.ts).
 */
export async function interleaved(reps: number, arms: Array<[string, () => Promise<unknown>]>): Promise<Timing[]> {
  for (const [, f] of arms) await f();
  const s = arms.map(() => ({ wall: [] as number[], cpu: [] as number[] }));
  for (let r = 0; r < reps; r++) {
    // the arms take turns going first
    for (let j = 0; j < arms.length; j++) {
      const i = (j + r) % arms.length;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await arms[i]![1]();
      s[i]!.wall.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      s[i]!.cpu.push((c.user + c.system) / 1000);
    }
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  return s.map((x) => ({ wall: med(x.wall), cpu: med(x.cpu) }));
}
