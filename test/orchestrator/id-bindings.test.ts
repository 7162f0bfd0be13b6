// Worker id bindings (orchestrator/id-bindings.ts; docs/security.md, "A worker id belongs to the first role token that
// used it"). review29 F1: one cap of 1,024 bindings was shared by every token, so one wildcard token cycling through
// worker ids filled it and every id first used after that stayed unbound for the run (and, stored, across restarts):
// another token could then take an honest worker's new id. Now each token holds at most BOUND_IDS_PER_TOKEN, and a
// token at its cap unbinds its own least recently claimed id, never another token's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WorkerSession } from '../../lib/transport/index.ts';
import { IdBindings, BOUND_IDS_PER_TOKEN } from '../../orchestrator/id-bindings.ts';

const FORGER = 'token:00000000000000f0';
const HONEST = 'token:00000000000000a0';
/** A session as the server makes it: a wildcard role token's (the fields IdBindings reads). */
const session = (workerId: string, token: string): WorkerSession =>
  ({ role: 'ROLLOUT', workerId, credential: { kind: 'token', id: token, pinned: false } }) as unknown as WorkerSession;
const refusedAsBound = /worker id "honest-new" \(role ROLLOUT\) is bound for this run to the role token that first used it, not this one/;

test('a token cycling through worker ids cannot leave an honest token\'s new id unbound', () => {
  const log: string[] = [];
  const b = new IdBindings({ live: new Set([FORGER, HONEST]), log: (l) => log.push(l) });
  assert.equal(b.claim(session('honest-old', HONEST)), undefined);
  for (let i = 0; i < 5000; i++) assert.equal(b.claim(session(`junk-${i}`, FORGER)), undefined);
  // the honest token's id first used after the forger's 5,000 is bound to it: the forger claiming it is refused
  assert.equal(b.claim(session('honest-new', HONEST)), undefined);
  assert.match(b.claim(session('honest-new', FORGER)) ?? 'accepted', refusedAsBound);
  // and its id bound before the churn stays its own
  assert.match(b.claim(session('honest-old', FORGER)) ?? 'accepted', /worker id "honest-old" .* is bound/);
  // the forger churned only its own bindings: its newest BOUND_IDS_PER_TOKEN, least recently claimed first
  const stored = b.stored()!;
  const forgers = Object.entries(stored).filter(([, t]) => t === FORGER).map(([k]) => k);
  assert.deepEqual(forgers, Array.from({ length: BOUND_IDS_PER_TOKEN }, (_, i) => `rollout/junk-${5000 - BOUND_IDS_PER_TOKEN + i}`));
  assert.equal(stored['rollout/honest-old'], HONEST);
  assert.equal(stored['rollout/honest-new'], HONEST);
  // an id the forger unbound is free again (for the first token that uses it)
  assert.equal(b.claim(session('junk-0', HONEST)), undefined);
  assert.match(log.join('\n'), new RegExp(`role token ${FORGER} holds ${BOUND_IDS_PER_TOKEN} worker id bindings: each new id it uses unbinds its least recently claimed \\(now "rollout/junk-0"`));
});

test('a token\'s id claimed again is its most recent: kept while the token churns others, also after a restore', () => {
  const b = new IdBindings({ live: new Set([FORGER]), log: () => undefined });
  for (let i = 0; i < BOUND_IDS_PER_TOKEN; i++) b.claim(session(`w-${i}`, FORGER));
  b.claim(session('w-0', FORGER)); // w-0 reconnects: w-1 is now the least recently claimed
  // restored from the stored form (a restarted orchestrator), the order is kept
  const r = new IdBindings({ restored: b.stored()!, live: new Set([FORGER]), log: () => undefined });
  r.claim(session('w-new', FORGER));
  const keys = Object.keys(r.stored()!);
  assert.equal(keys.length, BOUND_IDS_PER_TOKEN);
  assert.ok(keys.includes('rollout/w-0'));
  assert.ok(!keys.includes('rollout/w-1'));
  assert.equal(keys.at(-1), 'rollout/w-new');
});

test('a stored state holding more than the cap for a token (stored before it) keeps that token\'s newest', () => {
  const restored = Object.fromEntries([
    ...Array.from({ length: 1000 }, (_, i) => [`rollout/f-${i}`, FORGER] as const),
    ['rollout/h', HONEST] as const,
  ]);
  const log: string[] = [];
  const b = new IdBindings({ restored, live: new Set([FORGER, HONEST]), log: (l) => log.push(l) });
  const stored = b.stored()!;
  assert.equal(Object.keys(stored).length, BOUND_IDS_PER_TOKEN + 1);
  assert.equal(stored['rollout/f-999'], FORGER);
  assert.equal(stored['rollout/f-0'], undefined);
  assert.equal(stored['rollout/h'], HONEST);
  assert.ok(log.includes(`${1000 - BOUND_IDS_PER_TOKEN} worker id binding(s) of the run state dropped: a role token holds at most ${BOUND_IDS_PER_TOKEN} (its least recently claimed went)`), log.join('\n'));
});

test('the start-up lines: lapsed bindings named (up to 16), restored ones kept but not enforced without a role-token file', () => {
  const restored = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`rollout/w-${String(i).padStart(2, '0')}`, i < 18 ? FORGER : HONEST] as const));
  const log: string[] = [];
  new IdBindings({ restored, live: new Set([HONEST]), log: (l) => log.push(l) });
  assert.deepEqual(log, [
    '2 worker id(s) stay bound to the role token that first used them (run state)',
    `18 worker id binding(s) lapsed: their role token is no longer in the role-token file: ${Array.from({ length: 16 }, (_, i) => `"rollout/w-${String(i).padStart(2, '0')}"`).join(', ')}, ...`,
  ]);
  const none: string[] = [];
  const b = new IdBindings({ restored, live: undefined, log: (l) => none.push(l) });
  assert.deepEqual(none, ['20 worker id binding(s) of the run state kept, not enforced without a role-token file']);
  assert.equal(b.claim(session('w-00', HONEST)), undefined, 'not enforced');
  assert.equal(Object.keys(b.stored()!).length, 20, 'kept for a later restart with the file');
});
