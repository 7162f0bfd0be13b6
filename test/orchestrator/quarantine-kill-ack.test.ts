// An orchestrator killed (SIGKILL) between a batch's TrainResult and its acknowledgement: the restarted one counts the
// batch's excluded results in the quarantine windows (round 32, trust32; docs/security.md). Until round 32 the
// acknowledgement carried the counts (round 29), and a kill in that gap lost them: the batch is trained, the restarted
// orchestrator acknowledges it from the learner's Hello (or a 'duplicate'), which reports no checks (review29 F5), so a
// forger whose forged batch landed there escaped a count. Now the learner keeps a report of each batch whose rows it
// excluded (lib/grpo/exclusion-reports.ts: per rollout worker, as TrainBatch.rollout_workers named them), and the
// orchestrator that acknowledges such a batch without its TrainResult counts the report.
//
// Real nats-server, learner and reward worker; a scripted forger (logp_old -1 on every action, which the learner's
// same-version check excludes). The first orchestrator is a child process (`recovery-grpo orchestrator`) started with
// the test-only fault point RECOVERY_GRPO_TEST_HOLD_ACK=1: it counts batch 1's TrainResult (both of the forger's
// results excluded: quarantined at 2, in memory), logs that it holds the acknowledgement, and never writes it; the test
// kills it there, so the kill lands in the gap without a race. The second orchestrator (in this process, on the same
// address) finds the run state at batch 0; the learner reconnects saying it holds batch 1, and the catch-up that
// acknowledges it must count the forger's two excluded results from the learner's report and quarantine it. On round
// 31's code the forger was neither counted nor quarantined.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { z } from 'zod';
import { parseConfig } from '../../lib/config/index.ts';
import { HOLD_ACK_ENV, runOrchestrator } from '../../orchestrator/main.ts';
import { runLearner } from '../../learner/index.ts';
import { runRewardWorker } from '../../reward-worker/index.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { connectNats, connectToOrchestrator, RunStateStore, TransportError } from '../../lib/transport/index.ts';
import { freePort, startNatsServer } from '../helpers/nats.ts';
import { scrapeMetric } from '../helpers/metrics.ts';
import { BIN } from '../helpers/cli.ts';
import { capabilities, scriptedRollout } from '../helpers/scripted-workers.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => undefined); });

const PERMISSION_DENIED = 7;

/**
 * Waits (in 20 ms steps, up to 90 s: a process start and the learner's first step on a loaded 2-core machine) until
 * `probe()` holds; throws naming `what` with the log's tail.
 */
async function waitUntil(probe: () => boolean, what: string, log: string[]): Promise<void> {
  const t0 = Date.now();
  while (!probe()) {
    if (Date.now() - t0 > 90_000) throw new Error(`timed out waiting for ${what}\n${log.slice(-30).join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('an orchestrator killed between a TrainResult and its acknowledgement: the restarted one counts the batch\'s excluded results from the learner\'s kept report', { timeout: 300_000 }, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const dir = mkdtempSync(join(tmpdir(), 'quarantine-kill-ack-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const raw = {
    run: { id: 'quarantine-kill-ack', seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    // one batch: with its acknowledgement held the first orchestrator would open and send the next (admission counts an
    // acknowledgement being written), and whether the learner trained that too before the kill would be a race
    sft: { steps: 0 }, grpo: { steps: 1, groupSize: 2, samplesPerBatch: 2, maxStaleness: 0, advantageMode: 'scalar', quarantineAfter: 2, quarantineWindow: 10 },
    orchestrator: { bundleMs: 0, leaseSeconds: 30 },
  };
  const config = parseConfig(raw);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(raw));
  const address = `127.0.0.1:${await freePort()}`;

  // the first orchestrator, a child process that holds batch 1's acknowledgement
  const outA: string[] = [];
  const a = spawn(process.execPath, [BIN, 'orchestrator', '--config', join(dir, 'config.json'), '--nats', nats.url, '--listen', address, '--metrics-port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RECOVERY_GRPO_LOG_FORMAT: 'text', [HOLD_ACK_ENV]: '1' },
  });
  for (const s of [a.stdout, a.stderr]) s.on('data', (d: Buffer) => outA.push(...d.toString().split('\n')));
  const exitedA = new Promise<NodeJS.Signals | null>((r) => a.once('exit', (_code, signal) => r(signal)));
  cleanups.push(async () => { if (a.exitCode === null && a.signalCode === null) { a.kill('SIGKILL'); await exitedA; } });
  await waitUntil(() => outA.some((l) => /listening on/.test(l)), 'the first orchestrator listening', outA);

  // the workers: a reconnect backoff of at most 500 ms, so the learner finds the second orchestrator soon
  const common = { orchestrator: address, nats: nats.url, metricsPort: 0, logger: silentLogger, handleSignals: false, reconnect: { initialDelayMs: 100, maxDelayMs: 500 } } as const;
  const learner = await runLearner({ ...common, workerId: 'l' });
  cleanups.push(() => learner.stop({ graceMs: 1000 }));
  const reward = await runRewardWorker({ ...common, workerId: 's' });
  cleanups.push(() => reward.stop({ graceMs: 1000 }));
  const forger = await scriptedRollout(address, 'forger', -1);
  cleanups.push(() => forger.close());

  // batch 1's TrainResult arrived and was counted (the forger quarantined in memory); its acknowledgement is held
  await waitUntil(() => outA.some((l) => l.includes(`${HOLD_ACK_ENV}: holding the acknowledgement of batch 1 before writing it`)), 'batch 1\'s acknowledgement held', outA);
  assert.ok(outA.some((l) => /quarantined rollout worker forger: .*excluded rows of 2 of its last 10 checked rollout results/.test(l)), outA.join('\n'));
  // the fault point said at start that it is set (review32 F7)
  assert.ok(outA.some((l) => l.includes(`WARNING: ${HOLD_ACK_ENV} is set ("1"), a fault point for tests only: the acknowledgement of batch 1 is never written`)), outA.join('\n'));
  a.kill('SIGKILL');
  assert.equal(await exitedA, 'SIGKILL');

  // nothing of it was stored: the run state is at batch 0, no quarantine
  const nc = await connectNats({ url: nats.url, name: 'quarantine-kill-ack-test' });
  cleanups.push(() => nc.close());
  const store = await RunStateStore.open(nc, { runId: config.run.id, schema: z.object({ ackedSeq: z.number(), learnerVersion: z.number(), quarantined: z.array(z.string()).optional(), quarantineWindows: z.record(z.string(), z.array(z.number())).optional() }) });
  assert.deepEqual((await store.get())?.value, { ackedSeq: 0, learnerVersion: 0 });

  // the second orchestrator: the learner's Hello says it holds batch 1, which the catch-up acknowledges, counting the
  // learner's report of it: the forger's 2 excluded results of its last 10, quarantined
  const logB: string[] = [];
  const b = await runOrchestrator({ config, listen: address, natsUrl: nats.url, metricsPort: 0, log: (l) => logB.push(l) });
  cleanups.push(() => b.stop());
  await waitUntil(() => b.coordinator.state.ackedSeq >= 1, 'batch 1 acknowledged by the second orchestrator', logB);
  const why = logB.join('\n');
  assert.ok(logB.some((l) => /^learner says it holds batch 1, newer than the stored 0/.test(l)), why);
  assert.ok(logB.some((l) => /^GRPO batch 1 \(acknowledged without its TrainResult at hand; the learner's kept report of it\): the learner excluded rows of 2 of 2 checked rollout results of rollout worker forger; 2 of its last 10/.test(l)), why);
  assert.ok(logB.some((l) => /^quarantined rollout worker forger: .*excluded rows of 2 of its last 10 checked rollout results/.test(l)), why);
  assert.deepEqual(b.coordinator.state.quarantined, ['forger'], why);
  // and (round 33) its excluded actions from the report's `actions`, as the first process counted them from the
  // TrainResult: the forger's 2 groups of 2; no report was missing
  assert.equal(await scrapeMetric(b.metricsUrl, 'rollout_rows_excluded_total', { worker_id: 'forger' }), 4, why);
  assert.equal(await scrapeMetric(b.metricsUrl, 'quarantine_reports_missing_total'), 0, why);
  // stored with batch 1's acknowledgement (a quarantined id's window is not stored), and the forger refused
  assert.deepEqual((await store.get())?.value, { ackedSeq: 1, learnerVersion: 1, quarantined: ['forger'] });
  await assert.rejects(connectToOrchestrator({ address, role: 'ROLLOUT', workerId: 'forger', capabilities }),
    (e: unknown) => e instanceof TransportError && e.code === PERMISSION_DENIED && /worker forger is quarantined for the rest of the run/.test(e.details));
});
