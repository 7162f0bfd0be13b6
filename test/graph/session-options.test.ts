// The options every onnxruntime session gets (lib/graph/runtime.ts sessionOptions): no memory pattern (its
// second run per shape faulted a fresh block in; docs/performance-history/pipeline.md "Round 10: pipe10"), no spinning threads,
// and the values of a graph's runs do not depend on where its tensors were allocated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { loadConfig } from '../../lib/config/index.ts';
import { GraphSession, sessionOptions, webgpuOptions } from '../../lib/graph/runtime.ts';
import { policyModel, policySpecOf } from '../../lib/models/bundle.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { paramFeeds } from '../../lib/models/feeds.ts';
import { standardNormal } from '../../lib/data/random.ts';

test('sessions: no memory pattern, threads as asked, idle threads do not spin, a GPU provider falls back to the CPU', () => {
  const cpu = sessionOptions('cpu', 3);
  assert.equal(cpu.enableMemPattern, false);
  assert.equal(cpu.intraOpNumThreads, 3);
  assert.deepEqual(cpu.executionProviders, ['cpu']);
  assert.deepEqual(cpu.extra, { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } });
  assert.deepEqual(sessionOptions('cuda', 0).executionProviders, ['cuda', 'cpu']);
  // WebGPU prefers NCHW: its NHWC Conv is wrong for 6 input channels (docs/gpu.md)
  assert.deepEqual(sessionOptions('webgpu', 0).executionProviders, [{ name: 'webgpu', preferredLayout: 'NCHW' }, 'cpu']);
});

test('$RECOVERY_GRPO_WEBGPU sets the WebGPU provider\'s options over the defaults; a malformed item names itself', () => {
  assert.deepEqual(webgpuOptions(''), { preferredLayout: 'NCHW' });
  assert.deepEqual(webgpuOptions('preferredLayout=NHWC, storageBufferCacheMode=disabled,enableRobustness=true'), { preferredLayout: 'NHWC', storageBufferCacheMode: 'disabled', enableRobustness: true });
  assert.throws(() => webgpuOptions('layout=NCHW'), /RECOVERY_GRPO_WEBGPU: 'layout=NCHW' is not key=value with key one of preferredLayout/);
  assert.throws(() => webgpuOptions('preferredLayout'), /'preferredLayout' is not key=value/);
  assert.throws(() => webgpuOptions('preferredLayout=NCHW=1'), /is not key=value/);
});

test('threads 0 means one per core, counted by us: onnxruntime\'s own count gave one thread on a 2-core VM', () => {
  assert.equal(sessionOptions('cpu', 0).intraOpNumThreads, availableParallelism());
  assert.equal(sessionOptions('cpu', 1).intraOpNumThreads, 1);
});

test('a session gives the same bytes on its first, second and later runs of a shape, and after another shape', async () => {
  const config = loadConfig(undefined, ['data.size=16']);
  const params = initPolicyParams(policySpecOf(config), 0);
  for (const p of params.values()) if (p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.05));
  const session = await GraphSession.create(policyModel(config), { intraOpThreads: 1 });
  const run = async (n: number) => {
    const dims = [n, 3, 16, 16];
    const pix = n * 3 * 16 * 16;
    const out = await session.run({ ...paramFeeds(params), image: { data: Float32Array.from(standardNormal(pix, 1), (v) => 0.5 + 0.1 * v), dims }, noise: { data: standardNormal(pix, 2), dims } });
    const h = createHash('sha256');
    for (const k of Object.keys(out).sort()) h.update(out[k]!.data);
    return h.digest('hex');
  };
  const first = await run(4);
  assert.equal(await run(4), first);
  assert.equal(await run(4), first);
  const other = await run(6);
  assert.notEqual(other, first);
  assert.equal(await run(4), first);
  assert.equal(await run(6), other);
  await session.release();
});
