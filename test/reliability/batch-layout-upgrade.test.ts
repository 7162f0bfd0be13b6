// The batch layout across releases and an unreadable one, at the real orchestrator over a real nats-server (round 26,
// review26d). F2: a run state stored by a release before data.augment/data.valImages existed records no such fields;
// the upgraded orchestrator resumes it (they are at their defaults), saying so once, where it refused with exit 78.
// F3: a checkpoint announcement whose extra.batch_layout is not a layout failed the run with exit 78 (as a genuine
// layout of other samples does); it is an unverified claim: counted (task_errors_total code unverified_claim), logged,
// and not trusted (no Hello catch-up to it), and the run goes on.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { parseConfig } from '../../lib/config/index.ts';
import { connectNats, connectToOrchestrator, CheckpointStore, RunStateStore, sha256Digest } from '../../lib/transport/index.ts';
import { runOrchestrator } from '../../orchestrator/main.ts';
import { batchLayout } from '../../lib/grpo/sampling.ts';
import { natsForFile } from '../helpers/nats.ts';
import { scrapeMetric } from '../helpers/metrics.ts';
import { waitFor } from '../helpers/wait.ts';

const shared = natsForFile();
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const base = {
  data: { size: 16, source: { kind: 'procedural', count: 16 } },
  model: { width: 4, depth: 1 },
  sft: { steps: 3, batchSize: 2 },
  grpo: { steps: 2, groupSize: 2, samplesPerBatch: 2 },
};

test('review26d F2: a run state stored before data.augment and data.valImages existed is resumed by the upgraded orchestrator, said once', { timeout: 60_000 }, async () => {
  const config = parseConfig({ ...structuredClone(base), run: { id: 'r26d-upgrade', seed: 1 } });
  const older = { ...batchLayout(config) };
  delete older['data.augment'];
  delete older['data.valImages'];
  const nc = await connectNats({ url: shared.nats.url, name: 'r26d-upgrade' });
  const store = await RunStateStore.open(nc, { runId: config.run.id, schema: z.object({ ackedSeq: z.number(), learnerVersion: z.number(), batchLayout: z.record(z.string(), z.unknown()) }) });
  await store.create({ ackedSeq: 2, learnerVersion: 2, batchLayout: older });
  await nc.close();
  const lines: string[] = [];
  // before the fix: SetupError (exit 78) "... data.augment: (unset) -> false; data.valImages: (unset) -> 0"
  const orch = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: shared.nats.url, metricsPort: 0, log: (l) => lines.push(l) });
  const seq = orch.coordinator.state.ackedSeq;
  await orch.stop();
  assert.equal(seq, 2, 'resumed after batch 2');
  const said = lines.filter((l) => l.includes("taken as equal because the value present is the field's default"));
  assert.equal(said.length, 1, lines.join('\n'));
  assert.match(said[0]!, /^the stored run state \(after batch 2\): .*data\.augment \(absent from the run's layout; false is its default\); data\.valImages \(absent from the run's layout; 0 is its default\)$/);
  // a run state whose layout has data.augment true is still refused against a configuration at the default
  const nc2 = await connectNats({ url: shared.nats.url, name: 'r26d-upgrade' });
  const store2 = await RunStateStore.open(nc2, { runId: config.run.id, schema: z.object({ ackedSeq: z.number(), learnerVersion: z.number(), batchLayout: z.record(z.string(), z.unknown()) }) });
  const now = (await store2.get())!;
  await store2.update({ ...now.value, batchLayout: { ...older, 'data.augment': true } }, now.revision);
  await nc2.close();
  const refused = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: shared.nats.url, metricsPort: 0, log: () => {} }).then(async (o) => (await o.stop(), undefined), (e: Error) => e);
  assert.match(String(refused?.message), /data\.augment: true -> false/);
});

test('review26d F3: a checkpoint whose extra.batch_layout is not a layout is counted as an unverified claim and not trusted; the run goes on', { timeout: 60_000 }, async () => {
  const config = parseConfig({ ...structuredClone(base), run: { id: 'r26d-unreadable', seed: 1 } });
  const nc = await connectNats({ url: shared.nats.url, name: 'r26d-unreadable' });
  const bytes = new TextEncoder().encode('checkpoint v3');
  await (await CheckpointStore.open(nc, { runId: config.run.id })).put(3, bytes, sha256Digest(bytes), { step: 3, last_batch_seq: '3', batch_layout: '{"run.seed": 1, "data": {' });
  await nc.close();
  const lines: string[] = [];
  // no run state: the start compares the newest checkpoint's layout, which cannot be read (before the fix: exit 78)
  const orch = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: shared.nats.url, metricsPort: 0, log: (l) => lines.push(l) });
  cleanups.push(() => orch.stop());
  assert.equal(await scrapeMetric(orch.metricsUrl, 'task_errors_total', { worker_role: 'learner', code: 'unverified_claim' }), 1);
  assert.ok(lines.some((l) => /^checkpoint v3's extra\.batch_layout: not JSON .*not trusted: no learner is caught up to it/.test(l)), lines.join('\n'));
  // a learner's Hello claiming batch 3 is not caught up to it (before the fix: the run failed with exit 78)
  const conn = await connectToOrchestrator({ address: `127.0.0.1:${orch.port}`, role: 'LEARNER', workerId: 'learner-1', capabilities: { device: 'cpu', max_batch: 8, max_in_flight: 1 }, hello: { last_batch_seq: 3, policy_version: 3 } });
  cleanups.push(() => conn.close());
  const seqs: number[] = [];
  void (async () => {
    try {
      for await (const m of conn.messages) if (m.train_batch) seqs.push(m.train_batch.batch_seq);
    } catch {
      /* the stream ended */
    }
  })();
  await waitFor(() => (seqs.includes(1) ? true : undefined), 'batch 1 sent to the learner (nothing caught up)');
  let failed: unknown;
  orch.done.catch((e: unknown) => void (failed = e));
  await waitFor(() => (lines.some((l) => l.includes('claims batch 3')) ? true : undefined), 'the claim logged as not believed');
  assert.equal(failed, undefined, 'the run goes on');
  assert.equal(orch.coordinator.state.ackedSeq, 0, 'nothing acknowledged from that checkpoint');
  // counted once per checkpoint (at start), and the catch-up's own unverified claim once more
  assert.equal(await scrapeMetric(orch.metricsUrl, 'task_errors_total', { worker_role: 'learner', code: 'unverified_claim' }), 2);
  assert.equal(lines.filter((l) => l.startsWith("checkpoint v3's extra.batch_layout")).length, 1, 'logged once');
});
