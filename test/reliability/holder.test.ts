// Tasks belong to their holder (issue #16, probes 3-5), against a real orchestrator (gRPC on 127.0.0.1, run
// state in a real nats-server) and worker streams driven by the test: a worker cannot finish or fail a task
// it does not hold; task ids carry a random lease token; made-up scores outside [-1, 1] are refused; a lease
// that is not renewed expires and the task goes to another worker; heartbeats renew a lease but not past
// orchestrator.maxTaskSeconds; orchestrator.maxInFlightPerWorker caps what a worker's Hello asks for; and
// task error codes outside the fixed set are counted as `other`, only for the task's holder; a rollout result's
// policy_version lies between its task's policy_version_min and the newest version the learner published.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type RunConfig } from '../../lib/config/index.ts';
import { CheckpointStore, connectNats, connectToOrchestrator, encodeTensor, sha256Digest, type OrchestratorConnection, type OrchestratorMessage__Output } from '../../lib/transport/index.ts';
import { runOrchestrator, type RunningOrchestrator } from '../../orchestrator/main.ts';
import { startNatsServer, storeRunState, type TestNatsServer } from '../helpers/nats.ts';
import { scrapeMetric } from '../helpers/metrics.ts';
import { waitFor } from '../helpers/wait.ts';

const H = 16;
const G = 2;

function runConfig(id: string, orchestrator: Record<string, number> = {}, grpo: Record<string, number> = {}): RunConfig {
  return parseConfig({
    run: { id, seed: 1 },
    data: { size: H, source: { kind: 'procedural', count: 48 } },
    model: { width: 4, depth: 1 },
    sft: { steps: 0 },
    grpo: { steps: 20, groupSize: G, samplesPerBatch: 2, maxStaleness: 4, advantageMode: 'scalar', ...grpo },
    orchestrator: { leaseSeconds: 30, heartbeatSeconds: 1, ...orchestrator },
  });
}

let nats: TestNatsServer;
const running: RunningOrchestrator[] = [];
const conns: OrchestratorConnection[] = [];

before(async () => {
  nats = await startNatsServer();
});

after(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  for (const o of running) await o.stop();
  await nats?.stop();
});

async function orchestrator(config: RunConfig): Promise<{ orch: RunningOrchestrator; log: string[] }> {
  const log: string[] = [];
  const orch = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, log: (l) => log.push(l) });
  running.push(orch);
  return { orch, log };
}

/**
 * A worker stream driven by the test. It records every message; `renew` decides which held tasks its
 * heartbeats list (all of them by default; none for a worker that stops renewing).
 */
async function worker(orch: RunningOrchestrator, role: 'ROLLOUT' | 'REWARD', id: string, o: { maxInFlight?: number; renew?: boolean } = {}) {
  const held = new Set<string>();
  const got: OrchestratorMessage__Output[] = [];
  const conn = await connectToOrchestrator({
    address: `127.0.0.1:${orch.port}`, role, workerId: id,
    capabilities: { device: 'cpu', max_batch: 8, max_in_flight: o.maxInFlight ?? 1 },
    heartbeatMs: 200, heartbeat: () => ({ active_task_ids: o.renew === false ? [] : [...held] }),
  });
  conns.push(conn);
  void (async () => {
    try {
      for await (const m of conn.messages) {
        const tid = m.rollout_task?.task_id ?? m.score_task?.task_id;
        if (tid) held.add(tid);
        if (m.cancel_task) held.delete(m.cancel_task.task_id);
        got.push(m);
      }
    } catch {
      // the stream ended: the test closes it
    }
  })();
  const tasks = () => got.filter((m) => m.rollout_task || m.score_task);
  return { conn, got, held, tasks, cancels: () => got.filter((m) => m.cancel_task).map((m) => m.cancel_task!) };
}

const img = (v: number) => encodeTensor({ dtype: 'float32', shape: [3, H, H], data: new Float32Array(3 * H * H).fill(v) });
const rolloutResult = (taskId: string, policyVersion = 0) => ({
  rollout_result: { task_id: taskId, attempt: 1, policy_version: policyVersion, items: Array.from({ length: G }, (_, g) => ({ sample_id: 's', group_index: g, action: img(0.5), logp: -1 })) },
});

test('only the holder of a task\'s lease can finish or fail it; task ids carry an unguessable token', { timeout: 60_000 }, async () => {
  const { orch, log } = await orchestrator(runConfig('holder'));
  const a = await worker(orch, 'ROLLOUT', 'honest');
  const taskA = (await waitFor(() => a.tasks()[0], 'a task for the honest worker', log)).rollout_task!;
  // the id is the readable prefix plus 96 random bits: two tasks of a run share no guessable pattern
  assert.match(taskA.task_id, /^holder-r\d+-[0-9a-f]{24}$/);
  const thief = await worker(orch, 'ROLLOUT', 'thief');
  await waitFor(() => thief.tasks()[0], 'a task for the thief', log);
  assert.notEqual(thief.tasks()[0]!.rollout_task!.task_id.slice(-24), taskA.task_id.slice(-24));

  // the thief completes and fails the honest worker's task: both refused, counted, the lease stands
  await thief.conn.send(rolloutResult(taskA.task_id));
  await thief.conn.send({ task_error: { task_id: taskA.task_id, attempt: 1, code: 'internal', message: 'give it to me', retryable: true } });
  await waitFor(async () => (await scrapeMetric(orch.metricsUrl, 'foreign_results_total', { worker_role: 'rollout' })) >= 2, 'two foreign results counted', log);
  assert.equal(await scrapeMetric(orch.metricsUrl, 'rollouts_total'), 0, 'the thief\'s result was not accepted');
  assert.equal(await scrapeMetric(orch.metricsUrl, 'redispatches_total'), 0, 'the thief\'s error did not take the task from its holder');
  assert.equal(await scrapeMetric(orch.metricsUrl, 'task_errors_total'), 0, 'an error for a task one does not hold is not counted as a task error');

  // the holder's own result is accepted
  await a.conn.send(rolloutResult(taskA.task_id));
  await waitFor(async () => (await scrapeMetric(orch.metricsUrl, 'rollouts_total')) === G, 'the holder\'s result accepted', log);
});

test('scores outside [-1, 1] are refused (ssim = 1e6 cannot pick a group\'s winner); float32\'s rounding past 1 is a score', { timeout: 60_000 }, async () => {
  const { orch, log } = await orchestrator(runConfig('scores'));
  const r = await worker(orch, 'ROLLOUT', 'roller');
  const s = await worker(orch, 'REWARD', 'scorer');
  const task = (await waitFor(() => r.tasks()[0], 'a rollout task', log)).rollout_task!;
  await r.conn.send(rolloutResult(task.task_id));
  const cases = [
    { components: [{ ssim: 1e6, clip_cos: 0.5 }, { ssim: 0.5, clip_cos: 0.5 }], pattern: /components\[0\]\.ssim is 1000000, outside \[-1, 1\]/ },
    { components: [{ ssim: 0.5, clip_cos: 0.5 }, { ssim: 0.5, clip_cos: -1.5 }], pattern: /components\[1\]\.clip_cos is -1\.5, outside \[-1, 1\]/ },
    { components: [{ ssim: 1.01, clip_cos: 0.5 }, { ssim: 0.5, clip_cos: 0.5 }], pattern: /components\[0\]\.ssim is 1\.01, outside \[-1, 1\]/ },
  ];
  for (const [i, c] of cases.entries()) {
    const st = (await waitFor(() => s.tasks()[i], `score task attempt ${i + 1}`, log)).score_task!;
    await s.conn.send({ score_result: { task_id: st.task_id, attempt: st.attempt, components: c.components } });
    await waitFor(() => log.some((l) => c.pattern.test(l)), `a refusal matching ${c.pattern}`, log);
  }
  assert.equal(await scrapeMetric(orch.metricsUrl, 'scores_total'), 0);
  // refused results are retried, as any malformed result: the task comes back (attempt 4). A candidate equal to its
  // reference scores a float32 rounding step past 1 (cosine 1 + 2^-23; SSIM 1 + 1.2e-5, the float32 graph's
  // cancellation on a bright near-perfect candidate, round 24): accepted, not refused for ever
  const fourth = (await waitFor(() => s.tasks()[3], 'the score task again', log)).score_task!;
  assert.equal(fourth.attempt, 4);
  await s.conn.send({ score_result: { task_id: fourth.task_id, attempt: 4, components: [{ ssim: 1.0000118, clip_cos: 1.0000001192092896 }, { ssim: 0.4, clip_cos: -0.5 }] } });
  await waitFor(async () => (await scrapeMetric(orch.metricsUrl, 'scores_total')) === G, 'an in-range score accepted', log);
});

test('a lease that is not renewed expires: the holder gets a CancelTask and another worker the task', { timeout: 60_000 }, async () => {
  // one open task at a time (1 sample per batch, staleness 0), so the expired task is the only one to hand out
  // heartbeats every 0.4 s, so a session dies after 1.2 s of silence (3 periods): a loaded machine's pause of this
  // process could outlast the 0.6 s of heartbeatSeconds 0.2
  const { orch, log } = await orchestrator(runConfig('expiry', { leaseSeconds: 1.5, heartbeatSeconds: 0.4 }, { samplesPerBatch: 1, maxStaleness: 0 }));
  const silent = await worker(orch, 'ROLLOUT', 'silent', { renew: false });
  const task = (await waitFor(() => silent.tasks()[0], 'a task for the silent worker', log)).rollout_task!;
  const other = await worker(orch, 'ROLLOUT', 'other');
  const cancel = await waitFor(() => silent.cancels().find((c) => c.task_id === task.task_id), 'its CancelTask', log);
  assert.equal(cancel.reason, 'lease expired');
  const again = await waitFor(() => other.tasks().find((m) => m.rollout_task!.task_id === task.task_id), 'the task at another worker', log);
  assert.ok(again.rollout_task!.attempt >= 2);
  assert.ok((await scrapeMetric(orch.metricsUrl, 'lease_expiries_total', { worker_role: 'rollout' })) >= 1);
  // the old holder's late result is refused: the task is the new holder's
  await silent.conn.send(rolloutResult(task.task_id));
  await waitFor(async () => (await scrapeMetric(orch.metricsUrl, 'foreign_results_total')) >= 1, 'the late result refused', log);
  assert.equal(await scrapeMetric(orch.metricsUrl, 'rollouts_total'), 0);
});

test('heartbeats renew a lease, but not past orchestrator.maxTaskSeconds', { timeout: 60_000 }, async () => {
  const { orch, log } = await orchestrator(runConfig('task-limit', { leaseSeconds: 1.5, heartbeatSeconds: 0.4, maxTaskSeconds: 3 }));
  const busy = await worker(orch, 'ROLLOUT', 'forever');
  const task = (await waitFor(() => busy.tasks()[0], 'a task', log)).rollout_task!;
  // heart-beating every 400 ms keeps the 1.5 s lease alive, until the task's 3 s limit takes it back
  const cancel = await waitFor(() => busy.cancels().find((c) => c.task_id === task.task_id), 'the time-limit CancelTask', log);
  assert.equal(cancel.reason, 'task time limit reached', 'the renewed lease did not expire on its own');
});

test('orchestrator.maxInFlightPerWorker caps what a Hello asks for; error codes come from a fixed set', { timeout: 60_000 }, async () => {
  const { orch, log } = await orchestrator(runConfig('in-flight', { maxInFlightPerWorker: 2 }));
  const greedy = await worker(orch, 'ROLLOUT', 'greedy', { maxInFlight: 1000 });
  await waitFor(() => greedy.tasks().length >= 2, 'two tasks for the greedy worker', log);
  // ten rollout tasks are open (5 batches x 2 samples); a second worker still gets work
  const modest = await worker(orch, 'ROLLOUT', 'modest');
  await waitFor(() => modest.tasks()[0], 'a task for a second worker', log);
  assert.equal(greedy.tasks().length, 2);

  // made-up error codes for tasks the worker does not hold: no series at all
  for (let i = 0; i < 20; i++) await greedy.conn.send({ task_error: { task_id: `in-flight-r${i}`, attempt: 1, code: `made-up-${i}`, message: 'x', retryable: true } });
  // its own task, with a code outside the set: counted as `other`
  const own = greedy.tasks()[0]!.rollout_task!;
  await greedy.conn.send({ task_error: { task_id: own.task_id, attempt: own.attempt, code: 'made-up-own', message: 'x', retryable: true } });
  await waitFor(async () => (await scrapeMetric(orch.metricsUrl, 'task_errors_total', { code: 'other' })) === 1, 'the holder\'s error counted as other', log);
  // the series an alert names in full exist at 0 from the start (lib/metrics ALERTED_COUNTERS): only counted ones here
  const text = await (await fetch(`${orch.metricsUrl}/metrics`)).text();
  const codes = text.split('\n').filter((l) => l.startsWith('recovery_grpo_task_errors_total{') && !/ 0$/.test(l)).map((l) => /code="([^"]*)"/.exec(l)?.[1]);
  assert.deepEqual(codes, ['other']);
});

test('a rollout result made with a policy older than its task\'s policy_version_min is refused (the staleness bound)', { timeout: 60_000 }, async () => {
  // the run resumes at policy version 3: its rollout tasks ask for at least v3
  const nc = await connectNats({ url: nats.url, name: 'seed-state' });
  await storeRunState(nc, 'stale', { ackedSeq: 0, learnerVersion: 3 });
  await nc.drain();
  const { orch, log } = await orchestrator(runConfig('stale'));
  const w = await worker(orch, 'ROLLOUT', 'behind');
  const task = (await waitFor(() => w.tasks()[0], 'a rollout task', log)).rollout_task!;
  assert.equal(task.policy_version_min, 3);
  // rolled out with v0: three versions staler than the bound allows; refused and retried like any bad result
  await w.conn.send(rolloutResult(task.task_id, 0));
  await waitFor(() => log.some((l) => /policy_version 0 is below the task's policy_version_min 3/.test(l)), 'the refusal', log);
  const again = (await waitFor(() => w.tasks().find((m) => m.rollout_task!.task_id === task.task_id && m.rollout_task!.attempt === 2), 'the task again', log)).rollout_task!;
  assert.equal(await scrapeMetric(orch.metricsUrl, 'rollouts_total'), 0, 'the stale result was not accepted');
  // the same task rolled out with v3 is accepted
  await w.conn.send(rolloutResult(again.task_id, 3));
  await waitFor(async () => (await scrapeMetric(orch.metricsUrl, 'rollouts_total')) === G, 'the result at v3 accepted', log);
});

test('a rollout result claiming a policy version the learner has not published is refused, naming the task and both versions; one the checkpoint store announced is accepted', { timeout: 60_000 }, async () => {
  // the run resumes at policy version 3 (no batch sent yet: the learner can hold v3 as far as the orchestrator knows)
  const nc = await connectNats({ url: nats.url, name: 'seed-future' });
  await storeRunState(nc, 'future', { ackedSeq: 0, learnerVersion: 3 });
  const { orch, log } = await orchestrator(runConfig('future'));
  const w = await worker(orch, 'ROLLOUT', 'ahead');
  try {
    const task = (await waitFor(() => w.tasks()[0], 'a rollout task', log)).rollout_task!;
    // v424242 was never published: refused like any bad result, and the task retried
    await w.conn.send(rolloutResult(task.task_id, 424242));
    const refusal = await waitFor(() => log.find((l) => /policy_version 424242 is newer than/.test(l)), 'the refusal', log);
    assert.ok(refusal.includes(task.task_id), refusal);
    assert.match(refusal, /policy_version 424242 is newer than the learner's newest version 3 \(acknowledged or announced\): no such policy was published/);
    const again = (await waitFor(() => w.tasks().find((m) => m.rollout_task!.task_id === task.task_id && m.rollout_task!.attempt === 2), 'the task again', log)).rollout_task!;
    assert.equal(await scrapeMetric(orch.metricsUrl, 'rollouts_total'), 0, 'the made-up version was not accepted');
    // the learner published v5, which this orchestrator has not heard of (e.g. it restarted before the
    // acknowledgements): the store announces it, so a result made with it is accepted
    const store = await CheckpointStore.open(nc, { runId: 'future' });
    const bytes = new TextEncoder().encode('checkpoint v5 bytes');
    await store.put(5, bytes, sha256Digest(bytes), { last_batch_seq: '0' });
    await w.conn.send(rolloutResult(again.task_id, 5));
    await waitFor(async () => (await scrapeMetric(orch.metricsUrl, 'rollouts_total')) === G, 'the result at v5 accepted', log);
    assert.equal(log.filter((l) => /is newer than/.test(l)).length, 1, log.join('\n'));
  } finally {
    await nc.drain();
  }
});

test('a rollout result whose version check cannot read the checkpoint store is checked again, not refused as a bad result', { timeout: 60_000 }, async () => {
  const nc = await connectNats({ url: nats.url, name: 'seed-future-read' });
  await storeRunState(nc, 'future-read', { ackedSeq: 0, learnerVersion: 3 });
  const { orch, log } = await orchestrator(runConfig('future-read'));
  const w = await worker(orch, 'ROLLOUT', 'ahead-read');
  // the learner published v5, not yet acknowledged: the store announces it
  const store = await CheckpointStore.open(nc, { runId: 'future-read' });
  const bytes = new TextEncoder().encode('checkpoint v5 bytes');
  await store.put(5, bytes, sha256Digest(bytes), { last_batch_seq: '0' });
  // the orchestrator's next read of the newest announcement fails (a request timing out)
  const proto = CheckpointStore.prototype as unknown as { latest(): Promise<unknown> };
  const real = proto.latest;
  let failed = 0;
  proto.latest = function (this: unknown) {
    if (failed === 0) {
      failed++;
      return Promise.reject(Object.assign(new Error('TIMEOUT'), { code: 'TIMEOUT' }));
    }
    return real.call(this);
  };
  try {
    const task = (await waitFor(() => w.tasks()[0], 'a rollout task', log)).rollout_task!;
    await w.conn.send(rolloutResult(task.task_id, 5));
    // before the fix: refused as a bad result (an attempt counted toward maxAttempts) and the task dispatched again
    await waitFor(async () => (await scrapeMetric(orch.metricsUrl, 'rollouts_total')) === G || log.some((l) => /rejected a message/.test(l)), 'the result accepted or refused', log);
    assert.equal(failed, 1, 'the read failed once');
    assert.equal(log.filter((l) => /rejected a message/.test(l)).length, 0, log.join('\n'));
    assert.equal(await scrapeMetric(orch.metricsUrl, 'rollouts_total'), G, 'the result at v5 accepted');
    assert.ok(log.some((l) => /could not be read to check it \(TIMEOUT\): reading it again/.test(l)), log.join('\n'));
  } finally {
    proto.latest = real;
    await nc.drain();
  }
});
