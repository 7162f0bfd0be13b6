// grpo.ema and an extended run (round 26, review26d F1): "a raised grpo.steps extends the run" (docs/architecture.md,
// kubernetes.md, reliability.md; fix26b lets it through the layout check) does not hold as stated with grpo.ema > 0 once
// the old last batch was trained: that batch published the average in place of the trained weights (learner/index.ts
// publishAverageAtEnd), the trained weights are stored nowhere, and a learner resumed under the extended configuration
// trains on from the average with the AdamW moments of the trained trajectory. The run goes on from other weights than
// a run configured with the larger grpo.steps from the start. This test drives the learner through it: the first
// assertions show the continuation from the average; the learner now warns at the resume, naming grpo.ema and both
// last batches (it trained on silently before fix26c), and does not warn at a mid-run restart nor at a restart of the
// finished run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import type { TensorMap } from '../../lib/checkpoint/index.ts';
import { runLearner } from '../../learner/index.ts';
import type { Logger } from '../../lib/worker/index.ts';
import { parsed, sftBatch, startFakeOrchestrator, tinyConfig } from './helpers.ts';
import { grpoBatch, grpoStepByHand, rollOut, startLearnerRig } from './learner-harness.ts';

const RUN = 'review26d-ema-extend';
const D = 0.5;
const grpo = { groupSize: 2, clipLow: 0.2, clipHigh: 0.2, beta: 0.5, ema: D };
// SFT 1 batch, GRPO 2 (seqs 2-3; seq 3 publishes the average); then extended to GRPO 3 (seq 4 the new last)
const first = tinyConfig(RUN, { sft: { lr: 0.003, steps: 1 }, optim: { lr: 0.003 }, grpo: { ...grpo, steps: 2 } });
const extended = tinyConfig(RUN, { sft: { lr: 0.003, steps: 1 }, optim: { lr: 0.003 }, grpo: { ...grpo, steps: 3 } });

let nats: TestNatsServer;
before(async () => {
  nats = await startNatsServer();
});
after(async () => {
  await nats?.stop();
});

const maxDiff = (a: TensorMap, b: TensorMap) => Math.max(...[...a].map(([k, t]) => Math.max(...t.data.map((x, i) => Math.abs(x - b.get(k)!.data[i]!)))));

test('review26d F1: raising grpo.steps after the grpo.ema average was published continues from the average, with a warning', { timeout: 180_000 }, async () => {
  const config = parsed(first);
  const rigLines: string[] = [];
  const rigLogger: Logger = { info: (m) => rigLines.push(`info ${m}`), warn: (m) => rigLines.push(`warn ${m}`), error: (m) => rigLines.push(`error ${m}`) };
  const rig = await startLearnerRig({ runId: RUN, input: first, natsUrl: nats.url, learner: { logger: rigLogger } });
  const averageWarnings = () => rigLines.filter((l) => /^warn .*published the grpo\.ema weight average/.test(l));
  let v1: TensorMap, v3: TensorMap, s3: Awaited<ReturnType<typeof rig.savedAt>>;
  let raw3: TensorMap;
  try {
    assert.equal((await rig.train(sftBatch(RUN, 1))).train_result!.applied, true);
    const d2 = await rollOut(config, (await rig.checkpointAt(1)).params, 2);
    assert.equal((await rig.train(grpoBatch(RUN, 2, d2, 1))).train_result!.applied, true);
    const v2 = (await rig.checkpointAt(2)).params;
    const s2 = await rig.savedAt(2);
    // a mid-run restart (v2 is no last batch: its parameters are the trained weights) is not warned about
    await rig.restartLearner();
    assert.ok(rigLines.some((l) => l.startsWith('info resumed from checkpoint v2')), rigLines.join('\n'));
    assert.deepEqual(averageWarnings(), []);
    v1 = (await rig.checkpointAt(1)).params;
    const d3 = await rollOut(config, v2, 3);
    raw3 = await grpoStepByHand(config, v2, s2.state, v1, d3);
    assert.equal((await rig.train(grpoBatch(RUN, 3, d3, 2))).train_result!.applied, true);
    v3 = (await rig.checkpointAt(3)).params;
    s3 = await rig.savedAt(3);
    // a restart of the finished run under its own configuration (nothing left to train) is not warned about either
    await rig.restartLearner();
    assert.ok(rigLines.some((l) => l.startsWith('info resumed from checkpoint v3')), rigLines.join('\n'));
    assert.deepEqual(averageWarnings(), []);
  } finally {
    await rig.close();
  }
  assert.ok(maxDiff(v3, raw3) > 1e-4, 'version 3 (the old last batch) is the average, not the trained weights');
  assert.ok(maxDiff(v3, s3.average!.shadow) < 1e-7, 'the stored average is version 3; the trained weights are stored nowhere');

  // the extended run: the learner resumes from v3 under grpo.steps 3
  const lines: string[] = [];
  const logger: Logger = { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) };
  const orch = await startFakeOrchestrator({ runId: RUN, config: extended });
  const learner = await runLearner({ orchestrator: orch.address, nats: nats.url, workerId: 'learner-1', logger, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
  const outcome = await Promise.race([learner.ready.then(() => 'ready' as const), learner.done.then(() => 'stopped' as const)]).catch((e: Error) => e);
  try {
    if (outcome === 'ready') {
      const cfg = parsed(extended);
      const d4 = await rollOut(cfg, v3, 4);
      const from = orch.received.length;
      await orch.send('learner-1', { train_batch: grpoBatch(RUN, 4, d4, 3) });
      const r = (await orch.next((m) => m.train_result?.batch_id === `${RUN}-b4`, { from, timeoutMs: 60_000 })).train_result!;
      assert.equal(r.applied, true);
      // what seq 4 trained: a step from the average v3 (not from the trained weights raw3)
      const fromAverage = await grpoStepByHand(cfg, v3, s3.state, v1, d4);
      const { CheckpointStore, connectNats } = await import('../../lib/transport/index.ts');
      const { decodeCheckpoint } = await import('../../lib/checkpoint/index.ts');
      const nc = await connectNats({ url: nats.url, name: 'review26d' });
      const store = await CheckpointStore.open(nc, { runId: RUN });
      const v4 = decodeCheckpoint((await store.get(4)).bytes).params;
      await nc.close();
      // seq 4 is the new last batch: v4 = D * average(v3) + (1 - D) * (the step from v3)
      const want = new Map([...v3].map(([k, t]) => [k, { ...t, data: t.data.map((x, i) => D * x + (1 - D) * fromAverage.get(k)!.data[i]!) }]));
      assert.ok(maxDiff(v4, want as TensorMap) < 1e-6, `the extension trained on from the average (max diff ${maxDiff(v4, want as TensorMap)})`);
    }
  } finally {
    await learner.stop({ graceMs: 1000 });
    await learner.done.catch(() => undefined);
    await orch.close();
  }
  // the learner does not continue from the average silently: it warns, naming grpo.ema and both last batches
  assert.equal(outcome, 'ready', 'an extension on purpose is not refused');
  const warned = lines.filter((l) => l.startsWith('warn ') && l.includes('published the grpo.ema weight average in place of the trained weights'));
  assert.equal(warned.length, 1, `the resume past the published average was not warned about; the learner logged:\n${lines.filter((l) => !l.startsWith('info metrics')).slice(0, 12).join('\n')}`);
  assert.match(warned[0]!, /checkpoint v3.*\(batch 3\).*batch 3 was the run's last GRPO batch when it was trained, and this configuration's last is batch 4 \(grpo\.steps raised to 3: the run is extended\)\. Training continues from the average/);
});
