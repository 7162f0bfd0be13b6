// lib/eval/periodic.ts against a real nats-server: the KL reference evaluated beside the policy is the one the
// checkpoint records (extra.ref_digest, inside the checkpoint's bytes and so under its digest and the learner's
// signature), never whatever the store holds under that version; an imported network's checkpoints are read on the
// orchestrator's own base (its model.network files), as the learner and rollout workers read them. The schedule is tested in test/web/monitor.test.ts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { natsForFile } from '../helpers/nats.ts';
import { loadConfig } from '../../lib/config/index.ts';
import { createMetrics } from '../../lib/metrics/index.ts';
import { PeriodicEvaluator } from '../../lib/eval/periodic.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { baseDigestOf, initPolicyParams } from '../../lib/models/policy.ts';
import { CheckpointStore } from '../../lib/transport/index.ts';
import { publishCheckpoint } from '../../lib/worker/checkpoints.ts';
import type { Checkpoint } from '../../lib/checkpoint/index.ts';
import { projectUnetOnnx } from '../import/models.ts';

const RUN = 'periodic-ref';
const shared = natsForFile('periodic-test');
const config = loadConfig(undefined, [
  `run.id=${RUN}`, 'data.source.kind=procedural', 'data.size=16', 'model.width=4', 'model.depth=1', 'eval.samples=2', 'eval.everyVersions=1',
]);

function checkpoint(version: number, extra: Record<string, string>, seed: number): Checkpoint {
  return {
    meta: { runId: RUN, version, step: version, lastBatchId: null, configHash: 'test', extra: { last_batch_seq: String(version), ...extra } },
    params: initPolicyParams(policySpecOf(config), seed),
  };
}

test('periodic evaluation takes the KL reference by the digest the checkpoint records, and refuses a checkpoint naming none', { timeout: 120_000 }, async () => {
  const store = await CheckpointStore.open(shared.nc, { runId: RUN });
  const logs: string[] = [];
  const ev = new PeriodicEvaluator({ config, store, metrics: createMetrics(RUN, 'orchestrator', { processMetrics: false }), log: (l) => logs.push(l) });
  try {
    const ref = await publishCheckpoint(store, checkpoint(0, {}, 1));
    // a GRPO checkpoint that names its reference's version but not its digest: before, the digest was read from the
    // store (whatever object sat under v0), now the checkpoint is refused, naming it and the missing field
    await publishCheckpoint(store, checkpoint(1, { ref_version: '0' }, 2));
    await assert.rejects(ev.run(), /checkpoints-periodic-ref\/v0000000001: extra\.ref_version is 0 but extra\.ref_digest is missing/);

    // the learner's form: version and digest; the reference is evaluated
    await publishCheckpoint(store, checkpoint(2, { ref_version: '0', ref_digest: ref.digest }, 3));
    const ok = await ev.run();
    assert.equal(ok?.version, 2);
    assert.equal(ok?.reference?.version, 0);
    assert.deepEqual(ok?.gridColumns, ['corrupted', 'reference', 'policy', 'clean']);

    // a digest the stored v0 does not have: refused, not evaluated (nor the earlier evaluation of v0 reused for it)
    const other = `sha256:${'0'.repeat(64)}`;
    await publishCheckpoint(store, checkpoint(3, { ref_version: '0', ref_digest: other }, 4));
    await assert.rejects(ev.run(), new RegExp(`checkpoint v0: stored digest ${ref.digest} differs from the expected ${other}`));
    await assert.rejects(ev.run(), /stored digest/, 'refused again, not served from the first evaluation of v0');

    // a malformed version is refused too (before, Number("x") made a NaN version)
    await publishCheckpoint(store, checkpoint(4, { ref_version: 'x', ref_digest: ref.digest }, 5));
    await assert.rejects(ev.run(), /extra\.ref_version must be a non-negative integer, got "x"/);
  } finally {
    await ev.close();
  }
});

test("an imported network's checkpoints are evaluated on the orchestrator's base, and one trained on another base is refused", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'periodic-base-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const onnx = join(dir, 'unet.onnx');
  writeFileSync(onnx, projectUnetOnnx(16).bytes);
  const runId = 'periodic-base';
  const cfg = loadConfig(undefined, [
    `run.id=${runId}`, 'data.source.kind=procedural', 'data.size=16', `model.network.onnx=${onnx}`, 'eval.samples=2', 'eval.everyVersions=1',
  ]);
  const spec = policySpecOf(cfg);
  const store = await CheckpointStore.open(shared.nc, { runId });
  const ev = new PeriodicEvaluator({ config: cfg, store, metrics: createMetrics(runId, 'orchestrator', { processMetrics: false }), log: () => undefined });
  const at = (version: number, base: string): Checkpoint => ({
    meta: { runId, version, step: version, lastBatchId: null, configHash: 'test', extra: { last_batch_seq: String(version), base_digest: base } },
    params: initPolicyParams(spec, version + 1),
  });
  try {
    // the learner's checkpoints name the base they were trained on: before, this evaluator compared it with none
    // (as if the network were built in) and every evaluation of an imported network failed
    await publishCheckpoint(store, at(0, baseDigestOf(spec)!));
    assert.equal((await ev.run())?.version, 0);
    const other = 'e'.repeat(64);
    await publishCheckpoint(store, at(1, other));
    await assert.rejects(ev.run(), new RegExp(`v0000000001: was trained on base sha256 ${other}, but this role's model\\.network files give base sha256 [0-9a-f]{64}`));
  } finally {
    await ev.close();
  }
});
