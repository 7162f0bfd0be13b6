// The load bench's simulated workers spread over several processes (bench/load.bench.ts workerShares) and the
// workers' pause figures merged across them (bench/load-pauses.ts mergePauses): no worker lost or named twice, the
// worst delay kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { semiSpaceFlags, semiSpaceLabel, workerShares } from '../../bench/load.bench.ts';
import { mergePauses, type PauseFigures } from '../../bench/load-pauses.ts';
import { heapGrowthFlag } from '../../bench/load-heap.ts';

test('workerShares: every worker id once, shares differ by at most one', () => {
  for (const [workers, procs] of [[200, 1], [200, 2], [500, 3], [7, 7], [5, 2]] as const) {
    const shares = workerShares(workers, procs);
    assert.equal(shares.length, procs);
    const ids = shares.flatMap(([first, n]) => Array.from({ length: n }, (_, i) => first + i));
    assert.deepEqual(ids, Array.from({ length: workers }, (_, i) => i), `${workers} over ${procs}`);
    const counts = shares.map(([, n]) => n);
    assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `${workers} over ${procs}: ${counts}`);
  }
  assert.throws(() => workerShares(3, 4), /workerProcs: 4/);
  assert.throws(() => workerShares(200, 0), /workerProcs: 0/);
  assert.throws(() => workerShares(200, 1.5), /workerProcs: 1.5/);
});

test('mergePauses: the worst delays, the pauses summed, unknown processes skipped', () => {
  const a: PauseFigures = { loopP50Ms: 1, loopP99Ms: 3, loopMaxMs: 9, minorCount: 4, minorMs: 10, minorMaxMs: 5, majorCount: 1, majorMs: 7, majorMaxMs: 7 };
  const b: PauseFigures = { loopP50Ms: 2, loopP99Ms: 2, loopMaxMs: 20, minorCount: 3, minorMs: 6, minorMaxMs: 2, majorCount: 0, majorMs: 0, majorMaxMs: 0 };
  assert.deepEqual(mergePauses([a, undefined, b]), { loopP50Ms: 2, loopP99Ms: 3, loopMaxMs: 20, minorCount: 7, minorMs: 16, minorMaxMs: 5, majorCount: 1, majorMs: 7, majorMaxMs: 7 });
  assert.deepEqual(mergePauses([a]), a);
  assert.equal(mergePauses([undefined]), undefined);
});

test('semiSpaceFlags: 0 is node\'s default (no flag, rounds 4-11), else min and max of the semi-space; bad sizes refused', () => {
  assert.deepEqual(semiSpaceFlags(0), []);
  assert.deepEqual(semiSpaceFlags(64), ['--min-semi-space-size=64', '--max-semi-space-size=64']);
  assert.equal(semiSpaceLabel(0), "node's default semi-space");
  assert.equal(semiSpaceLabel(64), 'semi-space 64 MiB');
  for (const bad of [-1, 1.5, 2048, NaN]) assert.throws(() => semiSpaceFlags(bad), /workerSemiSpaceMb/);
});

test('heapGrowthFlag: the last --heap-growing-percent on a command line wins over the role\'s; none, none', () => {
  assert.equal(heapGrowthFlag(['--import', 'tsx']), undefined);
  assert.equal(heapGrowthFlag(['--heap-growing-percent=0']), 0);
  assert.equal(heapGrowthFlag(['--heap-growing-percent=100', '--max-semi-space-size=16', '--heap-growing-percent=300']), 300);
});
