// --await-workers: the run's first GRPO batch waits until the awaited workers are connected (then each idle rollout
// worker gets its share), or until the wait is over (then whoever is connected gets the batch). The flag's parser
// refuses what it cannot read, naming it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { parseAwaitWorkers, type AwaitWorkers } from '../../orchestrator/await-workers.ts';
import { fakeSession, type FakeSession, until } from '../helpers/fake-session.ts';
import type { Coordinator } from '../../orchestrator/coordinator.ts';
import { testCoordinator } from '../helpers/coordinator.ts';

const rolloutTasks = (s: FakeSession) => s.sent.filter((m) => m.rollout_task !== undefined).length;

async function coordinator(awaitWorkers: AwaitWorkers | undefined, log: string[]): Promise<Coordinator> {
  const config = parseConfig({
    run: { id: 'await-workers', seed: 1 },
    data: { size: 16, source: { kind: 'procedural', count: 16 } },
    model: { width: 4, depth: 1 },
    sft: { steps: 0 },
    grpo: { steps: 1, groupSize: 2, samplesPerBatch: 2, maxStaleness: 0, advantageMode: 'scalar' },
    orchestrator: { bundleMs: 0 },
  });
  return (await testCoordinator(config, 'await-workers', { log: (l) => log.push(l), ...(awaitWorkers ? { awaitWorkers } : {}) })).c;
}

test('the first GRPO batch waits for the awaited rollout workers, then each gets one of its two tasks', async () => {
  const log: string[] = [];
  const c = await coordinator(parseAwaitWorkers('rollout=2', 60), log);
  const [a, b] = [fakeSession('ROLLOUT', 'a'), fakeSession('ROLLOUT', 'b')];
  c.attach(a);
  c.attach(fakeSession('LEARNER', 'l'));
  c.start();
  await new Promise((r) => setTimeout(r, 200)); // the batch would be out by now without the wait
  assert.equal(rolloutTasks(a), 0, `no task while one of two rollout workers is connected\n${log.join('\n')}`);
  assert.match(log.join('\n'), /GRPO waits for its workers \(1 of 2 rollout connected\), at most 60 s/);
  c.attach(b);
  await until(() => rolloutTasks(a) + rolloutTasks(b) === 2, 'both tasks dispatched once the second worker connected');
  assert.deepEqual([rolloutTasks(a), rolloutTasks(b)], [1, 1], 'one each');
  assert.match(log.join('\n'), /GRPO starts: every awaited worker is connected/);
  c.close();
});

test('without the awaited workers, the first GRPO batch opens when the wait is over', async () => {
  const log: string[] = [];
  const c = await coordinator({ counts: { ROLLOUT: 2, REWARD: 1 }, ms: 100 }, log);
  const a = fakeSession('ROLLOUT', 'a');
  c.attach(a);
  c.attach(fakeSession('LEARNER', 'l'));
  c.start();
  await until(() => rolloutTasks(a) === 2, 'both tasks dispatched to the one worker after the wait');
  assert.match(log.join('\n'), /GRPO starts after 0.1 s without every awaited worker \(1 of 2 rollout, 0 of 1 reward connected\)/);
  c.close();
});

test('without --await-workers, the first GRPO batch opens with whoever is connected', async () => {
  const log: string[] = [];
  const c = await coordinator(undefined, log);
  const a = fakeSession('ROLLOUT', 'a');
  for (const s of [a, fakeSession('LEARNER', 'l')]) c.attach(s);
  c.start();
  await until(() => rolloutTasks(a) === 2, 'both tasks dispatched to the one worker');
  assert.doesNotMatch(log.join('\n'), /GRPO waits/);
  c.close();
});

test('--await-workers refuses what it cannot read, naming it', () => {
  assert.deepEqual(parseAwaitWorkers('rollout=2, reward=1', 30), { counts: { ROLLOUT: 2, REWARD: 1 }, ms: 30_000 });
  assert.deepEqual(parseAwaitWorkers('reward=3', 0), { counts: { REWARD: 3 }, ms: 0 });
  assert.throws(() => parseAwaitWorkers('learner=1', 60), /--await-workers: "learner=1" is not ROLE=COUNT with ROLE rollout or reward/);
  assert.throws(() => parseAwaitWorkers('rollout=two', 60), /"rollout=two" is not ROLE=COUNT/);
  assert.throws(() => parseAwaitWorkers('rollout=1,rollout=2', 60), /rollout is given twice/);
  assert.throws(() => parseAwaitWorkers('rollout=1', -1), /--await-seconds: -1 is not a number of seconds >= 0/);
  assert.throws(() => parseAwaitWorkers('rollout=1', Number.NaN), /--await-seconds: NaN/);
});
