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
