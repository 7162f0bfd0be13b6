// The orchestrator persists an acknowledgement, then logs its 'trained' event: a kill -9 between the two left the
// event log a batch short (round 8's CI: test/e2e/pipeline.test.ts saw batch 15 missing after the orchestrator's
// kill). On resume it logs the acknowledged batches its event log lacks, once. Real orchestrator, real nats-server;
// the kill's aftermath is set up directly (a stored state ahead of the log), since the window (the store's answer in flight) is one round trip wide.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { z } from 'zod';
import { parseConfig } from '../../lib/config/index.ts';
import { CheckpointStore, connectNats, RunStateStore, sha256Digest } from '../../lib/transport/index.ts';
import { runOrchestrator } from '../../orchestrator/main.ts';
import { lastLoggedTrained } from '../../orchestrator/run-state.ts';
import { readEvents } from '../../lib/log/event-log.ts';
import { natsForFile } from '../helpers/nats.ts';

const shared = natsForFile();
const dir = mkdtempSync(join(tmpdir(), 'event-log-resume-'));


after(() => rmSync(dir, { recursive: true, force: true }));

const config = parseConfig({
  run: { id: 'event-log-resume', seed: 1 },
  data: { size: 16, source: { kind: 'procedural', count: 16 } },
  model: { width: 4, depth: 1 },
  sft: { steps: 3, batchSize: 2 },
  grpo: { steps: 2, groupSize: 2, samplesPerBatch: 1 },
});

type Trained = { type: 'trained'; seq: number; kind: string; applied: boolean; reason?: string; version: number; samples: string[] };
const trained = (file: string): Trained[] =>
  readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string }).filter((e): e is Trained => e.type === 'trained');

test('lastLoggedTrained: the highest trained seq; a line cut short (last, or run on by the next) and other events do not count', () => {
  const f = join(dir, 'scan.jsonl');
  assert.equal(lastLoggedTrained(f).seq, 0, 'no file');
  writeFileSync(f, `${JSON.stringify({ type: 'trained', seq: 2 })}\n${JSON.stringify({ type: 'rollout', seq: 9 })}\n${JSON.stringify({ type: 'trained', seq: 1 })}\n{"type":"trained","seq":7`);
  assert.equal(lastLoggedTrained(f).seq, 2);
  // a line cut by a kill that the next append ran on is not an event either
  appendFileSync(f, `${JSON.stringify({ type: 'trained', seq: 3 })}\n`);
  assert.equal(lastLoggedTrained(f).seq, 2);
  appendFileSync(f, `${JSON.stringify({ type: 'trained', seq: 4 })}\n`);
  assert.equal(lastLoggedTrained(f).seq, 4);
});

test('lastLoggedTrained: the samples dropped in batches after the last one logged trained, however many drops came before (review26a F3)', () => {
  const f = join(dir, 'drops.jsonl');
  // one cursor per batch: batch seq s holds cursor s - 1; 3000 drops of batches the log then records trained
  const firstCursorAfter = (seq: number) => seq;
  const lines = [];
  for (let c = 0; c < 3000; c++) lines.push({ type: 'dropped', sample: `c${c}:x`, reason: 'zero_variance' }, { type: 'trained', seq: c + 1 });
  lines.push({ type: 'dropped', sample: 'c3001:y', reason: 'task_failed' }, { type: 'dropped', sample: 'not-a-group', reason: '?' }, { type: 'dropped', sample: 'c3000:z', reason: 'zero_variance' });
  writeFileSync(f, lines.map((e) => `${JSON.stringify(e)}\n`).join(''));
  assert.deepEqual(lastLoggedTrained(f, firstCursorAfter), { seq: 3000, dropped: ['c3001:y', 'c3000:z'] });
  assert.deepEqual(lastLoggedTrained(f).dropped, [], 'without the cursor map, no drops are collected');
});

test('readEvents reads a block at a time: lines that straddle its 1 MiB blocks (multi-byte characters too) are read whole', () => {
  const f = join(dir, 'long.jsonl');
  const events = Array.from({ length: 40_000 }, (_, k) => ({ type: k % 7 ? 'rollout' : 'trained', seq: k, note: 'é€'.repeat(k % 13) }));
  writeFileSync(f, events.map((e) => JSON.stringify(e)).join('\n') + '\n{"type":"trained","seq":99999');
  assert.ok(readFileSync(f).length > 2.5 * (1 << 20), 'the log spans several blocks');
  assert.deepEqual(readEvents(f), events);
  assert.equal(lastLoggedTrained(f).seq, events.filter((e) => e.type === 'trained').at(-1)!.seq);
});

test('a stored state ahead of the event log: the orchestrator logs the missing acknowledged batches at resume, once', { timeout: 60_000 }, async () => {
  // the aftermath of a kill: batches 1..4 acknowledged and stored (4 = the first GRPO batch), only 1 and 2 logged
  const nc = await connectNats({ url: shared.nats.url, name: 'event-log-resume-test' });
  const schema = z.object({ ackedSeq: z.number().int().nonnegative(), learnerVersion: z.number().int().nonnegative() });
  const store = await RunStateStore.open(nc, { runId: config.run.id, schema });
  await store.create({ ackedSeq: 4, learnerVersion: 4 });
  // the checkpoints the learner published for those batches: what the missing events are read from (inferred-trained.ts)
  const checkpoints = await CheckpointStore.open(nc, { runId: config.run.id });
  for (const v of [2, 3, 4]) {
    const bytes = new TextEncoder().encode(`checkpoint v${v}`);
    await checkpoints.put(v, bytes, sha256Digest(bytes), { step: v, last_batch_seq: String(v) });
  }
  await nc.close();
  const events = join(dir, 'events.jsonl');
  for (const seq of [1, 2]) appendFileSync(events, `${JSON.stringify({ t: 0, type: 'trained', seq, kind: 'sft', applied: true, version: seq, samples: [], compute_ms: 1 })}\n`);

  const log: string[] = [];
  const first = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: shared.nats.url, metricsPort: 0, eventsFile: events, log: (l) => log.push(l) });
  await first.stop();
  const after1 = trained(events);
  assert.deepEqual(after1.map((e) => e.seq), [1, 2, 3, 4], `each acknowledged batch logged once\n${log.join('\n')}`);
  assert.deepEqual(after1.slice(2).map((e) => [e.kind, e.version, e.applied]), [['sft', 3, true], ['grpo', 4, true]]);
  assert.match(after1[3].reason ?? '', /acknowledged before the orchestrator restarted/);
  assert.equal(after1[3].samples.length, 1, 'the GRPO batch names its sample, as a logged one does');
  assert.ok(log.some((l) => /the event log missed 2 acknowledged batch\(es\) up to 4/.test(l)), log.join('\n'));

  // a log that holds every acknowledged batch: nothing more
  const second = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: shared.nats.url, metricsPort: 0, eventsFile: events, log: (l) => log.push(l) });
  await second.stop();
  assert.deepEqual(trained(events).map((e) => e.seq), [1, 2, 3, 4]);
});
