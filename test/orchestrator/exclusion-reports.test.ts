// The learner's kept exclusion reports (lib/grpo/exclusion-reports.ts, round 32): what a report holds, and that the
// coordinator counts a batch's report only when it acknowledges the batch without a TrainResult that reports it (a
// Hello's catch-up, a 'duplicate' answer), once: never again after the batch's acknowledgement was written, nor for a
// batch whose TrainResult it counted. The coordinator alone with fake sessions (as retries-claims-catch-up.test.ts).
// The kill between a TrainResult and its acknowledgement, with real processes: quarantine-kill-ack.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { encodeTensor, trainBatchDigest, type TrainBatch, type WorkerMessage__Output } from '../../lib/transport/index.ts';
import { boundResults, buildExclusionReport, DROPPED_REPORTS_KEPT, EXCLUSION_REPORTS_KEPT, EXCLUSION_REPORTS_LABEL, keepExclusionReport, readDroppedReports, readExclusionReports, REPORT_RESULTS_MAX, reportsUpTo, type ExclusionReport } from '../../lib/grpo/exclusion-reports.ts';
import { fakeSession, until, type FakeSession } from '../helpers/fake-session.ts';
import { testCoordinator } from '../helpers/coordinator.ts';
import { sumMetric } from '../helpers/metrics.ts';

test('a report: per worker its examined groups in batch order, x excluded, p passed; unchecked groups left out', () => {
  // groups a (w1), b (w2), c (w1), d (w2), two actions each; b's second action excluded, d has an unchecked action
  const ids = ['a', 'a', 'b', 'b', 'c', 'c', 'd', 'd'];
  const workers = ['w1', 'w1', 'w2', 'w2', 'w1', 'w1', 'w2', 'w2'];
  // `actions`: per worker with an excluded result, its excluded actions (rollout_rows_excluded_total counts them)
  assert.deepEqual(buildExclusionReport(4, ids, workers, [3], [7], true), { seq: 4, results: { w1: 'pp', w2: 'x' }, actions: { w2: 1 } });
  assert.deepEqual(buildExclusionReport(4, ids, workers, [2, 3, 3, 4, 99], [], true), { seq: 4, results: { w1: 'px', w2: 'xp' }, actions: { w1: 1, w2: 2 } });
  // not applied (skipped as non-finite): only the excluded results are counted, as a TrainResult's would be
  assert.deepEqual(buildExclusionReport(4, ids, workers, [3], [7], false), { seq: 4, results: { w2: 'x' }, actions: { w2: 1 } });
  // nothing excluded, or no attribution (an older orchestrator) or a wrong length: no report
  assert.equal(buildExclusionReport(4, ids, workers, [], [], true), undefined);
  assert.equal(buildExclusionReport(4, ids, [], [3], [], true), undefined);
  assert.equal(buildExclusionReport(4, ids, workers.slice(1), [3], [], true), undefined);
  // a worker's results are cut to REPORT_RESULTS_MAX, its oldest passed results first: every excluded one stays
  // (review32 F5: before, the newest REPORT_RESULTS_MAX were kept, losing an early exclusion)
  const many = Array.from({ length: REPORT_RESULTS_MAX + 5 }, (_, i) => `g${i}`);
  const r = buildExclusionReport(1, many, many.map(() => 'w'), [0, many.length - 1], [], true)!;
  assert.equal(r.results['w'], `x${'p'.repeat(REPORT_RESULTS_MAX - 2)}x`);
  // ... a report whose only exclusion is the batch's first result is kept (before: cut, no report at all)
  assert.deepEqual(buildExclusionReport(1, many, many.map(() => 'w'), [0], [], true), { seq: 1, results: { w: `x${'p'.repeat(REPORT_RESULTS_MAX - 1)}` }, actions: { w: 1 } });
  // ... and passed results are dropped from the oldest, between exclusions too
  assert.equal(boundResults(`p${'x'.repeat(3)}${'p'.repeat(REPORT_RESULTS_MAX)}`), `xxx${'p'.repeat(REPORT_RESULTS_MAX - 3)}`);
  // more excluded results than the bound: the newest REPORT_RESULTS_MAX of them, every passed one dropped
  assert.equal(boundResults(`${'x'.repeat(REPORT_RESULTS_MAX)}pp${'x'}`), 'x'.repeat(REPORT_RESULTS_MAX));
  assert.equal(boundResults('pxp'), 'pxp');
  assert.ok(readExclusionReports([{ seq: 1, results: { w: boundResults('x'.repeat(2 * REPORT_RESULTS_MAX)) } }]).length === 1, 'a bounded report is well formed');
});

test('kept reports: a seq replaces its own and later ones, the newest EXCLUSION_REPORTS_KEPT stay, malformed entries are dropped', () => {
  const rep = (seq: number, marks = 'x'): ExclusionReport => ({ seq, results: { w: marks } });
  let kept: unknown = undefined;
  for (let s = 1; s <= EXCLUSION_REPORTS_KEPT + 2; s++) kept = keepExclusionReport(kept, rep(s));
  assert.deepEqual(readExclusionReports(kept).map((r) => r.seq), Array.from({ length: EXCLUSION_REPORTS_KEPT }, (_, i) => i + 3));
  // a learner resumed from an older version trains batch 5 again: its report replaces 5 and what came after
  kept = keepExclusionReport(kept, rep(5, 'px'));
  assert.deepEqual(readExclusionReports(kept), [rep(3), rep(4), rep(5, 'px')]);
  assert.deepEqual(readExclusionReports([rep(2), { seq: 3, results: { w: 'xy' } }, { seq: 0, results: {} }, 'junk', { seq: 4, results: { 'bad id': 'x' } }]), [rep(2)]);
  assert.deepEqual(readExclusionReports({ seq: 1 }), []);
  // a learner resuming after batch 4 keeps the reports up to it (review32 F6)
  assert.deepEqual(reportsUpTo([rep(5), rep(3), rep(4), 'junk'], 4), [rep(3), rep(4)]);
});

test('kept reports pushed out by the bound leave their seq (round 33): replaced like reports, bounded, dropped at a resume, ignored by an older reader', () => {
  const rep = (seq: number): ExclusionReport => ({ seq, results: { w: 'x' }, actions: { w: 1 } });
  const dropped = (seq: number) => ({ seq, dropped: true as const });
  let kept: unknown = undefined;
  for (let s = 1; s <= EXCLUSION_REPORTS_KEPT + 3; s++) kept = keepExclusionReport(kept, rep(s));
  assert.deepEqual(kept, [dropped(1), dropped(2), dropped(3), ...Array.from({ length: EXCLUSION_REPORTS_KEPT }, (_, i) => rep(i + 4))]);
  assert.deepEqual(readDroppedReports(kept), [1, 2, 3]);
  // what a round-32 orchestrator reads: the well-formed reports only (a dropped seq is no report)
  assert.deepEqual(readExclusionReports(kept).map((r) => r.seq), Array.from({ length: EXCLUSION_REPORTS_KEPT }, (_, i) => i + 4));
  // a report of batch 3 again (a learner resumed from an older version): the dropped seq 3 and every later report go
  kept = keepExclusionReport(kept, rep(3));
  assert.deepEqual(kept, [dropped(1), dropped(2), rep(3)]);
  // a resume after batch 1 drops the later dropped seqs too (a report of a batch not published would be said lost)
  assert.deepEqual(reportsUpTo([dropped(1), dropped(2), rep(3)], 1), [dropped(1)]);
  // a seq both dropped and held (a hand-made record) is held; malformed ones are ignored
  assert.deepEqual(readDroppedReports([dropped(2), rep(2), { seq: 0, dropped: true }, { seq: 5, dropped: false }, dropped(1)]), [1]);
  // at most DROPPED_REPORTS_KEPT seqs, the newest
  kept = Array.from({ length: DROPPED_REPORTS_KEPT }, (_, i) => dropped(i + 1));
  kept = keepExclusionReport([...(kept as unknown[]), ...Array.from({ length: EXCLUSION_REPORTS_KEPT }, (_, i) => rep(DROPPED_REPORTS_KEPT + i + 1))], rep(DROPPED_REPORTS_KEPT + EXCLUSION_REPORTS_KEPT + 1));
  assert.deepEqual(readDroppedReports(kept), Array.from({ length: DROPPED_REPORTS_KEPT }, (_, i) => i + 2));
  // the largest record stays far under a NATS message (1 MiB): 8 reports of 64 ids of 128 characters, 256 results each
  const id = (i: number) => `${String(i).padStart(3, '0')}${'w'.repeat(125)}`;
  const big = (seq: number): ExclusionReport => ({ seq, results: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [id(i), 'x'.repeat(256)])), actions: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [id(i), 9_999_999])) });
  kept = Array.from({ length: DROPPED_REPORTS_KEPT }, (_, i) => dropped(9_000_000_000 + i));
  for (let s = 1; s <= EXCLUSION_REPORTS_KEPT; s++) kept = keepExclusionReport(kept, big(9_100_000_000 + s));
  const bytes = JSON.stringify(kept).length;
  assert.ok(bytes < 400_000, `${bytes} bytes`);
});

const G = 2;
const H = 16;

test('the coordinator counts a kept report once, only for a batch acknowledged without its TrainResult; a duplicate after the acknowledgement counts nothing', async () => {
  // what the learner's record holds and its newest published checkpoint says, as the test moves them
  let reports: ExclusionReport[] = [];
  let published = { version: 0, lastBatchSeq: 0 };
  let reads = 0;
  const { c, log, why, rollOut, sentBatch, answer: answerWith, replaceLearner } = await keptReportsRun('kept-reports', {
    reports: () => {
      reads++;
      return reports;
    },
    published: async () => published,
  });
  // this test's answers carry check_coverage only where it says so
  const answer = (b: TrainBatch, fields: Record<string, unknown>) => answerWith(b, { check_coverage: undefined, ...fields });

  // batch 1: its TrainResult excludes the forger's group and is counted as it arrives (1 of its last 10); the
  // learner kept a report of it too
  await rollOut(1);
  const b1 = await sentBatch(1);
  assert.deepEqual(b1.rollout_workers, ['forger', 'forger'], 'each action names its group\'s rollout worker');
  reports = [{ seq: 1, results: { forger: 'x' } }];
  published = { version: 1, lastBatchSeq: 1 };
  answer(b1, { excluded_actions: [0, 1], check_coverage: { unchecked_actions: [] } });
  await until(() => c.state.ackedSeq === 1, `batch 1 acknowledged\n${why()}`);
  assert.deepEqual(c.state.quarantineWindows, { forger: [0] }, why());
  // a plain re-send answered 'duplicate' after the acknowledgement was written counts nothing (nor reads the record)
  // (onTrain drops a result for an acknowledged seq before its first await: nothing to wait for)
  answer(b1, { applied: false, skipped_reason: 'duplicate', batch_digest: '' });
  assert.equal(reads, 0, why());

  // batch 2 is trained, its TrainResult never arrives (the learner reconnects saying it holds batch 2): acknowledged by
  // the catch-up, counted from its report (one passed result); batch 1's report, already counted, is not counted again
  await rollOut(2);
  await sentBatch(2);
  reports = [{ seq: 1, results: { forger: 'x' } }, { seq: 2, results: { forger: 'p' } }];
  published = { version: 2, lastBatchSeq: 2 };
  replaceLearner(2);
  await until(() => c.state.ackedSeq === 2, `batch 2 caught up\n${why()}`);
  assert.equal(reads, 1, why());
  // 1 excluded result, 1 result before the forger's newest: batch 1's report counted again would have made 2 (quarantined)
  assert.deepEqual(c.state.quarantineWindows, { forger: [1] }, why());
  assert.equal(c.state.quarantined, undefined, why());

  // batch 3: a restarted learner (its Hello says nothing) answers 'duplicate': its published checkpoint holds batch 3,
  // and the report of batch 3 (excluded) is counted: 2 of its last 10, quarantined; a second 'duplicate' counts nothing
  replaceLearner();
  await rollOut(3);
  const b3 = await sentBatch(3);
  reports = [{ seq: 1, results: { forger: 'x' } }, { seq: 2, results: { forger: 'p' } }, { seq: 3, results: { forger: 'x' } }];
  published = { version: 3, lastBatchSeq: 3 };
  answer(b3, { applied: false, skipped_reason: 'duplicate', version: 3 });
  await until(() => c.state.ackedSeq === 3, `batch 3 acknowledged from the duplicate\n${why()}`);
  assert.deepEqual(c.state.quarantined, ['forger'], why());
  assert.ok(log.some((l) => /^GRPO batch 3 \(acknowledged without its TrainResult at hand; the learner's kept report of it\): the learner excluded rows of 1 of 1 checked rollout results of rollout worker forger; 2 of its last 10/.test(l)), why());
  assert.equal(log.filter((l) => /^quarantined rollout worker forger: /.test(l)).length, 1, why());
  answer(b3, { applied: false, skipped_reason: 'duplicate', version: 3 });
  assert.equal(reads, 2, why());
  assert.ok(!log.some((l) => /the learner does not keep exclusion reports/.test(l)), why());
});

test('an older learner (no exclusion_reports label) caught up: said once, nothing counted, the acknowledgement goes through', async () => {
  const config = parseConfig({
    run: { id: 'kept-reports-old', seed: 1 }, data: { size: H, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: 4, groupSize: G, samplesPerBatch: 1, maxStaleness: 0, advantageMode: 'scalar', quarantineAfter: 2, quarantineWindow: 10 },
  });
  let published = { version: 1, lastBatchSeq: 1 };
  const { c, log } = await testCoordinator(config, 'kept-reports-old', { publishedProgress: async () => published, exclusionReports: async () => undefined });
  c.start();
  const older = (held: number) => {
    const l = fakeSession('LEARNER', 'l');
    (l.hello as { last_batch_seq?: number }).last_batch_seq = held;
    return l;
  };
  let l = older(1);
  c.attach(l);
  await until(() => c.state.ackedSeq === 1, `batch 1 caught up\n${log.join('\n')}`);
  (l as { isOpen: boolean }).isOpen = false;
  c.detach(l);
  published = { version: 2, lastBatchSeq: 2 };
  l = older(2);
  c.attach(l);
  await until(() => c.state.ackedSeq === 2, `batch 2 caught up\n${log.join('\n')}`);
  assert.deepEqual(log.filter((x) => /^the learner does not keep exclusion reports \(an older learner\)/.test(x)), [
    'the learner does not keep exclusion reports (an older learner): the excluded results of GRPO batches acknowledged without their TrainResult (here 1..1) are not counted in the quarantine windows (docs/security.md)',
  ]);
  assert.equal(c.state.quarantineWindows, undefined);
});

/**
 * A coordinator with a forger, a reward worker and a learner that keeps reports (fake sessions), GRPO at maxStaleness
 * 0, quarantined at 2 of 10. `reports` and `published` are what the learner's record and its newest checkpoint say.
 */
async function keptReportsRun(name: string, o: { reports: () => unknown; published: () => Promise<{ version: number; lastBatchSeq: number }>; quarantineAfter?: number }) {
  const config = parseConfig({
    run: { id: name, seed: 1 }, data: { size: H, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: 4, groupSize: G, samplesPerBatch: 1, maxStaleness: 0, advantageMode: 'scalar', quarantineAfter: o.quarantineAfter ?? 2, quarantineWindow: 10 },
    orchestrator: { bundleMs: 0 },
  });
  const { c, log, metrics } = await testCoordinator(config, name, { publishedProgress: o.published, exclusionReports: async () => o.reports() });
  const why = () => log.join('\n');
  const forger = fakeSession('ROLLOUT', 'forger');
  const reward = fakeSession('REWARD', 's');
  const learnerSession = (held?: number): FakeSession => {
    const l = fakeSession('LEARNER', 'l');
    l.hello.capabilities.labels = { [EXCLUSION_REPORTS_LABEL]: '1' };
    if (held !== undefined) (l.hello as { last_batch_seq?: number }).last_batch_seq = held;
    return l;
  };
  const run = { c, log, why, learner: learnerSession(), counted: async (name: string, labels: Record<string, string> = {}) => sumMetric(await metrics.registry.metrics(), name, labels) };
  c.attach(forger);
  c.attach(reward);
  c.attach(run.learner);
  c.start();
  const action = () => encodeTensor({ dtype: 'float32', shape: [3, H, H], data: new Float32Array(3 * H * H).fill(0.5) });
  /** The forger rolls out (and the reward worker scores) the group of GRPO batch `seq` (its newest live task). */
  const rollOut = async (seq: number) => {
    const cancelled = () => new Set(forger.sent.flatMap((m) => (m.cancel_task ? [m.cancel_task.task_id] : [])));
    const live = () => forger.sent.flatMap((m) => (m.rollout_task ? [m.rollout_task] : m.task_bundle?.rollout_tasks ?? []))
      .filter((t) => t.task_id!.startsWith(`${name}-r${seq - 1}-`) && !cancelled().has(t.task_id!));
    await until(() => live().length > 0, `the rollout task of batch ${seq}\n${why()}`);
    const t = live()[live().length - 1]!;
    c.handle(forger, { rollout_result: { task_id: t.task_id, attempt: t.attempt, policy_version: seq - 1, items: Array.from({ length: G }, (_, g) => ({ sample_id: t.items![0]!.sample_id, group_index: g, action: action(), logp: -1 })), compute_ms: 1 } } as unknown as WorkerMessage__Output);
    const scores = () => reward.sent.flatMap((m) => (m.score_task ? [m.score_task] : m.task_bundle?.score_tasks ?? []));
    await until(() => scores().length >= seq, `the score task of batch ${seq}\n${why()}`);
    const s = scores()[seq - 1]!;
    c.handle(reward, { score_result: { task_id: s.task_id, attempt: s.attempt, components: Array.from({ length: G }, (_, g) => ({ ssim: 0.5 + 0.1 * g, clip_cos: 0.5 })), compute_ms: 1, clip_encoder: 'toy' } } as unknown as WorkerMessage__Output);
  };
  const sentTo = (l: FakeSession, seq: number) => l.sent.find((m) => m.train_batch?.batch_seq === seq)?.train_batch;
  const sentBatch = async (seq: number): Promise<TrainBatch> => {
    await until(() => !!sentTo(run.learner, seq), `batch ${seq} sent to the learner\n${why()}`);
    return sentTo(run.learner, seq)!;
  };
  const answer = (b: TrainBatch, fields: Record<string, unknown>) =>
    c.handle(run.learner, { train_result: { batch_id: b.batch_id, batch_seq: b.batch_seq, applied: true, skipped_reason: '', version: b.batch_seq, compute_ms: 1, batch_digest: trainBatchDigest(b), check_coverage: { unchecked_actions: [] }, ...fields } } as unknown as WorkerMessage__Output);
  const replaceLearner = (held?: number) => {
    (run.learner as { isOpen: boolean }).isOpen = false;
    c.detach(run.learner);
    run.learner = learnerSession(held);
    c.attach(run.learner);
  };
  return { ...run, rollOut, sentTo, sentBatch, answer, replaceLearner };
}

for (const order of ['duplicate-first', 'next-result-first'] as const) {
  test(`a 'duplicate' whose acknowledgement reads NATS, then the next batch's TrainResult (${order}): the duplicate batch's kept report is counted (review32 F1)`, async () => {
    // batch 1 applied and published (its report: the forger's group excluded), the learner killed before its
    // TrainResult; batch 2 opened early and sent; the restarted learner answers batch 1 'duplicate' and trains batch 2.
    // Batch 2's TrainResult arrives while batch 1's acknowledgement waits on its read of the published checkpoint
    // (next-result-first) or after that acknowledgement (duplicate-first): the same count either way.
    let published = { version: 0, lastBatchSeq: 0 };
    let gate: Promise<void> = Promise.resolve();
    let gated = 0;
    const r = await keptReportsRun(`kept-reports-${order}`, {
      reports: () => [{ seq: 1, results: { forger: 'x' } }],
      published: async () => {
        gated++;
        await gate;
        return published;
      },
    });
    await r.rollOut(1);
    await r.sentBatch(1);
    published = { version: 1, lastBatchSeq: 1 };
    await r.rollOut(2);
    await r.sentBatch(2);
    r.replaceLearner();
    const b1 = await r.sentBatch(1);
    const b2 = await r.sentBatch(2);
    let open!: () => void;
    gate = new Promise<void>((resolve) => (open = resolve));
    gated = 0;
    r.answer(b1, { applied: false, skipped_reason: 'duplicate', version: 1, batch_digest: '', check_coverage: undefined });
    await until(() => gated > 0, `batch 1's acknowledgement reads the published checkpoint\n${r.why()}`);
    if (order === 'next-result-first') r.answer(b2, {});
    open();
    await until(() => r.c.state.ackedSeq >= 1, `batch 1 acknowledged\n${r.why()}`);
    if (order === 'duplicate-first') r.answer(b2, {});
    await until(() => r.c.state.ackedSeq >= 2, `batch 2 acknowledged\n${r.why()}`);
    // batch 1's excluded result (from its report), then batch 2's passed one: 1 excluded of the forger's last 2
    assert.deepEqual(r.c.state.quarantineWindows, { forger: [1] }, r.why());
    assert.ok(!r.log.some((l) => /kept exclusion report of it not counted/.test(l)), r.why());
  });
}

test('a TrainResult counted, then refused (an impossible version), then the batch caught up: its kept report is not counted again', async () => {
  let published = { version: 0, lastBatchSeq: 0 };
  const r = await keptReportsRun('kept-reports-guard', { reports: () => [{ seq: 1, results: { forger: 'x' }, actions: { forger: 2 } }], published: async () => published });
  await r.rollOut(1);
  const b1 = await r.sentBatch(1);
  // counted as it is handled (1 of 10), then refused: version 5 is above 0 + 1 and above the published v0
  r.answer(b1, { version: 5, excluded_actions: [0, 1] });
  await until(() => r.log.some((l) => /^refused the train_result for batch 1: /.test(l)), `batch 1's TrainResult refused\n${r.why()}`);
  assert.equal(r.c.state.ackedSeq, 0);
  // the learner reconnects saying it holds batch 1, which its published checkpoint confirms: the catch-up acknowledges
  // it, and its report (the same excluded result) is not counted a second time (2 of 10 would quarantine the forger)
  published = { version: 1, lastBatchSeq: 1 };
  r.replaceLearner(1);
  await until(() => r.c.state.ackedSeq === 1, `batch 1 caught up\n${r.why()}`);
  assert.deepEqual(r.c.state.quarantineWindows, { forger: [0] }, r.why());
  assert.equal(r.c.state.quarantined, undefined, r.why());
  assert.ok(r.log.includes('GRPO batch 1: the learner\'s kept exclusion report of it not counted: this process counted its TrainResult, or a later batch\'s'), r.why());
  // its two excluded actions counted once, from the TrainResult (the report's count is not added)
  assert.equal(await r.counted('rollout_rows_excluded_total', { worker_id: 'forger' }), 2, r.why());
});

// round 33 (trust33): a catch-up over batches whose kept reports the learner dropped to its bound (more than
// EXCLUSION_REPORTS_KEPT with an excluded result unacknowledged, possible at maxStaleness >= 8) said nothing; and a
// report's excluded actions were not counted in rollout_rows_excluded_total. The record here is made up (the learner's
// bound is tested above): batch 1's report dropped, batch 2's kept.
test('a catch-up names the batches whose kept reports the learner dropped and counts them; a counted report\'s excluded actions count in rollout_rows_excluded_total', async () => {
  let published = { version: 0, lastBatchSeq: 0 };
  let reports: unknown[] = [];
  const r = await keptReportsRun('kept-reports-dropped', { reports: () => reports, published: async () => published });
  assert.equal(await r.counted('quarantine_reports_missing_total'), 0, 'at 0 before the first catch-up');
  await r.rollOut(1);
  await r.sentBatch(1);
  await r.rollOut(2);
  await r.sentBatch(2);
  // the learner trained both (the forger's group excluded in each, two actions each), its TrainResults never arrive
  reports = [{ seq: 1, dropped: true }, { seq: 2, results: { forger: 'x' }, actions: { forger: 2 } }];
  published = { version: 2, lastBatchSeq: 2 };
  r.replaceLearner(2);
  await until(() => r.c.state.ackedSeq === 2, `batches 1-2 caught up\n${r.why()}`);
  const said = r.log.filter((l) => /^the learner dropped its kept exclusion reports/.test(l));
  assert.deepEqual(said, ['the learner dropped its kept exclusion reports of 1 GRPO batch(es) acknowledged without their TrainResult (it keeps those of the newest 8 batches with an excluded result): batch(es) 1; their excluded and passed rollout results are not counted in the quarantine windows, nor their excluded actions in rollout_rows_excluded_total (quarantine_reports_missing_total; docs/security.md)'], r.why());
  assert.equal(await r.counted('quarantine_reports_missing_total'), 1, r.why());
  // batch 2 counted from its report: the window, and its two actions
  assert.deepEqual(r.c.state.quarantineWindows, { forger: [0] }, r.why());
  assert.equal(await r.counted('rollout_rows_excluded_total', { worker_id: 'forger' }), 2, r.why());
  // batch 3 caught up with batch 1's dropped seq still in the record: not said again (acknowledged already)
  await r.rollOut(3);
  await r.sentBatch(3);
  reports = [{ seq: 1, dropped: true }, { seq: 2, results: { forger: 'x' }, actions: { forger: 2 } }, { seq: 3, results: { forger: 'p' } }];
  published = { version: 3, lastBatchSeq: 3 };
  r.replaceLearner(3);
  await until(() => r.c.state.ackedSeq === 3, `batch 3 caught up\n${r.why()}`);
  assert.equal(r.log.filter((l) => /^the learner dropped its kept exclusion reports/.test(l)).length, 1, r.why());
  assert.equal(await r.counted('quarantine_reports_missing_total'), 1, r.why());
  assert.equal(await r.counted('rollout_rows_excluded_total', { worker_id: 'forger' }), 2, r.why());
  assert.deepEqual(r.c.state.quarantineWindows, { forger: [1] }, r.why());
});

// grpo.quarantineAfter 0 (never quarantine: exclusions still logged and counted, docs/config.md): a report's excluded
// actions are counted as a TrainResult's would be (round 32 read no report at 0), and once
test('quarantineAfter 0: a caught-up batch\'s report counts its excluded actions once, and quarantines nobody', async () => {
  let published = { version: 0, lastBatchSeq: 0 };
  const r = await keptReportsRun('kept-reports-off', { reports: () => [{ seq: 1, results: { forger: 'x' }, actions: { forger: 2 } }], published: async () => published, quarantineAfter: 0 });
  await r.rollOut(1);
  const b1 = await r.sentBatch(1);
  published = { version: 1, lastBatchSeq: 1 };
  r.replaceLearner(1);
  await until(() => r.c.state.ackedSeq === 1, `batch 1 caught up\n${r.why()}`);
  assert.equal(await r.counted('rollout_rows_excluded_total', { worker_id: 'forger' }), 2, r.why());
  assert.ok(r.log.includes('GRPO batch 1 (acknowledged without its TrainResult at hand; the learner\'s kept report of it): the learner excluded rows of 1 of 1 checked rollout results of rollout worker forger'), r.why());
  // its 'duplicate' after the acknowledgement counts nothing more
  r.answer(b1, { applied: false, skipped_reason: 'duplicate', version: 1 });
  assert.equal(await r.counted('rollout_rows_excluded_total', { worker_id: 'forger' }), 2, r.why());
  assert.equal(r.c.state.quarantined, undefined);
});
