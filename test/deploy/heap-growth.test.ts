// The roles' V8 heap growth setting (lib/deploy/heap-growth.ts): default, opt-out, refusals naming the variable.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyHeapGrowth, DEFAULT_HEAP_GROWING_PERCENT, HEAP_GROWTH_ENV, heapGrowingPercent, ROLE_HEAP_GROWING_PERCENT } from '../../lib/deploy/heap-growth.ts';

test('heap growth: default 100, an operator value wins, 0 leaves V8 its own heuristic', () => {
  assert.equal(DEFAULT_HEAP_GROWING_PERCENT, 100);
  assert.equal(heapGrowingPercent({}), 100);
  assert.equal(heapGrowingPercent({ [HEAP_GROWTH_ENV]: '' }), 100);
  assert.equal(heapGrowingPercent({ [HEAP_GROWTH_ENV]: '250' }), 250);
  assert.equal(heapGrowingPercent({ [HEAP_GROWTH_ENV]: '0' }), 0);
  assert.equal(applyHeapGrowth({ [HEAP_GROWTH_ENV]: '0' }), 0); // sets no flag
});

test('heap growth: a bad value is refused with the variable\'s name, before any flag is set', () => {
  for (const bad of ['-1', '1.5', 'abc', '1001', '1e9']) {
    assert.throws(() => heapGrowingPercent({ [HEAP_GROWTH_ENV]: bad }), new RegExp(`${HEAP_GROWTH_ENV} must be an integer from 0 to 1000.*'${bad.replace('.', '\\.')}'`));
    assert.throws(() => applyHeapGrowth({ [HEAP_GROWTH_ENV]: bad }), new RegExp(HEAP_GROWTH_ENV));
  }
});

test('heap growth per role: the orchestrator 300, the others 100; the variable wins for every role', () => {
  assert.equal(heapGrowingPercent({}, 'orchestrator'), 300);
  assert.equal(heapGrowingPercent({}, 'rollout'), 100);
  assert.equal(heapGrowingPercent({}, 'reward'), 100);
  assert.equal(heapGrowingPercent({}, 'learner'), 100);
  assert.deepEqual({ ...ROLE_HEAP_GROWING_PERCENT }, { orchestrator: 300, rollout: 100, reward: 100, learner: 100 });
  for (const role of ['orchestrator', 'rollout', 'reward', 'learner'] as const) {
    assert.equal(heapGrowingPercent({ [HEAP_GROWTH_ENV]: '150' }, role), 150);
    assert.equal(heapGrowingPercent({ [HEAP_GROWTH_ENV]: '0' }, role), 0);
    assert.equal(heapGrowingPercent({ [HEAP_GROWTH_ENV]: ' ' }, role), ROLE_HEAP_GROWING_PERCENT[role]);
    assert.throws(() => heapGrowingPercent({ [HEAP_GROWTH_ENV]: '-5' }, role), new RegExp(`${HEAP_GROWTH_ENV} must be an integer from 0 to 1000.*'-5'`));
  }
  assert.equal(applyHeapGrowth({ [HEAP_GROWTH_ENV]: '0' }, 'orchestrator'), 0); // sets no flag
});
