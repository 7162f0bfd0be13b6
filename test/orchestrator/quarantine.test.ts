// A rollout worker that keeps sending forged log-densities is named, counted and quarantined (docs/security.md,
// "Forged log-densities"). Real nats-server, orchestrator, learner, reward worker and an honest rollout worker over
// gRPC on 127.0.0.1, beside a forger: a gRPC client with a rollout credential that answers each task at once with
// plausible actions (the corrupted input) and logp_old -1, which the policy does not give them. The learner's
// same-version check excludes those rows (maxStaleness 0: every row is checked) and says which in its TrainResult; the
// orchestrator names the forger in its log, counts its rows in rollout_rows_excluded_total{worker_id="forger"}, and
// after grpo.quarantineAfter results closes its session (PERMISSION_DENIED) and refuses it on reconnect. The honest
// worker does the rest: the run completes, every batch applied once, every sample trained once.
// Before round 25 (trust25c) nothing acted on the forger: it kept its session and half of every batch's rows.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseConfig } from '../../lib/config/index.ts';
import { runOrchestrator } from '../../orchestrator/main.ts';
import { runLearner } from '../../learner/index.ts';
import { runRolloutWorker } from '../../rollout-worker/index.ts';
import { runRewardWorker } from '../../reward-worker/index.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { connectToOrchestrator, TransportError, type OrchestratorConnection } from '../../lib/transport/index.ts';
import { startNatsServer } from '../helpers/nats.ts';
import { answerRolloutTasks } from '../helpers/scripted-workers.ts';
import { events, isApplied } from '../reliability/helpers.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => undefined); });

const PERMISSION_DENIED = 7;
const STEPS = 10;
const S = 2;

/** The forger: answers each rollout task at once with the corrupted input as every action and logp -1 (in the bounds
 * the orchestrator checks, not what the policy gives them). */
const forger = (conn: OrchestratorConnection) => answerRolloutTasks(conn, -1);

test('a rollout worker forging logp_old is named, counted and quarantined; the honest worker finishes the run', { timeout: 180_000 }, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const dir = mkdtempSync(join(tmpdir(), 'quarantine-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const config = parseConfig({
    run: { id: 'quarantine', seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 64 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 },
    grpo: { steps: STEPS, groupSize: 2, samplesPerBatch: S, maxStaleness: 0, advantageMode: 'scalar', quarantineAfter: 2 },
    orchestrator: { bundleMs: 0, leaseSeconds: 30 },
  });
  const olog: string[] = [];
  const orch = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, eventsFile: join(dir, 'events.jsonl'), log: (l) => olog.push(l) });
  cleanups.push(() => orch.stop());
  const address = `127.0.0.1:${orch.port}`;
  const common = { orchestrator: address, nats: nats.url, metricsPort: 0, logger: silentLogger, handleSignals: false } as const;
  const learner = await runLearner({ ...common, workerId: 'l' });
  cleanups.push(() => learner.stop({ graceMs: 1000 }));
  const reward = await runRewardWorker({ ...common, workerId: 's' });
  cleanups.push(() => reward.stop({ graceMs: 1000 }));
  const capabilities = { device: 'cpu', max_batch: 8, max_in_flight: 1 };
  const bad = await connectToOrchestrator({ address, role: 'ROLLOUT', workerId: 'forger', capabilities });
  cleanups.push(() => bad.close());
  const answered = forger(bad);
  const honest = await runRolloutWorker({ ...common, workerId: 'honest' });
  cleanups.push(() => honest.stop({ graceMs: 1000 }));

  await orch.done;
  const why = () => olog.join('\n');
  // the forger's session was closed with the reason, and it answered at least quarantineAfter tasks
  // (a forger never quarantined keeps its stream: it ignores the run's Shutdown)
  const end = await Promise.race([bad.closed, new Promise<null>((r) => setTimeout(() => r(null), 30_000).unref())]);
  assert.ok(end, `the forger's session is still open after the run\n${why()}`);
  assert.equal(end.code, PERMISSION_DENIED, why());
  assert.match(end.details, /worker forger is quarantined for the rest of the run/);
  assert.ok((await answered) >= 2);
  // each exclusion names the forger, never the honest worker
  assert.ok(olog.some((l) => /^GRPO batch \d+: the learner excluded [24] actions of rollout worker forger \(logp_old disagreeing/.test(l)), why());
  assert.ok(!olog.some((l) => /of rollout worker honest/.test(l)), why());
  assert.equal(olog.filter((l) => /^quarantined rollout worker forger: /.test(l)).length, 1, why());
  const metrics = await (await fetch(`${orch.metricsUrl}/metrics`)).text();
  const counted = /recovery_grpo_rollout_rows_excluded_total\{[^}]*worker_id="forger"[^}]*\} (\d+)/.exec(metrics);
  assert.ok(counted && Number(counted[1]) >= 4, metrics);
  assert.ok(!/rollout_rows_excluded_total\{[^}]*worker_id="honest"/.test(metrics));
  assert.match(metrics, /recovery_grpo_workers_quarantined_total\{[^}]*\} 1/);
  // the real learner's batch_digest matched every batch (no result taken unchecked or refused)
  assert.match(metrics, new RegExp(`recovery_grpo_train_result_digests_total\\{[^}]*outcome="match"[^}]*\\} ${STEPS}\\b`));
  assert.ok(!/train_result_digests_total\{[^}]*outcome="(mismatch|absent)"/.test(metrics), metrics);
  // a reconnect with that worker id is refused, before any Welcome
  await assert.rejects(connectToOrchestrator({ address, role: 'ROLLOUT', workerId: 'forger', capabilities }), (e: unknown) => e instanceof TransportError && e.code === PERMISSION_DENIED && /quarantined/.test(e.details));
  // exactly once: every batch applied once in order, every sample trained once (the forger's groups included: their
  // rows were excluded from the step, their samples still accounted for), the later batches' rollouts all honest's
  const ev = events(dir);
  const applied = ev.filter(isApplied);
  assert.deepEqual(applied.map((e) => e.seq), Array.from({ length: STEPS }, (_, i) => i + 1));
  const samples = applied.flatMap((e) => e.samples);
  const dropped = ev.filter((e) => e.type === 'dropped');
  assert.equal(new Set(samples).size, samples.length, 'no sample trained twice');
  assert.equal(samples.length + dropped.length, STEPS * S);
  const rollouts = ev.filter((e) => e.type === 'rollout');
  const workers = rollouts.map((e) => (e.type === 'rollout' ? e.worker : ''));
  assert.ok(workers.lastIndexOf('honest') > workers.lastIndexOf('forger'), `the honest worker rolled out after the forger's last result: ${workers.join(' ')}`);
  // no result of the forger's was taken after its quarantine (the board re-queued what it held): at maxStaleness 0 it
  // reaches grpo.quarantineAfter 2 at the TrainResult of some batch j, having at most 1 group before j, S in j and S in
  // j + 1 (opened early); batch j + 2 opens after that TrainResult, its session already failed
  const forged = workers.filter((w) => w === 'forger').length;
  assert.ok(forged >= 2 && forged <= 1 + 2 * S, workers.join(' '));
});

// The coordinator alone (fake sessions, as test/orchestrator/logp-bounds.test.ts): at maxStaleness 2 three batches are
// open at once; the forger rolled out every group, and the TrainResult of batch 1 excludes its actions. The forger is
// quarantined (session failed with PERMISSION_DENIED) and its groups of batches 2 and 3, not yet trained, are rolled
// out again by the honest worker: at staleness > 0 the learner's check would not have seen those rows.
test('quarantine: the session is failed, unsent groups of the worker are rolled out again, a reconnect is refused', async () => {
  const { testCoordinator } = await import('../helpers/coordinator.ts');
  const { encodeTensor } = await import('../../lib/transport/index.ts');
  const { fakeSession, until } = await import('../helpers/fake-session.ts');
  const H = 16;
  const cfg = parseConfig({
    run: { id: 'quar', seed: 1 }, data: { size: H, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: 3, groupSize: 2, samplesPerBatch: 2, maxStaleness: 2, advantageMode: 'scalar' },
  });
  const { c, events, log, metrics } = await testCoordinator(cfg, 'quar');
  const failures: Array<{ code: number; details: string }> = [];
  /** A fake rollout session whose fail() ends it, as a real one's does (closed resolves, so the coordinator detaches it). */
  const closable = (id: string) => {
    let end!: (e: { code: number; details: string; by: 'local' }) => void;
    const s = fakeSession('ROLLOUT', id);
    return Object.assign(s, {
      closed: new Promise((r) => (end = r)),
      fail(code: number, details: string) {
        failures.push({ code, details });
        (s as { isOpen: boolean }).isOpen = false;
        end({ code, details, by: 'local' });
      },
    });
  };
  const evil = closable('forger');
  const scorer = fakeSession('REWARD', 'scorer');
  const learner = fakeSession('LEARNER', 'l');
  // as orchestrator/main.ts: tracked (registered with the sessions), then attached
  const join = (s: typeof evil) => {
    c.track(s);
    c.attach(s);
  };
  join(evil);
  join(scorer);
  join(learner);
  // a reward worker that uses the forger's id too (tracked, never given tasks): the quarantine is of the rollout
  // worker id, so it must not be closed or refused (review25g: the forger under the learner's id shut the learner out)
  const sameIdFailures: number[] = [];
  c.track(Object.assign(fakeSession('REWARD', 'forger'), { fail: (code: number) => void sameIdFailures.push(code) }));
  c.start();
  const img = encodeTensor({ dtype: 'float32', shape: [3, H, H], data: new Float32Array(3 * H * H).fill(0.5) }) as never;
  const tasksOf = (s: typeof evil) => s.sent.flatMap((m) => (m.rollout_task ? [m.rollout_task] : m.task_bundle?.rollout_tasks ?? []));
  const scoresOf = (s: typeof evil) => s.sent.flatMap((m) => (m.score_task ? [m.score_task] : m.task_bundle?.score_tasks ?? []));
  const answerRollouts = (s: typeof evil, from: number) => {
    const ts = tasksOf(s).slice(from);
    for (const t of ts) c.handle(s, { rollout_result: { task_id: t.task_id, attempt: t.attempt, policy_version: t.policy_version_min ?? 0, compute_ms: 1, items: [0, 1].map((g) => ({ sample_id: 'x', group_index: g, action: img, logp: -1 })) } } as never);
    return ts.length;
  };
  const answerScores = (from: number, to: number) => {
    for (const t of scoresOf(scorer).slice(from, to)) c.handle(scorer, { score_result: { task_id: t.task_id, attempt: t.attempt, components: [{ ssim: 0.9, clip_cos: 0.9 }, { ssim: 0.1, clip_cos: 0.1 }] } } as never);
  };
  // the forger rolls out all six groups (its in-flight limit hands them out a few at a time)
  let answered = 0;
  for (let i = 0; i < 20 && answered < 6; i++) {
    await until(() => tasksOf(evil).length > answered, 'a rollout task for the forger');
    answered += answerRollouts(evil, answered);
  }
  await until(() => scoresOf(scorer).length >= 2, 'score tasks');
  answerScores(0, 2); // batch 1's groups only (the forger answered in order): batches 2 and 3 stay unsent
  await until(() => learner.sent.some((m) => m.train_batch), 'batch 1 at the learner');
  const honest = fakeSession('ROLLOUT', 'honest');
  join(honest);
  c.handle(learner, { train_result: { batch_id: 'quar-b1', batch_seq: 1, applied: true, skipped_reason: '', version: 1, excluded_actions: [0, 1, 2, 3], flow_steps: [] } } as never);
  // quarantined at grpo.quarantineAfter 3? batch 1 holds 2 of its groups: not yet
  await until(() => log.some((l) => /the learner excluded 4 actions of rollout worker forger/.test(l)), 'the exclusion logged naming the forger');
  assert.equal(failures.length, 0, 'two results with excluded rows: below grpo.quarantineAfter 3');
  // batch 2's TrainResult excludes one more of its groups: quarantined
  await until(() => scoresOf(scorer).length >= 4, 'batch 2\'s score tasks');
  answerScores(2, 4);
  await until(() => learner.sent.filter((m) => m.train_batch).length >= 2, 'batch 2 at the learner');
  c.handle(learner, { train_result: { batch_id: 'quar-b2', batch_seq: 2, applied: true, skipped_reason: '', version: 2, excluded_actions: [0, 1], flow_steps: [] } } as never);
  await until(() => failures.length === 1, 'the forger\'s session failed');
  assert.equal(failures[0]!.code, 7);
  assert.match(failures[0]!.details, /worker forger is quarantined for the rest of the run: the learner excluded rows of 3 of its last 100 checked rollout results/);
  // batch 3's groups, the forger's and not yet trained, go to the honest worker; the forger's late score results are ignored
  await until(() => tasksOf(honest).length >= 2, `batch 3 rolled out again by the honest worker\n${log.join('\n')}`);
  assert.match(log.join('\n'), /rolling out again 2 groups of batches not yet trained whose rollout came from quarantined worker forger/);
  answerScores(4, 6); // cancelled (if they reached the scorer): ignored
  answerRollouts(honest, 0);
  await until(() => scoresOf(scorer).length >= 8, 'the honest rollouts scored');
  answerScores(6, 8);
  await until(() => learner.sent.filter((m) => m.train_batch).length >= 3, 'batch 3 at the learner');
  const b3 = learner.sent.filter((m) => m.train_batch)[2]!.train_batch!;
  const b3Samples = new Set(b3.sample_ids);
  const lastRollout = new Map(events.filter((e) => e.type === 'rollout').map((e) => [e.sample!, e.worker!]));
  for (const s of b3Samples) assert.equal(lastRollout.get(s), 'honest', `batch 3's ${s} rolled out by the honest worker`);
  c.handle(learner, { train_result: { batch_id: 'quar-b3', batch_seq: 3, applied: true, skipped_reason: '', version: 3, flow_steps: [] } } as never);
  await c.done;
  // refused on reconnect, with the reason; the honest worker is not
  const again = closable('forger');
  assert.match(c.refuseQuarantined(again) ?? '', /quarantined/);
  assert.equal(failures.at(-1)!.code, 7);
  assert.equal(c.refuseQuarantined(fakeSession('ROLLOUT', 'honest')), undefined);
  assert.deepEqual(sameIdFailures, [], 'the reward worker with the same id is not closed');
  assert.equal(c.refuseQuarantined(fakeSession('LEARNER', 'forger')), undefined, 'a learner with the id is not refused');
  assert.equal(c.refuseQuarantined(fakeSession('REWARD', 'forger')), undefined, 'a reward worker with the id is not refused');
  const text = await metrics.registry.metrics();
  assert.match(text, /recovery_grpo_rollout_rows_excluded_total\{[^}]*worker_id="forger"[^}]*\} 6/);
  assert.match(text, /recovery_grpo_workers_quarantined_total\{[^}]*\} 1/);
  c.close();
});
