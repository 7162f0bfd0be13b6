// grpo.quarantineWindow (orchestrator/quarantine.ts): a worker id is quarantined at grpo.quarantineAfter excluded
// results among its last quarantineWindow checked results, so an honest worker's rare outliers do not add up over a
// long run. Each case's expected outcome is computed by hand in its comment, result by result.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../../lib/metrics/index.ts';
import { parseConfig } from '../../lib/config/index.ts';
import { Quarantine, QUARANTINE_WINDOW_HITS_STORED_MAX, QUARANTINE_WINDOWS_STORED_MAX, type CheckedResult, type ExcludedAction, type StoredWindows } from '../../orchestrator/quarantine.ts';
import { liftQuarantine } from '../../orchestrator/main.ts';
import { sumMetric } from '../helpers/metrics.ts';

/** A Quarantine and what it closed; `feed(worker, pattern)` records one batch per character: 'E' excluded, '.' clean. */
function harness(after: number, window: number, restored?: { ids?: string[]; windows?: StoredWindows }) {
  const closed: string[] = [];
  const log: string[] = [];
  const q = new Quarantine({ after, window, metrics: createMetrics('qwin', 'orchestrator'), log: (l) => log.push(l), close: (id) => closed.push(id), ...(restored?.ids ? { restored: restored.ids } : {}), ...(restored?.windows ? { restoredWindows: restored.windows } : {}) });
  let seq = 0;
  let sample = 0;
  /** One batch holding `results` (worker, excluded) in order. */
  const batch = (results: Array<[string, boolean]>) => {
    seq++;
    const checked: CheckedResult[] = results.map(([worker, excluded]) => ({ worker, sampleId: `s${sample++}`, excluded }));
    const excluded: ExcludedAction[] = checked.filter((c) => c.excluded).map((c) => ({ worker: c.worker, sampleId: c.sampleId, groupIndex: 0 }));
    q.record(seq, checked, excluded, []);
  };
  /** One batch per character of `pattern`, each with one result of `worker`; the 1-based result at which it was closed, or 0. */
  const feed = (worker: string, pattern: string): number => {
    for (let i = 0; i < pattern.length; i++) {
      batch([[worker, pattern[i] === 'E']]);
      if (closed.includes(worker)) return i + 1;
    }
    return 0;
  };
  return { q, closed, log, batch, feed };
}

test('window 5, after 3: exclusions at results 1, 5, 8 are never 3 within 5; the one at 9 makes 5, 8, 9: quarantined at 9', () => {
  // result:   1 2 3 4 5 6 7 8 9
  // excluded: E . . . E . . E E
  // at 5: window 1..5 holds 1, 5 (2); at 8: window 4..8 holds 5, 8 (2); at 9: window 5..9 holds 5, 8, 9 (3)
  const h = harness(3, 5);
  assert.equal(h.feed('w', 'E...E..EE'), 9);
  assert.match(h.log.join('\n'), /quarantined rollout worker w: .*excluded rows of 3 of its last 5 checked rollout results/);
});

test('the same results over the whole run (window 0, as before round 26): quarantined at the third exclusion, result 8', () => {
  const h = harness(3, 0);
  assert.equal(h.feed('w', 'E...E..EE'), 8);
  assert.match(h.log.join('\n'), /excluded rows of 3 of its rollout results/);
});

test('a worker with one exclusion every 4 results is never quarantined at window 6, after 3 (at most 2 within any 6)', () => {
  // exclusions at 1, 5, 9, 13, ...: any 6 consecutive results hold at most 2 of them
  const h = harness(3, 6);
  assert.equal(h.feed('w', 'E...'.repeat(50)), 0);
  assert.deepEqual(h.q.ids(), []);
  // at window 0 the same worker is quarantined at its third exclusion, result 9
  assert.equal(harness(3, 0).feed('w', 'E...'.repeat(50)), 9);
});

test('clean results before the first exclusion do not matter; exclusions of one batch count in batch order, per worker', () => {
  const h = harness(2, 3);
  assert.equal(h.feed('a', '..........'), 0);
  // one batch: a E, b E, a ., a ., b ., a E  ->  a's results 1..4: E . . E: at its 4th, window 2..4 holds only 4 (1);
  // b's results E .: 1 of 2
  h.batch([['a', true], ['b', true], ['a', false], ['a', false], ['b', false], ['a', true]]);
  assert.deepEqual(h.closed, []);
  // next batch: b E  ->  b's results E . E: window 1..3 holds 1, 3 (2): quarantined; a untouched
  h.batch([['b', true]]);
  assert.deepEqual(h.closed, ['b']);
  // a: E at 5 -> window 3..5 holds 4, 5 (2): quarantined
  h.batch([['a', true]]);
  assert.deepEqual(h.closed, ['b', 'a']);
  assert.deepEqual(h.q.ids(), ['a', 'b']);
});

test('after 0 never quarantines (exclusions still logged); a window below quarantineAfter is refused naming both keys', () => {
  const h = harness(0, 5);
  assert.equal(h.feed('w', 'EEEEEEEEEE'), 0);
  assert.ok(h.log.some((l) => /the learner excluded 1 actions of rollout worker w/.test(l)));
  const base = { run: { id: 'qw' }, data: { size: 16, source: { kind: 'procedural', count: 16 } } };
  assert.throws(() => parseConfig({ ...base, grpo: { quarantineAfter: 3, quarantineWindow: 2 } }), /grpo\.quarantineWindow 2 is below grpo\.quarantineAfter 3/);
  assert.equal(parseConfig({ ...base, grpo: { quarantineAfter: 3, quarantineWindow: 0 } }).grpo.quarantineWindow, 0);
  assert.equal(parseConfig(base).grpo.quarantineWindow, 100);
});

// Round 29: the windows go with each acknowledgement (RunState.quarantineWindows) and a restarted orchestrator goes on
// from them. The end-to-end case (two orchestrator processes, real NATS) is test/orchestrator/quarantine-window-restart.

test('the stored windows: ages of the excluded results in the window, per worker; a restored Quarantine goes on counting', () => {
  // window 5, after 3: w's results E . . E . -> excluded at 1 and 4 of 5: ages 4 and 1
  const h = harness(3, 5);
  assert.equal(h.feed('w', 'E..E.'), 0);
  assert.deepEqual(h.q.windowsAt(5), { w: [1, 4] });
  // the same results run on in one process, and in a process restored from the stored windows: the same outcome
  // (window 5: at result 6 the window 2..6 holds 4, 6; at 7 it holds 4, 6, 7: quarantined at the 7th, the 2nd after)
  assert.equal(h.feed('w', 'EE'), 2);
  const r = harness(3, 5, { windows: { w: [1, 4] } });
  assert.match(r.log.join('\n'), /^the quarantine windows of 1 rollout worker id\(s\) go on from the run state: "w" 2 excluded result\(s\) in the window$/m);
  assert.equal(r.feed('w', 'EE'), 2);
  assert.match(r.log.join('\n'), /quarantined rollout worker w: .*excluded rows of 3 of its last 5 checked rollout results/);
  // without them (as before round 29) the count starts from zero: not quarantined by the same two results
  assert.equal(harness(3, 5).feed('w', 'EE'), 0);
  // a clean result pushes the age on; an exclusion leaving the window drops it (result 1 of 5, then . . . . -> gone)
  const s = harness(3, 5, { windows: { w: [1, 4] } });
  s.feed('w', '.');
  assert.deepEqual(s.q.windowsAt(1), { w: [2] });
  s.feed('w', '...');
  assert.equal(s.q.windowsAt(4), undefined);
});

test('windowsAt(seq) is as of batch seq, not a later batch counted before seq was acknowledged; acknowledged() moves on', () => {
  const h = harness(3, 10);
  h.batch([['a', true]]); // seq 1
  h.batch([['a', true], ['b', true]]); // seq 2, counted while seq 1's acknowledgement is written
  assert.deepEqual(h.q.windowsAt(1), { a: [0] });
  assert.deepEqual(h.q.windowsAt(2), { a: [0, 1], b: [0] });
  h.q.acknowledged(1);
  assert.deepEqual(h.q.ackedWindows(), { a: [0] });
  // a batch that counted nothing new (none recorded for seq 3): the windows of the newest batch before it
  assert.deepEqual(h.q.windowsAt(3), { a: [0, 1], b: [0] });
  h.q.acknowledged(3);
  assert.deepEqual(h.q.ackedWindows(), { a: [0, 1], b: [0] });
  // a quarantined id's window is not stored (the id is)
  h.batch([['a', true]]); // seq 3 again counted: a has 3 of its last 10: quarantined
  assert.deepEqual(h.closed, ['a']);
  assert.deepEqual(h.q.windowsAt(4), { b: [0] });
});

test('restored windows: what no longer fits a smaller window is let go; a quarantined id\'s window is ignored; after 0 ignores all', () => {
  const r = harness(3, 4, { ids: ['q'], windows: { w: [1, 3, 7], q: [0, 1] } });
  assert.deepEqual(r.q.ackedWindows(), { w: [1, 3] });
  // w: results at ages 3 and 1 excluded (positions 1 and 3 of 4). Its next result excluded: position 1 leaves the
  // window (2..5 holds 3, 5: 2); the one after: 3..6 holds 3, 5, 6 (3): quarantined at the 2nd
  assert.equal(r.feed('w', 'EE'), 2);
  assert.equal(harness(0, 4, { windows: { w: [0, 1, 2] } }).q.ackedWindows(), undefined);
});

test('the stored windows are bounded: the ids nearest quarantine, and each id\'s newest excluded results', () => {
  const n = QUARANTINE_WINDOWS_STORED_MAX + 10;
  const h = harness(QUARANTINE_WINDOW_HITS_STORED_MAX + 10, 0);
  // one exclusion each for n ids, then two for 'z-near' and 'y-near' (and many for 'x-many')
  h.batch(Array.from({ length: n }, (_, i) => [`id-${String(i).padStart(4, '0')}`, true] as [string, boolean]));
  h.batch([['z-near', true], ['z-near', true], ['y-near', true], ['y-near', true]]);
  h.batch(Array.from({ length: QUARANTINE_WINDOW_HITS_STORED_MAX + 5 }, () => ['x-many', true] as [string, boolean]));
  const w = h.q.windowsAt(3)!;
  assert.equal(Object.keys(w).length, QUARANTINE_WINDOWS_STORED_MAX);
  assert.deepEqual(Object.keys(w), [...Object.keys(w)].sort());
  assert.equal(w['x-many']!.length, QUARANTINE_WINDOW_HITS_STORED_MAX);
  assert.deepEqual(w['x-many'], Array.from({ length: QUARANTINE_WINDOW_HITS_STORED_MAX }, (_, i) => i));
  assert.deepEqual(w['z-near'], [0, 1]);
  assert.deepEqual(w['y-near'], [0, 1]);
  // of the ids with one exclusion each, n - (QUARANTINE_WINDOWS_STORED_MAX - 3) are left out
  assert.equal(Object.keys(w).filter((id) => id.startsWith('id-')).length, QUARANTINE_WINDOWS_STORED_MAX - 3);
  assert.ok(JSON.stringify(w).length < 50_000, `${JSON.stringify(w).length} bytes`);
});

test('--lift-quarantine drops a lifted id\'s stored window too: its count starts from zero', () => {
  const state = { ackedSeq: 3, learnerVersion: 3, quarantined: ['a', 'b'], quarantineWindows: { a: [0], c: [2] } };
  liftQuarantine(state, ['a'], () => {});
  assert.deepEqual(state, { ackedSeq: 3, learnerVersion: 3, quarantined: ['b'], quarantineWindows: { c: [2] } });
  liftQuarantine(state, ['c'], () => {});
  assert.deepEqual(state, { ackedSeq: 3, learnerVersion: 3, quarantined: ['b'] });
});

// round 33 (trust33): a batch acknowledged without its TrainResult is counted from the learner's kept report of it
// through the same path as a TrainResult (Quarantine `count`): the windows (passed and excluded results), the excluded
// actions in rollout_rows_excluded_total (before, a report's were not counted), the quarantine; also at after 0, where
// a report's actions are counted once (needsReport), as a TrainResult's are.
test('a batch counted from its TrainResult and from the learner\'s report of it: the same windows, excluded actions and quarantine', async () => {
  /** rollout_rows_excluded_total per worker id. */
  const rows = async (h: { metrics: ReturnType<typeof createMetrics> }) => {
    const text = await h.metrics.registry.metrics();
    return Object.fromEntries(['v', 'w'].map((id) => [id, sumMetric(text, 'rollout_rows_excluded_total', { worker_id: id })]));
  };
  const make = (after: number) => {
    const metrics = createMetrics('qpath', 'orchestrator', { processMetrics: false });
    const closed: string[] = [];
    return { metrics, closed, q: new Quarantine({ after, window: 4, metrics, log: () => undefined, close: (id) => closed.push(id) }) };
  };
  const fromResult = make(2);
  const fromReport = make(2);
  // batch 1 from a TrainResult in both: w excluded once (two actions)
  for (const h of [fromResult, fromReport]) h.q.record(1, [{ worker: 'w', sampleId: 'a', excluded: true }], [{ worker: 'w', sampleId: 'a', groupIndex: 0 }, { worker: 'w', sampleId: 'a', groupIndex: 1 }], []);
  // batch 2: w passes 3 results (its exclusion leaves the window of 4 after 3 more), v is excluded in one of two (3 actions)
  const checked: CheckedResult[] = [
    { worker: 'w', sampleId: 'b', excluded: false }, { worker: 'v', sampleId: 'c', excluded: true }, { worker: 'w', sampleId: 'd', excluded: false },
    { worker: 'v', sampleId: 'e', excluded: false }, { worker: 'w', sampleId: 'f', excluded: false },
  ];
  fromResult.q.record(2, checked, [0, 1, 2].map((g) => ({ worker: 'v', sampleId: 'c', groupIndex: g })), []);
  assert.equal(fromReport.q.needsReport(2), true);
  fromReport.q.recordReported(2, { results: { v: 'xp', w: 'ppp' }, actions: { v: 3 } });
  assert.equal(fromReport.q.needsReport(2), false, 'counted once');
  assert.deepEqual(fromReport.q.windowsAt(2), fromResult.q.windowsAt(2));
  assert.deepEqual(fromResult.q.windowsAt(2), { v: [1], w: [3] });
  assert.deepEqual(await rows(fromReport), await rows(fromResult));
  assert.deepEqual(await rows(fromResult), { v: 3, w: 2 });
  // batch 3: w excluded again, 1 of its last 4 (its first exclusion aged out by the passed results of batch 2) in both
  for (const h of [fromResult, fromReport]) h.q.recordReported(3, { results: { w: 'x' }, actions: { w: 1 } });
  assert.deepEqual(fromReport.closed, []);
  assert.deepEqual(fromReport.q.windowsAt(3), fromResult.q.windowsAt(3));
  assert.deepEqual(fromResult.q.windowsAt(3), { v: [1], w: [0] });
  // at after 0 (never quarantine) a report's actions are still counted, once
  const off = make(0);
  assert.equal(off.q.needsReport(1), true);
  off.q.recordReported(1, { results: { w: 'xp' }, actions: { w: 2 } });
  assert.equal(off.q.needsReport(1), false);
  assert.deepEqual(await rows(off), { v: 0, w: 2 });
});
