// The learner's stale-row check over real gRPC and a real nats-server, at grpo.maxStaleness 1: rows rolled out with
// the version before the learner's are recomputed under that version's kept parameters. An honest stale batch trains
// bit for bit as the step computed here without any check; a row whose logp_old is forged by 0.5 nats (under the dual
// clip's c = 3, so before round 26 it trained at 1.65x its weight) is excluded, listed in excluded_actions (the
// orchestrator's quarantine counts it as a same-version exclusion) and counted; after a restart the versions before
// it are not held, and their rows are counted as not checked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';
import { parsed, sftBatch, tinyConfig } from './helpers.ts';
import { assertSameParams as sameParams, grpoBatch, grpoStepByHand, rollOut, startLearnerRig, type LearnerRig } from './learner-harness.ts';

const RUN = 'learn-stale';
const input = tinyConfig(RUN, { sft: { steps: 1, lr: 0.003 }, optim: { lr: 0.001 }, grpo: { groupSize: 2, clipLow: 0.2, clipHigh: 0.2, beta: 0.5, maxStaleness: 1, steps: 10 } });
const config = parsed(input);

let nats: TestNatsServer;
let rig: LearnerRig;

before(async () => {
  nats = await startNatsServer();
  rig = await startLearnerRig({ runId: RUN, input, natsUrl: nats.url });
});
after(async () => {
  await rig?.close();
  await nats?.stop();
});

const paramsAt = async (version: number) => (await rig.checkpointAt(version)).params;
const optimizerAt = async (version: number) => (await rig.savedAt(version)).state;
const metrics = async () => (await fetch(`${rig.learner.metricsUrl}/metrics`)).text();

test('maxStaleness 1: honest stale rows train as without the check; a forged stale row is excluded and reported', async () => {
  assert.equal(config.grpo.staleCheckFraction, 1);
  assert.equal((await rig.train(sftBatch(RUN, 1))).train_result!.version, 1);
  // GRPO batch 2 at version 1 (the KL reference from here on), on policy
  const d1 = await rollOut(config, await paramsAt(1), 20);
  assert.equal((await rig.train(grpoBatch(RUN, 2, d1, 1))).train_result!.version, 2);

  // batch 3 at version 2, rolled out with version 1: stale and honest
  const ref = await paramsAt(1);
  const d2 = await rollOut(config, await paramsAt(1), 21);
  const expected3 = await grpoStepByHand(config, await paramsAt(2), await optimizerAt(2), ref, d2);
  const r3 = (await rig.train(grpoBatch(RUN, 3, d2, 1))).train_result!;
  assert.deepEqual([r3.applied, r3.version, r3.excluded_actions], [true, 3, []]);
  // every stale group checked (fraction 1, version 1 held): none unchecked, reported as such (check_coverage present)
  assert.deepEqual(r3.check_coverage, { unchecked_actions: [] });
  sameParams(rig.learner.params()!, expected3);

  // batch 4 at version 3, rolled out with version 2; action 1 (advantage -1) 0.5 nats below its true log-density
  const d3 = await rollOut(config, await paramsAt(2), 22);
  const expected4 = await grpoStepByHand(config, await paramsAt(3), await optimizerAt(3), ref, { ...d3, advantages: d3.advantages.map((a, i) => (i === 1 ? 0 : a)) });
  d3.logpOld[1]! -= 0.5;
  const r4 = (await rig.train(grpoBatch(RUN, 4, d3, 2))).train_result!;
  assert.deepEqual([r4.applied, r4.version], [true, 4]);
  assert.deepEqual(r4.excluded_actions, [1]);
  sameParams(rig.learner.params()!, expected4);

  const text = await metrics();
  assert.match(text, /recovery_grpo_logp_rows_excluded_total\{run_id="learn-stale",role="learner"\} 1/);
  assert.match(text, /recovery_grpo_logp_stale_rows_total\{[^}]*outcome="checked"[^}]*\} 8/);
});

test('after a restart the versions before it are not held: their rows are counted as not checked, and train', async () => {
  await rig.restartLearner();
  const d = await rollOut(config, await paramsAt(3), 23);
  const expected = await grpoStepByHand(config, await paramsAt(4), await optimizerAt(4), await paramsAt(1), d);
  const r = (await rig.train(grpoBatch(RUN, 5, d, 3))).train_result!;
  assert.deepEqual([r.applied, r.version, r.excluded_actions], [true, 5, []]);
  // rows of version 3, not held: every action reported unchecked, so the orchestrator's quarantine window skips them
  assert.deepEqual(r.check_coverage?.unchecked_actions, Array.from({ length: d.logpOld.length }, (_, i) => i));
  sameParams(rig.learner.params()!, expected);
  assert.match(await metrics(), /recovery_grpo_logp_stale_rows_total\{[^}]*outcome="not_held"[^}]*\} 4/);
  // the version it resumed at is kept: the next batch's stale rows are checked again
  const d2 = await rollOut(config, await paramsAt(4), 24);
  d2.logpOld[2]! -= 0.5;
  const r2 = (await rig.train(grpoBatch(RUN, 6, d2, 4))).train_result!;
  assert.deepEqual([r2.applied, r2.version, r2.excluded_actions], [true, 6, [2]]);
  assert.deepEqual(r2.check_coverage, { unchecked_actions: [] });
});
