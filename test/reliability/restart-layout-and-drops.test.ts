// An orchestrator restarted under another batch layout, and the trained line of a batch acknowledged without its
// TrainResult: a real orchestrator on a real nats-server.
// review26a: findings of round 26's review of the orchestrator's core that need a real orchestrator (runOrchestrator)
// and a real nats-server; each test fails on the code reviewed (main at 49a92db).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseConfig, type RunConfig } from '../../lib/config/index.ts';
import { openRunDataset } from '../../lib/config/dataset.ts';
import { batchLayout, grpoCursors, groupSampleId } from '../../lib/grpo/sampling.ts';
import { CheckpointStore, connectNats, sha256Digest } from '../../lib/transport/index.ts';
import { runOrchestrator } from '../../orchestrator/main.ts';
import { exitCodeFor, SetupError } from '../../lib/config/setup-error.ts';
import { RunStateStore } from '../../lib/transport/index.ts';
import { z } from 'zod';
import { natsForFile, storeRunState } from '../helpers/nats.ts';
import { acknowledgeBatchOne } from '../helpers/scripted-workers.ts';

const shared = natsForFile();
const dir = mkdtempSync(join(tmpdir(), 'review26a-'));
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

const configOf = (id: string, extra: Record<string, unknown> = {}): RunConfig => parseConfig({
  run: { id, seed: 1 },
  data: { size: 16, source: { kind: 'procedural', count: 16 } },
  model: { width: 4, depth: 1 },
  sft: { steps: 3, batchSize: 2 },
  grpo: { steps: 2, groupSize: 2, samplesPerBatch: 2 },
  ...extra,
});

// F2. The run state in KV is { ackedSeq, learnerVersion } only: nothing records the configuration it was acknowledged
// under. Everything a batch holds is a pure function of its seq *and the config* (sft.steps, sft.batchSize,
// grpo.samplesPerBatch, data, seeds), so an orchestrator restarted on the same run id with another configuration
// (a ConfigMap edited and the Deployment rolled, a --set on a local run's restart) resumes the stored ackedSeq under
// the new mapping: here sft.steps 3 -> 1 after batch 1 was acknowledged, and the restarted orchestrator goes straight
// to GRPO, trains cursors the old mapping had given to SFT batches 2..3, and never says a word (the learner only warns,
// "resuming anyway"; the workers refuse a changed config only within one orchestrator's life). Expected: the restart
// is refused, naming the run and the changed configuration (or at least the fields that shape batches).
test('review26a F2: an orchestrator restarted on a run under another configuration (sft.steps changed) is refused', { timeout: 60_000 }, async () => {
  const a = configOf('r26a-cfg');
  const first = await runOrchestrator({ config: a, listen: '127.0.0.1:0', natsUrl: shared.nats.url, metricsPort: 0, log: () => {} });
  cleanups.push(() => first.stop());
  // a learner (played over gRPC) applies SFT batch 1; the orchestrator stores the acknowledgement
  await acknowledgeBatchOne(first);
  await first.stop();

  const b = configOf('r26a-cfg', { sft: { steps: 1, batchSize: 2 } });
  let second: Awaited<ReturnType<typeof runOrchestrator>> | undefined;
  const outcome = await runOrchestrator({ config: b, listen: '127.0.0.1:0', natsUrl: shared.nats.url, metricsPort: 0, log: () => {} }).then(
    (o) => {
      second = o;
      return `started: resuming after batch ${o.coordinator.state.ackedSeq} in phase ${o.coordinator.phase}`;
    },
    (e: Error) => `refused: ${e.message}`,
  );
  if (second) await second.stop();
  assert.match(outcome, /^refused: .*config/i, 'a restart under another configuration must be refused');
  // a SetupError (exit 78: no restart cures it), naming the changed field with both values and how to go on
  const refusal = await runOrchestrator({ config: b, listen: '127.0.0.1:0', natsUrl: shared.nats.url, metricsPort: 0, log: () => {} }).then(
    async (o) => void (await o.stop()),
    (e: Error) => e,
  );
  assert.ok(refusal instanceof SetupError, String(refusal));
  assert.equal(exitCodeFor(refusal), 78);
  assert.ok(refusal.message.includes('sft.steps: 3 -> 1'), refusal.message);
  assert.ok(!/sft\.batchSize|run\.seed|data\./.test(refusal.message), `only the changed field is named: ${refusal.message}`);
  assert.match(refusal.message, /Start it with the run's values of these fields .* or give this configuration a new run\.id/);
  // the run's own configuration, or one differing only in a field outside the batch layout, resumes
  for (const same of [a, configOf('r26a-cfg', { orchestrator: { dispatch: 'pack' } })]) {
    const again = await runOrchestrator({ config: same, listen: '127.0.0.1:0', natsUrl: shared.nats.url, metricsPort: 0, log: () => {} });
    assert.equal(again.coordinator.state.ackedSeq, 1);
    await again.stop();
  }
});

test('review26a F2: a run state stored before round 26 (no config hash) is accepted and given this configuration\'s batch layout', { timeout: 60_000 }, async () => {
  const a = configOf('r26a-oldstate');
  const nc = await connectNats({ url: shared.nats.url, name: 'r26a-oldstate' });
  cleanups.push(() => nc.close());
  await storeRunState(nc, a.run.id, { ackedSeq: 1, learnerVersion: 1 });
  const lines: string[] = [];
  const orch = await runOrchestrator({ config: a, listen: '127.0.0.1:0', natsUrl: shared.nats.url, metricsPort: 0, log: (l) => lines.push(l) });
  assert.equal(orch.coordinator.state.ackedSeq, 1);
  await orch.stop();
  assert.ok(lines.some((l) => l.includes('records no batch layout (stored before round 26): resuming under this configuration and recording its layout')), lines.join('\n'));
  const raw = await RunStateStore.open(nc, { runId: a.run.id, schema: z.object({ ackedSeq: z.number(), learnerVersion: z.number(), batchLayout: z.record(z.string(), z.unknown()) }) });
  assert.deepEqual((await raw.get())?.value, { ackedSeq: 1, learnerVersion: 1, batchLayout: batchLayout(a) });
  // from then on another layout is refused
  const b = configOf('r26a-oldstate', { grpo: { steps: 2, groupSize: 2, samplesPerBatch: 1 } });
  await assert.rejects(runOrchestrator({ config: b, listen: '127.0.0.1:0', natsUrl: shared.nats.url, metricsPort: 0, log: () => {} }), /another batch layout.*grpo\.samplesPerBatch: 2 -> 1/);
});

test('review26c F2: a run state stored by round 26 (configHash, no layout) is accepted and given the layout, saying so', { timeout: 60_000 }, async () => {
  const a = configOf('r26a-hashstate');
  const nc = await connectNats({ url: shared.nats.url, name: 'r26a-hashstate' });
  cleanups.push(() => nc.close());
  await storeRunState(nc, a.run.id, { ackedSeq: 1, learnerVersion: 1, configHash: 'f'.repeat(64) });
  const lines: string[] = [];
  const orch = await runOrchestrator({ config: a, listen: '127.0.0.1:0', natsUrl: shared.nats.url, metricsPort: 0, log: (l) => lines.push(l) });
  assert.equal(orch.coordinator.state.ackedSeq, 1);
  await orch.stop();
  assert.ok(lines.some((l) => l.includes('records no batch layout (stored by a round-26 orchestrator') && l.includes('ffffffffffff')), lines.join('\n'));
  const raw = await RunStateStore.open(nc, { runId: a.run.id, schema: z.object({ ackedSeq: z.number(), learnerVersion: z.number(), batchLayout: z.record(z.string(), z.unknown()) }).strict() });
  assert.deepEqual((await raw.get())?.value, { ackedSeq: 1, learnerVersion: 1, batchLayout: batchLayout(a) });
});

// F3. A batch acknowledged without a TrainResult at hand (killed between storing and logging: recordUnlogged; a Hello's
// catch-up; a restarted learner's `duplicate`) is logged with samples = every cursor of the batch
// (coordinator.ts inferTrained: grpoCursors(...)), while a logged one lists only the groups it trained
// (TrainBatch.sample_ids). A group dropped before the kill (zero variance, a task given up, unencodable) was logged
// `dropped` and was not in the batch the learner applied; the inferred `trained` line lists it as trained too, so the
// audit trail says the sample was both dropped and trained (test/reliability/helpers.ts's audit would fail "batch N
// trained the samples of its cursors"; the fault runs never drop a group, so it never saw it).
test('review26a F3: a batch logged at resume does not list as trained a sample the log already records dropped', { timeout: 60_000 }, async () => {
  const config = configOf('r26a-drop');
  const nc = await connectNats({ url: shared.nats.url, name: 'r26a-drop' });
  // the aftermath of a kill: SFT 1..3 and GRPO batch 4 acknowledged and stored; the log holds 1..3, and batch 4's
  // second group dropped (zero variance) before it was sent with its first group only
  await storeRunState(nc, config.run.id, { ackedSeq: 4, learnerVersion: 4 });
  const checkpoints = await CheckpointStore.open(nc, { runId: config.run.id });
  for (const v of [2, 3, 4]) {
    const bytes = new TextEncoder().encode(`checkpoint v${v}`);
    await checkpoints.put(v, bytes, sha256Digest(bytes), { step: v, last_batch_seq: String(v) });
  }
  await nc.close();
  const dataset = await openRunDataset(config, 'train');
  const ids = await Promise.all(grpoCursors(config, 0).map(async (c) => groupSampleId(c, (await dataset.sample(c)).id)));
  const events = join(dir, 'events.jsonl');
  for (const seq of [1, 2, 3]) appendFileSync(events, `${JSON.stringify({ t: 0, type: 'trained', seq, kind: 'sft', applied: true, version: seq, samples: [], compute_ms: 1 })}\n`);
  appendFileSync(events, `${JSON.stringify({ t: 0, type: 'dropped', sample: ids[1], reason: 'zero_variance' })}\n`);

  const orch = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: shared.nats.url, metricsPort: 0, eventsFile: events, log: () => {} });
  await orch.stop();
  const lines = readFileSync(events, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; seq?: number; sample?: string; samples?: string[] });
  const dropped = new Set(lines.filter((e) => e.type === 'dropped').map((e) => e.sample));
  const t4 = lines.find((e) => e.type === 'trained' && e.seq === 4);
  assert.ok(t4, 'batch 4 logged at resume');
  const both = (t4.samples ?? []).filter((s) => dropped.has(s));
  assert.deepEqual(both, [], `batch 4's inferred 'trained' line lists ${JSON.stringify(t4.samples)}, and the log records ${JSON.stringify([...dropped])} dropped`);
  assert.deepEqual(t4.samples, [ids[0]], 'the group that was not dropped is listed trained');
});
