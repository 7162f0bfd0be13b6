// grpo.quarantineWindow (orchestrator/quarantine.ts): a worker id is quarantined at grpo.quarantineAfter excluded
// results among its last quarantineWindow checked results, so an honest worker's rare outliers do not add up over a
// long run. Each case's expected outcome is computed by hand in its comment, result by result.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../../lib/metrics/index.ts';
import { parseConfig } from '../../lib/config/index.ts';
import { Quarantine, type CheckedResult, type ExcludedAction } from '../../orchestrator/quarantine.ts';

/** A Quarantine and what it closed; `feed(worker, pattern)` records one batch per character: 'E' excluded, '.' clean. */
function harness(after: number, window: number) {
  const closed: string[] = [];
  const log: string[] = [];
  const q = new Quarantine({ after, window, metrics: createMetrics('qwin', 'orchestrator'), log: (l) => log.push(l), close: (id) => closed.push(id) });
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
