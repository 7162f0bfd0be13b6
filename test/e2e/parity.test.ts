// The single-process loop is the pipeline's executable specification: with maxStaleness 0, one rollout and
// one reward worker, the distributed pipeline (nats-server and the four roles as processes) ends on the same
// checkpoint as runSingleProcess, byte for byte, after a short SFT and several GRPO steps, for scalar and
// dense advantages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runLocal } from '../../lib/local/local-run.ts';
import { runSingleProcess } from '../../lib/local/single-process.ts';
import { encodeCheckpoint, sha256Hex } from '../../lib/checkpoint/index.ts';
import type { RunConfig } from '../../lib/config/index.ts';

const SFT = 3;
const GRPO = 5;
const TINY = [
  'data.size=16', 'data.source.count=32', 'model.width=4', 'model.depth=1', 'sft.batchSize=2', 'grpo.groupSize=3',
  'grpo.samplesPerBatch=2', 'grpo.maxStaleness=0', 'eval.samples=2', 'eval.everyVersions=0',
  'orchestrator.leaseSeconds=30', 'orchestrator.heartbeatSeconds=1',
];

const FLOW = [
  'model.family=flow', 'flow.steps=4', 'flow.evalSteps=3', 'flow.sde.window.size=1', 'flow.timeFrequencies=2', 'flow.timeWidth=4',
];

const cases = [
  ...(['scalar', 'dense'] as const).map((mode) => ({ name: mode, mode, extra: [] as string[] })),
  { name: 'flow, scalar', mode: 'scalar' as const, extra: FLOW },
];

for (const { name, mode, extra } of cases) {
  test(`parity (${name}): the pipeline's final checkpoint equals the single-process loop's, byte for byte`, { timeout: 240_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), `parity-${name.replace(/\W+/g, '-')}-`));
    const log: string[] = [];
    let config: RunConfig | undefined;
    try {
      const summary = await runLocal({
        out: dir, seed: 5, sftSteps: SFT, steps: GRPO, overrides: [...TINY, `grpo.advantageMode=${mode}`, ...extra],
        rolloutWorkers: 1, rewardWorkers: 1, log: (l) => log.push(l), onStarted: (_s, info) => { config = info.config; },
      });
      assert.equal(summary.final_version, SFT + GRPO, log.slice(-20).join('\n'));
      const pipeline = sha256Hex(readFileSync(summary.final_checkpoint));
      const single = await runSingleProcess(config!);
      assert.equal(single.checkpoint.meta.version, SFT + GRPO);
      assert.equal(encodeCheckpoint(single.checkpoint).digest, pipeline, 'the two loops trained different weights (or recorded different checkpoints)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
