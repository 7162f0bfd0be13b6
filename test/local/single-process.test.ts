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
