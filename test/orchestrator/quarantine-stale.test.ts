// The quarantine at grpo.maxStaleness 1 (round 26: the stale-row check). Real nats-server, orchestrator, learner,
// reward worker and an honest rollout worker over gRPC on 127.0.0.1, beside a forger that answers each task at once
// with the corrupted input as every action and logp_old -1 (as test/orchestrator/quarantine.test.ts). At staleness 1
// some of a batch's rows are a version behind the learner's; before round 26 those were not checked, so a forger's
// stale rows were never excluded. Now the learner recomputes them under the version it kept: it excludes the forger's
// rows whatever their version, the orchestrator names and quarantines the forger as before (its quarantine unchanged),
// the honest worker's stale rows pass the check, and the run completes.
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
import { silentLogger, type Logger } from '../../lib/worker/index.ts';
import { connectToOrchestrator, type OrchestratorConnection } from '../../lib/transport/index.ts';
import { startNatsServer } from '../helpers/nats.ts';
import { answerRolloutTasks } from '../helpers/scripted-workers.ts';
import { events, isApplied } from '../reliability/helpers.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => undefined); });

const PERMISSION_DENIED = 7;
const STEPS = 12;
const S = 2;

/** The forger: answers each rollout task at once with the corrupted input as every action and logp -1 (in the bounds
 * the orchestrator checks, not what the policy gives them). */
const forger = (conn: OrchestratorConnection) => answerRolloutTasks(conn, -1);

test('maxStaleness 1: a forger\'s stale rows are excluded too; it is quarantined; the honest worker\'s stale rows pass', { timeout: 180_000 }, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const dir = mkdtempSync(join(tmpdir(), 'quarantine-stale-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const config = parseConfig({
    run: { id: 'quarstale', seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 64 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 },
    grpo: { steps: STEPS, groupSize: 2, samplesPerBatch: S, maxStaleness: 1, advantageMode: 'scalar', quarantineAfter: 3 },
    orchestrator: { bundleMs: 0, leaseSeconds: 30 },
  });
  const olog: string[] = [];
  const llog: string[] = [];
  const learnerLog: Logger = { info() {}, warn: (m) => llog.push(m), error: (m) => llog.push(m) };
  const orch = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, eventsFile: join(dir, 'events.jsonl'), log: (l) => olog.push(l) });
  cleanups.push(() => orch.stop());
  const address = `127.0.0.1:${orch.port}`;
  const common = { orchestrator: address, nats: nats.url, metricsPort: 0, logger: silentLogger, handleSignals: false } as const;
  const learner = await runLearner({ ...common, logger: learnerLog, workerId: 'l' });
  cleanups.push(() => learner.stop({ graceMs: 1000 }));
  const reward = await runRewardWorker({ ...common, workerId: 's' });
  cleanups.push(() => reward.stop({ graceMs: 1000 }));
  const honest = await runRolloutWorker({ ...common, workerId: 'honest' });
  cleanups.push(() => honest.stop({ graceMs: 1000 }));
  const bad = await connectToOrchestrator({ address, role: 'ROLLOUT', workerId: 'forger', capabilities: { device: 'cpu', max_batch: 8, max_in_flight: 1 } });
  cleanups.push(() => bad.close());
  const answered = forger(bad);

  await orch.done;
  const why = () => `orchestrator:\n${olog.join('\n')}\nlearner:\n${llog.join('\n')}`;
  const metrics = await (await fetch(`${learner.metricsUrl}/metrics`)).text();
  // stale rows existed and were checked; every exclusion was the forger's
  const checked = /recovery_grpo_logp_stale_rows_total\{[^}]*outcome="checked"[^}]*\} (\d+)/.exec(metrics);
  assert.ok(checked && Number(checked[1]) > 0, `no stale row was checked\n${metrics}\n${why()}`);
  assert.ok(!olog.some((l) => /of rollout worker honest/.test(l)), why());
  // some of the forger's excluded rows were behind the learner's version (before round 26: never excluded)
  assert.ok(llog.some((l) => /excluded \d+ of \d+ rows whose logp_old disagrees .*; [1-9]\d* of them behind the learner's version/.test(l)), why());
  // quarantined as at maxStaleness 0
  const end = await Promise.race([bad.closed, new Promise<null>((r) => setTimeout(() => r(null), 30_000).unref())]);
  assert.ok(end, `the forger's session is still open after the run\n${why()}`);
  assert.equal(end.code, PERMISSION_DENIED, why());
  assert.ok((await answered) >= 3);
  assert.equal(olog.filter((l) => /^quarantined rollout worker forger: /.test(l)).length, 1, why());
  // the run completed: every batch applied once, in order
  const applied = events(dir).filter(isApplied);
  assert.deepEqual(applied.map((e) => e.seq), Array.from({ length: STEPS }, (_, i) => i + 1));
});

test('maxStaleness 1, both families: an honest rollout worker\'s stale rows are checked and never excluded', { timeout: 240_000 }, async () => {
  for (const family of ['gaussian', 'flow'] as const) {
    const nats = await startNatsServer();
    cleanups.push(() => nats.stop());
    const dir = mkdtempSync(join(tmpdir(), 'stale-honest-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const config = parseConfig({
      run: { id: `stale-${family}`, seed: 2 }, data: { size: 16, source: { kind: 'procedural', count: 64 } },
      model: { family, width: 4, depth: 1 },
      ...(family === 'flow' ? { flow: { steps: 4, evalSteps: 3, shift: 1, timeFrequencies: 2, timeWidth: 4, sde: { window: { size: 2, start: 'random' } } } } : {}),
      sft: { steps: 0 },
      grpo: { steps: 8, groupSize: 2, samplesPerBatch: S, maxStaleness: 1, advantageMode: 'dense' },
      orchestrator: { bundleMs: 0, leaseSeconds: 30 },
    });
    const orch = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, eventsFile: join(dir, 'events.jsonl'), log: () => {} });
    cleanups.push(() => orch.stop());
    const common = { orchestrator: `127.0.0.1:${orch.port}`, nats: nats.url, metricsPort: 0, logger: silentLogger, handleSignals: false } as const;
    const learner = await runLearner({ ...common, workerId: 'l' });
    cleanups.push(() => learner.stop({ graceMs: 1000 }));
    const reward = await runRewardWorker({ ...common, workerId: 's' });
    cleanups.push(() => reward.stop({ graceMs: 1000 }));
    // two rollout workers, so that a batch's groups come back while the learner trains the one before
    for (const id of ['r1', 'r2']) {
      const w = await runRolloutWorker({ ...common, workerId: id });
      cleanups.push(() => w.stop({ graceMs: 1000 }));
    }
    await orch.done;
    const metrics = await (await fetch(`${learner.metricsUrl}/metrics`)).text();
    const checked = /recovery_grpo_logp_stale_rows_total\{[^}]*outcome="checked"[^}]*\} (\d+)/.exec(metrics);
    assert.ok(checked && Number(checked[1]) > 0, `${family}: no stale row was checked\n${metrics}`);
    assert.doesNotMatch(metrics, /recovery_grpo_logp_rows_excluded_total\{[^}]*\} [1-9]/, `${family}: honest rows excluded`);
    assert.equal(events(dir).filter(isApplied).length, 8);
  }
});
