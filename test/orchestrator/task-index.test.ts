// TaskIndex (orchestrator/task-index.ts), the board's index of tasks by id: the same answers as a Map under random
// adds, replaces and deletes (through growth, shrinking and clusters that wrap around the table's end), iteration in
// insertion order, and deleteValue only for the value given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TaskIndex, idHash } from '../../orchestrator/task-index.ts';

/** A small deterministic generator (the test does not depend on Math.random). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

test('TaskIndex answers as a Map through random adds, replaces and deletes (growth, shrinking, wrap-around)', () => {
  const r = rng(7);
  // small keyspaces make long clusters and many deletes inside them; the minimum capacity of 4 wraps clusters often
  for (const [keys, ops, minCap] of [[12, 4000, 4], [300, 20000, 4], [5000, 60000, 64]] as const) {
    const idx = new TaskIndex<number>(minCap);
    const model = new Map<string, number>();
    for (let k = 0; k < ops; k++) {
      const key = `t${Math.floor(r() * keys)}`;
      const x = r();
      // phases: mostly adds, then mostly deletes (the table grows, then halves)
      const addBias = Math.floor(k / (ops / 4)) % 2 === 0 ? 0.7 : 0.3;
      if (x < addBias) {
        idx.set(key, k);
        model.set(key, k);
      } else {
        assert.equal(idx.delete(key), model.delete(key), `delete ${key}`);
      }
      if (k % 97 === 0) {
        assert.equal(idx.size, model.size);
        for (let q = 0; q < keys; q++) assert.equal(idx.get(`t${q}`), model.get(`t${q}`), `get t${q} after op ${k}`);
      }
    }
    assert.deepEqual(idx.values(), [...model.values()], 'insertion order, as a Map');
    assert.equal(idx.get('not-there'), undefined);
    assert.equal(idx.has('not-there'), false);
  }
});

test('TaskIndex.collect keeps insertion order and copies only matches; deleteValue removes only the value given', () => {
  const idx = new TaskIndex<{ id: string; n: number }>(4);
  const tasks = Array.from({ length: 40 }, (_, n) => ({ id: `task-${n}`, n }));
  for (const t of tasks) idx.set(t.id, t);
  idx.delete('task-3');
  idx.set('task-3', tasks[3]!); // re-added: now last, as Map.set after delete
  assert.deepEqual(idx.collect((t) => t.n % 3 === 0).map((t) => t.n), [0, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 3]);
  assert.equal(idx.deleteValue('task-5', { id: 'task-5', n: 5 }), false, 'another object with the same id');
  assert.equal(idx.get('task-5'), tasks[5]);
  assert.equal(idx.deleteValue('task-5', tasks[5]!), true);
  assert.equal(idx.has('task-5'), false);
  assert.equal(idx.size, 39);
});

test('idHash is a non-negative 31-bit int and spreads sequential ids', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 4096; i++) {
    const h = idHash(`t${i}`);
    assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 31);
    seen.add(h & 4095);
  }
  assert.ok(seen.size > 2000, `low bits of 4096 sequential ids: ${seen.size} distinct of 4096`);
});
