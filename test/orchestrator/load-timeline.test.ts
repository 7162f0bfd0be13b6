// The load bench's timeline (bench/load-timeline.ts TaskTimeline.report): the window's slow tasks grouped into
// episodes and each episode laid at the door of the process that stalled most over it, per-bin p99s by result time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TaskTimeline, type Stall } from '../../bench/load-timeline.ts';

// 10 workers: 0-4 in workers' process 1, 5-9 in process 2.
const procOf = (w: number) => (w < 5 ? 0 : 1);
const at = (ms: number) => performance.timeOrigin + ms;

test('TaskTimeline: a burst on one workers\' process is one episode blamed on the process that stalled', () => {
  const t = new TaskTimeline(2000);
  for (let i = 0; i < 1000; i++) t.add(i, i + 0.2, i + 1, i % 10); // 1 ms each, a task a millisecond
  for (let i = 0; i < 30; i++) t.add(500 + i, 500 + i, 540 + i, 5 + (i % 5)); // 40 ms each, process 2's workers
  const stalls = new Map<string, Stall[]>([
    ['orchestrator', [{ at: at(200), ms: 3.5, what: 'loop gap' }]],
    ['workers 1', []],
    ['workers 2', [{ at: at(505), ms: 30, what: 'scavenge' }]],
  ]);
  const lines = t.report({ startMs: 0, binMs: 100, slowMs: 20, procOf, stalls, instants: new Map([['heartbeats', [at(530)]]]) });
  const text = lines.join('\n');
  assert.match(text, /30 tasks over 20 ms \(2\.91%\), by workers' process 2: 30; 5 distinct workers/);
  assert.match(text, /slow tasks by the most stalled process of their episode: workers 2 30$/m);
  const episodes = lines.filter((l) => l.includes('episode '));
  assert.equal(episodes.length, 1);
  assert.match(episodes[0]!, /episode 0\.500s-0\.569s: 30 slow tasks \(max 40 ms\), process 2: 30, 5 workers; most stalled workers 2 \(30 ms stalled\)/);
  assert.match(episodes[0]!, /workers 2 scavenge 30\.0 ms at 0\.505s/);
  assert.doesNotMatch(episodes[0]!, /orchestrator loop gap/); // 300 ms earlier: not this episode's
  assert.match(episodes[0]!, /from 20 ms before: 1 heartbeats/);
  // bins by result time: the first 100 ms hold tasks 0-98 (results at 1-99 ms), all 1 ms
  assert.match(lines[0]!, /0\.0s 99 p99 1\.0 max 1 \| 0\.1s 100 p99 1\.0 max 1/);
  assert.match(text, /0\.5s 130 p99 40\.0 max 40/);
});

test('TaskTimeline: no slow task, no episode; tasks past the capacity are not recorded', () => {
  const t = new TaskTimeline(3);
  for (let i = 0; i < 5; i++) t.add(i, i, i + 2, 0);
  assert.equal(t.n, 3);
  const lines = t.report({ startMs: 0, binMs: 100, slowMs: 20, procOf, stalls: new Map(), instants: new Map() });
  assert.deepEqual(lines.slice(1), ['    no task over 20 ms']);
});
