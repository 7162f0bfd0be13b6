// The single-process loop is the pipeline's executable specification: with maxStaleness 0, one rollout and
// one reward worker, the distributed pipeline (nats-server and the four roles as processes) ends on the same
// checkpoint as runSingleProcess, byte for byte, after a short SFT and several GRPO steps, for scalar and
// dense advantages, for the Gaussian and the flow family, when every group is dropped, with the identity member
// and with the weight averages (grpo.ema; sft.ema, flow family).
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
  'grpo.samplesPerBatch=2', 'grpo.maxStaleness=0', 'eval.samples=2', 'eval.draws=one', 'eval.everyVersions=0',
  'orchestrator.leaseSeconds=30', 'orchestrator.heartbeatSeconds=1',
];

const FLOW = [
  'model.family=flow', 'flow.steps=4', 'flow.evalSteps=3', 'flow.sde.window.size=1', 'flow.timeFrequencies=2', 'flow.timeWidth=4',
];

/**
 * The flow family's per-step diagnostics travel learner -> TrainResult -> orchestrator progress (the live page's
 * history and the event log): one entry per trained step index in the batch, and the first GRPO batch is
 * on-policy with the reference equal to the policy: nothing clipped, KL 0.
 */
function assertFlowStepMetrics(eventsFile: string): void {
  // GRPO batches are seq SFT + 1 .. SFT + GRPO (the last SFT batch's progress line may already say phase grpo).
  const grpo = readFileSync(eventsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; seq?: number; flow_steps?: Array<{ step: number; clip_fraction: number; kl: number }> })
    .filter((e) => e.type === 'progress' && e.seq! > SFT);
  assert.equal(grpo.length, GRPO);
  for (const e of grpo) {
    // Window 1 at a random place per sample id, 2 sample ids per batch: one or two distinct steps, in order.
    const steps = (e.flow_steps ?? []).map((s) => s.step);
    assert.ok(steps.length >= 1 && steps.length <= 2 && steps.every((k, i) => i === 0 || k > steps[i - 1]!), JSON.stringify(e));
    for (const s of e.flow_steps!) {
      assert.ok(Number.isInteger(s.step) && s.step >= 0 && s.step < 3, `trained step ${s.step} (T = 4, the last never trained)`);
      assert.ok(s.clip_fraction >= 0 && s.clip_fraction <= 1 && s.kl >= 0, JSON.stringify(s));
    }
  }
  for (const first of grpo[0]!.flow_steps!) {
    assert.equal(first.clip_fraction, 0);
    assert.ok(first.kl < 1e-9, `first step's KL ${first.kl}`);
  }
}

const cases = [
  ...(['scalar', 'dense'] as const).map((mode) => ({ name: mode, mode, extra: [] as string[] })),
  ...(['scalar', 'dense'] as const).map((mode) => ({ name: `flow, ${mode}`, mode, extra: FLOW })),
  // A reward that pays only for a perfect restoration, which no noisy action reaches, makes every group's rewards
  // equal (0): DAPO drops every group, and both loops record each GRPO batch as a new version with the parameters
  // unchanged (the learner's empty batch). (Zero weights, which did this before round 24, are refused at load: a
  // reward constant over the components' range never trains.)
  { name: 'every group dropped', mode: 'scalar' as const, extra: ['reward.expression="ssim >= 1 ? 1 : 0"', 'reward.weights={}', 'grpo.dropZeroVarianceGroups=true'] },
  // The identity member (docs/grpo.md): scored by the reward worker in the group's task, its advantages on the
  // TrainBatch, its term in the learner's graph; dense, which carries its map too.
  { name: 'dense, identity member', mode: 'dense' as const, extra: ['grpo.identityAnchor=2'] },
  // grpo.ema (lib/grpo/weight-average.ts): the learner keeps the GRPO weights' moving average beside its moments
  // and publishes it at the last batch, as the loop does at its last step.
  { name: 'dense, GRPO weight average', mode: 'dense' as const, extra: ['grpo.ema=0.5'] },
  // sft.ema (flow family): the learner keeps the SFT average beside its moments and publishes it at the last SFT
  // batch, as the loop's finishSft; GRPO then starts from it.
  { name: 'flow, scalar, SFT weight average', mode: 'scalar' as const, extra: [...FLOW, 'sft.ema=0.5'] },
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
      if (extra === FLOW) assertFlowStepMetrics(join(dir, 'events.jsonl'));
      if (name === 'flow, scalar, SFT weight average') {
        const plain = await runSingleProcess({ ...config!, sft: { ...config!.sft, ema: 0 } });
        assert.notEqual(encodeCheckpoint(plain.checkpoint).digest, pipeline, 'the SFT average changed nothing');
      }
      if (name === 'dense, GRPO weight average') {
        const plain = await runSingleProcess({ ...config!, grpo: { ...config!.grpo, ema: 0 } });
        assert.notEqual(encodeCheckpoint(plain.checkpoint).digest, pipeline, 'the average changed nothing');
      }
      if (name === 'every group dropped') {
        assert.deepEqual(single.params, single.sftParams, 'an empty batch trained something');
        assert.equal(single.checkpoint.meta.step, SFT, 'optimizer steps: the SFT batches only');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
