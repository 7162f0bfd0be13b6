// `recovery-grpo eval` finds the KL reference beside the checkpoint by run id and version, and, where the checkpoint
// records it (extra.ref_digest, as the learner does), only the file of those bytes: another file of the same run
// and version (a run started again under the same id) is not taken for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadConfig } from '../../lib/config/index.ts';
import { saveCheckpoint } from '../../lib/checkpoint/index.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { findCheckpointBeside } from '../../lib/eval/eval-run.ts';

test('eval: the reference beside the checkpoint is the file whose sha256 the checkpoint records, when it records one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'eval-ref-'));
  try {
    const config = loadConfig(undefined, ['model.width=4', 'model.depth=1', 'run.id=evalref']);
    const meta = (version: number) => ({ runId: 'evalref', version, step: version, lastBatchId: null, configHash: '', extra: {} });
    const spec = policySpecOf(config);
    // the reference the run used, and another run's v3 under the same id (other parameters: other bytes)
    const used = await saveCheckpoint(join(dir, 'a-reference.safetensors'), { meta: meta(3), params: initPolicyParams(spec, 1) });
    const other = await saveCheckpoint(join(dir, 'b-rerun.safetensors'), { meta: meta(3), params: initPolicyParams(spec, 2) });
    const final = join(dir, 'final.safetensors');
    assert.notEqual(used.digest, other.digest);

    const byUsed = await findCheckpointBeside(dir, 'evalref', 3, config, final, used.digest);
    assert.equal(byUsed.hit?.path, join(dir, 'a-reference.safetensors'));
    const byOther = await findCheckpointBeside(dir, 'evalref', 3, config, final, other.digest);
    assert.equal(byOther.hit?.path, join(dir, 'b-rerun.safetensors'), 'the first file of that run and version is not taken when its bytes differ');
    assert.deepEqual(byOther.mismatched, [join(dir, 'a-reference.safetensors')]);
    const byNone = await findCheckpointBeside(dir, 'evalref', 3, config, final, 'f'.repeat(64));
    assert.equal(byNone.hit, null);
    assert.equal(byNone.mismatched.length, 2);
    // no recorded digest (a hand-made checkpoint): run id and version decide, as before
    assert.equal((await findCheckpointBeside(dir, 'evalref', 3, config, final)).hit?.path, join(dir, 'a-reference.safetensors'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
