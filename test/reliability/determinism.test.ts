// Determinism: in synchronous mode (grpo.maxStaleness 0) the same seed gives the same checkpoints, byte for
// byte, whether one or three rollout workers share the rollouts. Two real local runs (nats-server and every
// role as processes), the same fixed run id, different output folders and ports (which configHash ignores).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runLocal } from '../../lib/local/local-run.ts';
import { events, readRunStore, type Logged } from './helpers.ts';

const RUN_ID = 'determinism-1';
const SFT = 2;
const GRPO = 4;
const TINY = [
  `run.id=${RUN_ID}`, 'data.source.kind=procedural', 'data.size=16', 'data.source.count=64', 'model.width=4', 'model.depth=1', 'sft.batchSize=4',
  'grpo.groupSize=4', 'grpo.samplesPerBatch=3', 'grpo.maxStaleness=0', 'eval.samples=4',
  'orchestrator.leaseSeconds=10', 'orchestrator.heartbeatSeconds=1',
];

async function run(rolloutWorkers: number) {
  const dir = mkdtempSync(join(tmpdir(), `determinism-${rolloutWorkers}-`));
  const log: string[] = [];
  try {
    const summary = await runLocal({ out: dir, seed: 11, sftSteps: SFT, steps: GRPO, overrides: TINY, rolloutWorkers, log: (l) => log.push(l) });
    const store = await readRunStore(dir, RUN_ID);
    return { summary, store, ev: events(dir), log };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('synchronous mode: 1 or 3 rollout workers give the same final checkpoint digest (and the same every version)', { timeout: 180_000 }, async () => {
  const one = await run(1);
  const rolloutsBy = (r: typeof one) => {
    const by: Record<string, number> = {};
    for (const e of r.ev) if (e.type === 'rollout') by[(e as Extract<Logged, { type: 'rollout' }>).worker] = (by[(e as Extract<Logged, { type: 'rollout' }>).worker] ?? 0) + 1;
    return by;
  };
  // The three-worker run must really spread its rollouts. On a loaded machine the other two workers may still be
  // starting when the (short) GRPO phase is over: then that run proves nothing, and it is run once more.
  let three = await run(3);
  if (Object.keys(rolloutsBy(three)).length < 2) {
    console.log(`the 3-worker run's rollouts all came from ${JSON.stringify(rolloutsBy(three))} (workers still starting): once more`);
    three = await run(3);
  }
  for (const r of [one, three]) assert.equal(r.summary.final_version, SFT + GRPO, r.log.slice(-15).join('\n'));
  assert.ok(Object.keys(rolloutsBy(three)).length >= 2, `rollouts of the 3-worker run came from ${JSON.stringify(rolloutsBy(three))}`);
  const digests = (r: typeof one) => new Map(r.store.announcements.map((a) => [a.version, a.digest]));
  const d1 = digests(one);
  const d3 = digests(three);
  for (let v = 0; v <= SFT + GRPO; v++) {
    assert.ok(d1.has(v) && d3.has(v), `checkpoint v${v} was announced in both runs`);
    assert.equal(d3.get(v), d1.get(v), `checkpoint v${v} differs between 1 and 3 rollout workers`);
  }
  assert.equal(three.store.latest!.digest, one.store.latest!.digest);
  assert.equal(three.store.latestFetchedDigest, one.store.latestFetchedDigest);
  console.log(`final checkpoint v${one.store.latest!.version} ${one.store.latest!.digest} with 1 and with 3 rollout workers (rollouts per worker: ${JSON.stringify(rolloutsBy(one))} and ${JSON.stringify(rolloutsBy(three))})`);
});
