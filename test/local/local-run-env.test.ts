// runLocal's `env` goes to every role's process and not into this process's environment (bench/pipeline.bench.ts
// gives each run's $RECOVERY_GRPO_TRACE that way: lib/log/trace.ts reads it once per process, so a value set in the
// bench's own process would stick to its first run). A real local run, tiny configuration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runLocal } from '../../lib/local/local-run.ts';
import { TRACE_ENV } from '../../lib/log/trace.ts';

const TINY = [
  'data.source.kind=procedural', 'data.size=16', 'data.source.count=32', 'model.width=4', 'model.depth=1', 'sft.batchSize=4', 'grpo.groupSize=4',
  'grpo.samplesPerBatch=2', 'eval.samples=4',
];

test('runLocal env: every role traces to the file it names; this process\'s environment is left alone', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'local-env-'));
  const saved = process.env[TRACE_ENV];
  delete process.env[TRACE_ENV];
  try {
    const file = join(dir, 'trace.jsonl');
    const pids = new Set<number>();
    await runLocal({
      out: join(dir, 'run'), seed: 0, sftSteps: 3, steps: 2, overrides: TINY, log: () => undefined,
      env: { [TRACE_ENV]: file },
      onStarted: (sup) => { for (const p of Object.values(sup.pids())) pids.add(p); },
    });
    assert.equal(process.env[TRACE_ENV], undefined);
    assert.ok(existsSync(file), 'no trace file: the roles did not get the variable');
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { pid: number; role: string });
    assert.deepEqual([...new Set(lines.map((l) => l.role))].sort(), ['learner', 'orch', 'reward', 'rollout']);
    assert.ok(lines.every((l) => l.pid !== process.pid), 'this process traced into the roles\' file');
  } finally {
    if (saved === undefined) delete process.env[TRACE_ENV];
    else process.env[TRACE_ENV] = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});
