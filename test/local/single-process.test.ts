// runSingleProcess's sftDone: GRPO from a saved warm start trains exactly what the full run's GRPO phase trains
// (scripts/demo-probe.ts --warm-start reuses one warm start across GRPO settings).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../lib/config/index.ts';
import { cloneTensorMap, type TensorMap } from '../../lib/checkpoint/tensors.ts';
import { encodeSafetensors, decodeSafetensors } from '../../lib/checkpoint/safetensors.ts';
import { initialParamsOf } from '../../lib/models/bundle.ts';
import { runSingleProcess } from '../../lib/local/single-process.ts';

const TINY = ['data.source.kind=procedural', 'data.size=16', 'data.source.count=64', 'model.width=4', 'model.depth=1', 'sft.batchSize=4', 'grpo.groupSize=4', 'grpo.samplesPerBatch=2', 'sft.steps=3', 'grpo.steps=3', 'run.seed=5'];

const sameTensors = (a: TensorMap, b: TensorMap, what: string) => {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), `${what}: names`);
  for (const [k, t] of a) assert.deepEqual(b.get(k)!.data, t.data, `${what}: ${k}`);
};

test('runSingleProcess sftDone: GRPO from the saved warm start equals the full run, rewards and final parameters', { timeout: 120_000 }, async () => {
  const config = loadConfig(undefined, TINY);
  const full = await runSingleProcess(config, { params: initialParamsOf(config) });
  // Through safetensors bytes, as the probe saves and loads it.
  {
    const warm = new Map(decodeSafetensors(encodeSafetensors(cloneTensorMap(full.sftParams))).tensors);
    const resumed = await runSingleProcess(config, { params: warm, sftDone: true });
    assert.equal(resumed.sftSteps, full.sftSteps);
    assert.equal(resumed.grpoSteps, 3);
    assert.deepEqual(resumed.rewards, full.rewards);
    sameTensors(full.params, resumed.params, 'final params');
    sameTensors(full.sftParams, resumed.sftParams, 'warm start');
    assert.equal(resumed.checkpoint.meta.version, full.checkpoint.meta.version);
    // A different warm start changes the GRPO phase (the test can fail).
    const other = await runSingleProcess(config, { params: initialParamsOf(config), sftDone: true });
    assert.notDeepEqual(other.rewards, full.rewards);
  }
});

test('runSingleProcess sftDone without params is refused by name', async () => {
  await assert.rejects(runSingleProcess(loadConfig(undefined, TINY), { sftDone: true }), /sftDone needs params/);
});

test('grpo.ema: the same training, and the final parameters are the moving average of the GRPO trajectory', { timeout: 120_000 }, async () => {
  const D = 0.6;
  const raw = loadConfig(undefined, TINY);
  const trajectory: TensorMap[] = [];
  // the loop trains the params it is given in place: onStep sees each GRPO step's weights
  const p0 = initialParamsOf(raw);
  const plain = await runSingleProcess(raw, { params: p0, onStep: () => trajectory.push(cloneTensorMap(p0)) });
  const averaged = await runSingleProcess(loadConfig(undefined, [...TINY, `grpo.ema=${D}`]), { params: initialParamsOf(raw) });
  assert.deepEqual(averaged.rewards, plain.rewards, 'the average does not change what GRPO trains or samples');
  sameTensors(averaged.sftParams, plain.sftParams, 'warm start');
  assert.equal(trajectory.length, 3);
  // by hand, in float32 as stored: start at the warm start, one update per GRPO step with decay D
  for (const [k, t] of averaged.params) {
    const a = Float32Array.from(plain.sftParams.get(k)!.data);
    for (const p of trajectory) for (let i = 0; i < a.length; i++) a[i] = D * a[i]! + (1 - D) * p.get(k)!.data[i]!;
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(t.data[i]! - a[i]!) < 1e-6, `${k}[${i}]: ${t.data[i]} against ${a[i]}`);
  }
  assert.notDeepEqual([...averaged.params.values()].map((t) => [...t.data]), [...plain.params.values()].map((t) => [...t.data]), 'the average is not the trained weights');
});

test('with the identity member, every tenth GRPO step logs the share of its advantages above 0 over the kept groups', { timeout: 120_000 }, async () => {
  const config = loadConfig(undefined, [...TINY, 'grpo.steps=10', 'grpo.identityAnchor=1']);
  const lines: string[] = [];
  await runSingleProcess(config, { params: initialParamsOf(config), log: (l) => lines.push(l) });
  const step10 = lines.filter((l) => l.startsWith('[grpo] 10/10 '));
  assert.equal(step10.length, 1, lines.join('\n'));
  const m = /identity A>0 (\d+)\/(\d+) mean (-?\d+\.\d\d)$/.exec(step10[0]!);
  assert.ok(m, step10[0]);
  const [pos, n] = [Number(m[1]), Number(m[2])];
  assert.ok(n >= 1 && n <= config.grpo.samplesPerBatch && pos <= n, step10[0]);
  // without the identity member the line carries no such note
  const plain: string[] = [];
  await runSingleProcess(loadConfig(undefined, [...TINY, 'grpo.steps=10']), { params: initialParamsOf(config), log: (l) => plain.push(l) });
  assert.ok(plain.some((l) => l.startsWith('[grpo] 10/10 ') && !l.includes('identity')), plain.join('\n'));
});
