// The quarantine window at grpo.maxStaleness > 0: which stale groups count as checked (TrainResult.check_coverage).
// review26c: the quarantine window at grpo.maxStaleness > 0. The learner's stale-row check (grpo.staleCheckFraction 1,
// the default) examines every stale group, but the orchestrator counts a stale group in its worker's window only when
// it was excluded (coordinator.ts recordChecked). So a worker whose groups are stale has no clean results in its window:
// its exclusions never leave it, and grpo.quarantineWindow degenerates to the whole run (the false quarantine of an
// honest worker with rare outliers that the window was made to stop, docs/security.md "Why a window").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { encodeTensor } from '../../lib/transport/index.ts';
import { testCoordinator } from '../helpers/coordinator.ts';
import { fakeSession, until } from '../helpers/fake-session.ts';

// fix26b: the learner reports which actions its checks did not examine (TrainResult.check_coverage); at fraction 1,
// with every stale version held, none: each result below carries an empty list, as the learner sends it
// (test/roles/learner-stale.test.ts checks the learner's side). `coverage` undefined plays an older learner.
async function windowRun(coverage: (seq: number) => number[] | undefined) {
  const H = 16;
  const cfg = parseConfig({
    run: { id: 'r26cwin', seed: 1 }, data: { size: H, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 },
    grpo: { steps: 4, groupSize: 2, samplesPerBatch: 2, maxStaleness: 3, advantageMode: 'scalar', quarantineAfter: 2, quarantineWindow: 2, staleCheckFraction: 1 },
  });
  const { c, log } = await testCoordinator(cfg, 'r26cwin');
  const failures: Array<{ code: number; details: string }> = [];
  const w = Object.assign(fakeSession('ROLLOUT', 'w'), { fail: (code: number, details: string) => void failures.push({ code, details }) });
  const scorer = fakeSession('REWARD', 'scorer');
  const learner = fakeSession('LEARNER', 'l');
  for (const s of [w, scorer, learner]) {
    c.track(s);
    c.attach(s);
  }
  c.start();
  const img = encodeTensor({ dtype: 'float32', shape: [3, H, H], data: new Float32Array(3 * H * H).fill(0.5) }) as never;
  const tasks = () => w.sent.flatMap((m) => (m.rollout_task ? [m.rollout_task] : m.task_bundle?.rollout_tasks ?? []));
  const scores = () => scorer.sent.flatMap((m) => (m.score_task ? [m.score_task] : m.task_bundle?.score_tasks ?? []));
  // every group of the four batches (all open at once at maxStaleness 3) rolled out at version 0
  let answered = 0;
  for (let i = 0; i < 40 && answered < 8; i++) {
    await until(() => tasks().length > answered, 'rollout tasks');
    for (const t of tasks().slice(answered)) c.handle(w, { rollout_result: { task_id: t.task_id, attempt: t.attempt, policy_version: t.policy_version_min ?? 0, compute_ms: 1, items: [0, 1].map((g) => ({ sample_id: 'x', group_index: g, action: img, logp: -1 })) } } as never);
    answered = tasks().length;
  }
  let scored = 0;
  for (let i = 0; i < 40 && scored < 8; i++) {
    await until(() => scores().length > scored, 'score tasks');
    for (const t of scores().slice(scored)) c.handle(scorer, { score_result: { task_id: t.task_id, attempt: t.attempt, components: [{ ssim: 0.9, clip_cos: 0.9 }, { ssim: 0.1, clip_cos: 0.1 }] } } as never);
    scored = scores().length;
  }
  // batch 1 at version 0 (same version): clean. Batches 2-4 are trained at versions 1-3 over rows of version 0, all
  // stale, all checked by the learner (fraction 1, versions 0-2 kept): batch 2 excludes the first group, batch 3 none,
  // batch 4 the second group. The worker's checked results: . . | E . | . . | . E  -> at batch 4's E its last 2 hold
  // one exclusion: below quarantineAfter 2.
  const excludedOf: Record<number, number[]> = { 1: [], 2: [0, 1], 3: [], 4: [2, 3] };
  for (let seq = 1; seq <= 4; seq++) {
    await until(() => learner.sent.filter((m) => m.train_batch).length >= seq, `batch ${seq} at the learner`);
    const b = learner.sent.filter((m) => m.train_batch)[seq - 1]!.train_batch!;
    assert.equal(b.batch_seq, seq);
    if (seq > 1) assert.ok(b.behaviour_versions!.every((v) => v < seq - 1), `batch ${seq}'s rows are stale: ${b.behaviour_versions}`);
    const unchecked = coverage(seq);
    c.handle(learner, { train_result: { batch_id: `r26cwin-b${seq}`, batch_seq: seq, applied: true, skipped_reason: '', version: seq, excluded_actions: excludedOf[seq], flow_steps: [], ...(unchecked ? { check_coverage: { unchecked_actions: unchecked } } : {}) } } as never);
    await until(() => c.state.ackedSeq >= seq, `batch ${seq} acknowledged\n${log.join('\n')}`);
  }
  await c.done;
  return { failures, log };
}

test('review26c: stale groups the learner checked and passed count in the window (after 2, window 2)', async () => {
  const { failures, log } = await windowRun(() => []);
  assert.deepEqual(failures, [], `an honest worker with 1 exclusion in its last 2 checked results was quarantined:\n${log.filter((l) => /quarantin|excluded/.test(l)).join('\n')}`);
});

test('fix26b: a stale group the learner reports unchecked does not count in the window', async () => {
  // the passed stale groups reported unchecked (e.g. left out by a staleCheckFraction < 1 sample): batch 2's second
  // group, batch 3's two, batch 4's first. The worker's checked results are . . | E | | E  -> 2 exclusions in its last
  // 2: quarantined
  const unchecked: Record<number, number[]> = { 2: [2, 3], 3: [0, 1, 2, 3], 4: [0, 1] };
  const { failures } = await windowRun((seq) => unchecked[seq] ?? []);
  assert.equal(failures.length, 1, 'quarantined once');
  assert.match(failures[0]!.details, /quarantin/i);
});

test('fix26b: an older learner (no check_coverage): a stale group counts only when excluded, as before, and said once', async () => {
  const { failures, log } = await windowRun(() => undefined);
  assert.equal(failures.length, 1, 'the old rule: the passed stale results are not in the window, the two exclusions are adjacent');
  assert.equal(log.filter((l) => l.includes('carry no check_coverage (an older learner)')).length, 1, log.join('\n'));
});
