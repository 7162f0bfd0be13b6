// The GPU devices (docs/gpu.md): how a role names them, what is refused where a provider gave wrong values, the
// error when a provider cannot start, onnxruntime's profile of where nodes ran, and `npm run gpu-check`'s
// machinery run against the CPU itself. The GPU arm itself runs only where there is a GPU (docs/gpu.md holds
// what it measured on one); this machine's CI has none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deviceLabel, refusedOn } from '../../lib/graph/device.ts';
import { GraphSession, PROFILE_ENV } from '../../lib/graph/runtime.ts';
import { Graph } from '../../lib/graph/graph.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { add } from '../../lib/graph/ops.ts';
import { ConfigError, loadConfig, SetupError } from '../../lib/config/index.ts';
import { resolveWorkerOptions, silentLogger } from '../../lib/worker/options.ts';
import { gpuCheck, placementOf } from '../../scripts/gpu-check.ts';
import { compareOutputs, NOISE_FACTOR, nudged, SCALE_FLOOR } from '../../scripts/gpu/compare.ts';

function addGraph(): Uint8Array {
  const g = new Graph();
  const x = g.input('x', [2]);
  g.output('y', add(x, x));
  return serialize(g);
}

test('devices: Capabilities name a GPU by provider and index; worker options take webgpu; the run config names no device', () => {
  assert.deepEqual(['cpu', 'cuda', 'webgpu'].map((d) => deviceLabel(d as 'cpu')), ['cpu', 'cuda:0', 'webgpu:0']);
  // reward.device is retired (round 18): a GPU there is refused, pointing to --device; cpu (old config.json files) loads
  for (const d of ['webgpu', 'cuda']) {
    assert.throws(() => loadConfig(undefined, [`reward.device=${d}`]), (e: Error) => e instanceof ConfigError && new RegExp(`^config error: reward\\.device: no longer a run setting: a worker's device is a property of its machine, so each worker takes its own --device .*\\(got "${d}"\\)`).test(e.message));
  }
  assert.equal(loadConfig(undefined, ['reward.device=cpu']).reward.device, 'cpu');
  assert.equal(loadConfig().reward.device, undefined);
  assert.throws(() => loadConfig(undefined, ['reward.device=tpu']), /reward\.device/);
  assert.equal(resolveWorkerOptions('reward', { device: 'webgpu', logger: silentLogger }).device, 'webgpu');
  assert.throws(() => resolveWorkerOptions('reward', { device: 'tpu' as 'cpu', logger: silentLogger }), /worker options\.device/);
});

test('devices: what gave wrong values on WebGPU is refused, naming the device and the reason; the rest is not', () => {
  assert.match(refusedOn('webgpu', 'learner') ?? '', /GRPO graph.*docs\/gpu\.md/);
  // the flow family's rollout ran right on WebGPU once its provider prefers NCHW (round 17): no longer refused
  for (const role of ['rollout', 'reward'] as const) assert.equal(refusedOn('webgpu', role), undefined);
  for (const d of ['cpu', 'cuda'] as const) for (const role of ['learner', 'rollout', 'reward'] as const) assert.equal(refusedOn(d, role), undefined);
  assert.equal(resolveWorkerOptions('rollout', { device: 'webgpu', logger: silentLogger }).device, 'webgpu');
  assert.throws(() => resolveWorkerOptions('learner', { device: 'webgpu', logger: silentLogger }), /worker options\.device: webgpu: the learner's GRPO graph/);
  assert.equal(resolveWorkerOptions('learner', { device: 'cpu', logger: silentLogger }).device, 'cpu');
});

test('devices: a GPU provider that cannot start is an error naming the device and what it needs; where one starts, it computes', async () => {
  for (const device of ['webgpu', 'cuda'] as const) {
    let session: GraphSession | undefined;
    try {
      session = await GraphSession.create(addGraph(), { device });
    } catch (e) {
      assert.ok(e instanceof SetupError, 'a SetupError: the role exits CONFIG_EXIT_CODE, not to be restarted');
      assert.match((e as Error).message, new RegExp(`^device ${device}: onnxruntime could not create the session on its ${device} execution provider \\(it needs .*docs/gpu\\.md\\): `));
      continue;
    }
    // a machine with this GPU: the graph runs on it
    const out = await session.run({ x: { data: Float32Array.of(1.5, -2), dims: [2] } });
    assert.deepEqual(Array.from(out.y!.data), [3, -4]);
    await session.release();
  }
});

test('devices: RECOVERY_GRPO_ORT_PROFILE writes a profile per released session; placementOf counts its nodes by provider', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ort-profile-'));
  process.env[PROFILE_ENV] = dir;
  try {
    const s = await GraphSession.create(addGraph());
    await s.run({ x: { data: Float32Array.of(1, 2), dims: [2] } });
    await s.release();
  } finally {
    delete process.env[PROFILE_ENV];
  }
  assert.equal(readdirSync(dir).length, 1);
  const placement = placementOf(dir);
  assert.deepEqual(Object.keys(placement), ['CPUExecutionProvider']);
  assert.equal(placement.CPUExecutionProvider!.nodes, 1); // one Add, one run
  rmSync(dir, { recursive: true });
});

test('gpu-check: outputs compared relative to their scale, a non-finite mismatch or missing output fails', () => {
  const a = { x: Float32Array.of(1, -4, 2), zero: Float32Array.of(0, 0), bad: Float32Array.of(1, 2) };
  const near = compareOutputs(a, { x: Float32Array.of(1, -4.002, 2), zero: Float32Array.of(7e-11, 0), bad: Float32Array.of(1, NaN) }, 1e-3);
  const by = Object.fromEntries(near.map((d) => [d.output, d]));
  assert.equal(by.x!.ok, true);
  assert.ok(Math.abs(by.x!.relative - 0.002 / 4) < 1e-6, `relative ${by.x!.relative}`);
  assert.equal(by.zero!.ok, true, 'a difference below the scale floor of a zero output'); // 7e-11 / SCALE_FLOOR
  assert.ok(by.zero!.relative < 1e-3 && SCALE_FLOOR === 1e-6);
  assert.equal(by.bad!.ok, false);
  assert.equal(compareOutputs(a, { x: Float32Array.of(1, -4.1, 2), zero: Float32Array.of(0, 0), bad: Float32Array.of(1, 2) }, 1e-3).find((d) => d.output === 'x')!.ok, false);
  assert.equal(compareOutputs(a, { x: a.x, bad: a.bad }, 1e-3).find((d) => d.output === 'zero')!.ok, false);
});

test('gpu-check: an output may differ by NOISE_FACTOR times the CPU\'s own change under a one-ulp nudge, where that is more than the tolerance', () => {
  const nu = nudged(Float32Array.of(1, 0, -2, Infinity));
  assert.deepEqual([...nu], [1 + 2 ** -23, 0, -2 - 2 ** -22, Infinity], 'each non-zero finite value one float32 further from zero');
  const a = { g: Float32Array.of(1, 2) };
  const b = { g: Float32Array.of(1, 2.01) }; // relative 5e-3
  assert.equal(compareOutputs(a, b, 1e-3)[0]!.ok, false);
  const withNoise = compareOutputs(a, b, 1e-3, { g: Float32Array.of(1, 2.002) })[0]!; // the CPU's own: 1e-3
  assert.ok(Math.abs(withNoise.allowed - NOISE_FACTOR * 1e-3) < 1e-6 && withNoise.ok, `allowed ${withNoise.allowed}`);
  assert.equal(compareOutputs(a, b, 1e-3, { g: Float32Array.of(1, 2.0001) })[0]!.ok, false, 'a CPU that barely moves allows little');
  assert.equal(compareOutputs(a, b, 1e-3, { g: Float32Array.of(1, NaN) })[0]!.allowed, 1e-3, 'a non-finite nudged run allows nothing more');
});

test('gpu-check against the CPU itself: every case runs through the roles\' classes, agrees bit for bit, and is placed on the CPU', async () => {
  const lines: string[] = [];
  const results = await gpuCheck({ device: 'cpu', size: 16, groups: 1, reps: 1, tolerance: 0, bigReward: false }, (l) => lines.push(l));
  assert.deepEqual(results.map((r) => r.name), ['policy', 'sft', 'grpo-scalar', 'grpo-dense', 'reward', 'flow-rollout', 'flow-evaluate', 'flow-grpo']);
  for (const r of results) {
    assert.equal(r.ok, true, `${r.name}: ${JSON.stringify(r.outputs.filter((o) => !o.ok))}`);
    assert.equal(r.deterministic, true, r.name);
    assert.deepEqual(Object.keys(r.placement), ['CPUExecutionProvider'], r.name);
    assert.ok(r.outputs.length >= 1 && r.outputs.every((o) => o.maxAbs === 0), r.name);
    assert.ok(r.outputs.some((o) => o.scale > 0), `${r.name}: some output is not all zeros`);
  }
  assert.ok(results.find((r) => r.name === 'grpo-dense')!.outputs.some((o) => o.output.startsWith('grad.')), 'the trainer cases compare gradients');
  assert.match(lines.at(-1)!, /^ {5}placement: CPU \d+ nodes/);
  await assert.rejects(gpuCheck({ device: 'cpu', size: 16, groups: 1, reps: 1, tolerance: 0, bigReward: false, cases: ['nope'] }), /--cases: unknown case nope/);
});
