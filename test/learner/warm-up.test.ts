// learner/warm-up.ts: the GRPO graphs' first runs on zeros, before the first GRPO batch. Its inputs fit the training
// graph in every advantage mode, and it changes nothing a later step computes: parameters, moments and outputs after
// a warm-up and a step are byte-equal to those of the same step without one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type RunConfig } from '../../lib/config/index.ts';
import { cloneTensorMap, type TensorMap } from '../../lib/checkpoint/index.ts';
import { grpoHyper } from '../../lib/grpo/algorithm.ts';
import { initialParamsOf } from '../../lib/models/bundle.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { PolicyTrainer } from '../../lib/models/trainer.ts';
import { warmUpGrpo, warmUpInputs } from '../../learner/warm-up.ts';

const configOf = (grpo: Record<string, unknown>): RunConfig => parseConfig({
  run: { id: 'warm-up', seed: 3 }, data: { size: 16 }, model: { width: 4, depth: 1, logStd: Math.log(0.05) },
  grpo: { groupSize: 2, samplesPerBatch: 2, ...grpo },
} as never);

const bytesOf = (m: TensorMap) => Buffer.concat([...m].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, t]) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)));

/** A batch of the warm-up's shapes with values a step moves the weights by. */
function someBatch(config: RunConfig) {
  const b = warmUpInputs(config);
  const fill = (x: Float32Array, k: number) => x.map((_, i) => 0.5 + 0.3 * Math.sin(i * 0.37 + k));
  return {
    ...b,
    images: fill(b.images, 1), actions: fill(b.actions, 2), refMean: fill(b.refMean, 3),
    logpOld: b.logpOld.map((_, i) => -1 - 0.01 * (i % 7)), advantages: b.advantages.map((_, i) => (i % 2 ? 1 : -1)),
    ...(b.advantageMap ? { advantageMap: fill(b.advantageMap, 4).map((v) => v - 0.5) } : {}),
    ...(b.identityAdvantages ? { identityAdvantages: b.identityAdvantages.map((_, i) => (i === 0 ? 0.5 : 0)) } : {}),
    ...(b.identityAdvantageMap ? { identityAdvantageMap: fill(b.identityAdvantageMap, 5).map((v) => v - 0.5) } : {}),
  };
}

for (const grpo of [{ advantageMode: 'scalar' }, { advantageMode: 'dense' }, { advantageMode: 'dense', identityAnchor: 0.5 }, { advantageMode: 'scalar', beta: 0 }]) {
  test(`warm-up then step = step alone (${JSON.stringify(grpo)})`, async () => {
    const config = configOf(grpo);
    const hyper = grpoHyper(config);
    const batch = someBatch(config);
    const start = initialParamsOf(config);
    const results: Array<{ params: Buffer; m: Buffer; v: Buffer; logp: Buffer; loss: number }> = [];
    for (const warm of [false, true]) {
      const params = cloneTensorMap(start);
      const trainer = PolicyTrainer.create(config, params);
      const runner = await PolicyRunner.create(config);
      try {
        if (warm) {
          await warmUpGrpo(config, trainer, hyper, hyper.beta > 0 ? { runner, params } : undefined);
          assert.ok(bytesOf(params).equals(bytesOf(start)), 'the warm-up trains nothing');
          assert.equal(trainer.optimizer.stepCount, 0, 'the warm-up takes no optimizer step');
        }
        const r = await trainer.grpoStep(batch, hyper);
        assert.ok(r.step.applied);
        const s = trainer.optimizer.exportState();
        results.push({ params: bytesOf(params), m: bytesOf(s.m), v: bytesOf(s.v), logp: Buffer.from(r.logp.buffer.slice(0)), loss: r.loss });
      } finally {
        await trainer.release();
        await runner.release();
      }
    }
    const [cold, warm] = results;
    assert.ok(cold!.params.equals(warm!.params), 'parameters after the step');
    assert.ok(cold!.m.equals(warm!.m) && cold!.v.equals(warm!.v), 'AdamW moments after the step');
    assert.ok(cold!.logp.equals(warm!.logp), 'the step\'s log-probabilities');
    assert.equal(cold!.loss, warm!.loss);
  });
}
