// A run state lost across a whole run (round 34, trust34; round 33 built the take-back: state-recovery.ts). The unit
// tests beside this one (quarantine-state-lost.test.ts) write the learner's checkpoint and play the learner; here the
// chain runs for real: a real learner and reward worker (in this process), a real rollout worker bound to its role
// token, a scripted forger (logp_old -1 on every action, which the learner's same-version check excludes), and a first
// orchestrator that is a child process (`recovery-grpo orchestrator`) killed with SIGKILL. The forger is quarantined at
// batch 1; the learner records the quarantine and the bindings from the batches it trains in its checkpoints'
// announcement meta (worker_ids). The orchestrator is killed, then nats-server, whose store directory is removed (the
// store lost, run state included); nats-server comes back empty on the same port and the learner puts its newest
// checkpoint back. A second orchestrator (in this process, on the first one's address) finds no run state: it says so
// (WARNING, run_state_lost_total), takes the quarantine and the bindings back, refuses the forger and the bound id under
// another token, and the run finishes with every batch applied exactly once.
//
// The first orchestrator holds batch 3's acknowledgement (RECOVERY_GRPO_TEST_HOLD_ACK, docs/testing.md): it never
// stores it, and the run cannot end before the kill. Admission counts an acknowledgement being written, so it opens and
// sends batch 4 during that write (and batch 5 early, once batch 4 is at the learner): where the kill lands decides
// what the learner holds. Round 34 killed it on the hold's log line and accepted batch 3 or 4 (only 3 ever ran). Since
// round 35 the test kills it when the learner announces the checkpoint of the batch the case wants it to hold (a
// NATS subscription of this process, whose callback sends SIGKILL at once): a later batch needs that checkpoint's
// rollouts, scores and a TrainBatch from the orchestrator (round trips through this process's own workers) before the
// learner could train it, so the learner holds exactly that batch:
// - batch 3: killed before the learner got batch 4 (the orchestrator had batch 3's TrainResult coming, or held its
//   acknowledgement); the second orchestrator sends batches 4-6.
// - batch 4: killed holding batch 3's acknowledgement after the learner applied batch 4, sent during the held write;
//   the second orchestrator catches up to batch 4 without having sent it, and sends batches 5-6.
// Batch 3 and later were sent after the quarantine and the bindings (batch 2 may go out in the turn that takes batch
// 1's TrainResult: quarantine-state-lost.test.ts), so both records hold them.
//
// Two faults in a row (round 35, the third case): after the first loss (the learner holding batch 3) a second
// orchestrator process takes the state back, sends batches 4 and 5 carrying the record it took back, and is killed when
// the learner announces v5; the store is lost again, and the third orchestrator takes the record back from v5.
import { test, type TestContext } from 'node:test';
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
import { runRolloutWorker } from '../../rollout-worker/index.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import {
  CheckpointStore, connectNats, connectToOrchestrator, parseRoleTokens, RunStateStore, spawnNatsServer, tokenCredentialId, TransportError,
  type Announcement, type NatsServerProcess,
} from '../../lib/transport/index.ts';
import { announcementSubject } from '../../lib/transport/run-names.ts';
import { freePort, storedAnnouncements } from '../helpers/nats.ts';
import { scrapeMetric, sumMetric } from '../helpers/metrics.ts';
import { waitFor } from '../helpers/wait.ts';
import { BIN } from '../helpers/cli.ts';
import { answerRolloutTasks, capabilities } from '../helpers/scripted-workers.ts';

const PERMISSION_DENIED = 7;
/** Bounds of the waits: a process start and the learner's first step on a loaded 2-core machine (docs/testing.md). */
const WAIT_MS = 90_000;
const LEARNER = 'learner-token-0123456789abcdef';
const REWARD = 'reward-token-0123456789abcdef';
/** Two fleets' wildcard rollout tokens: a worker id is bound to the first that used it (orchestrator/id-bindings.ts). */
const FLEET_A = 'rollout-fleet-a-0123456789abcdef';
const FLEET_B = 'rollout-fleet-b-0123456789abcdef';
const TOKENS = [`learner l ${LEARNER}`, `reward s ${REWARD}`, `rollout * ${FLEET_A}`, `rollout * ${FLEET_B}`].join('\n');
const STEPS = 6;
/** The batch whose acknowledgement the first orchestrator holds. */
const HELD_ACK = 3;

const refusal = (re: RegExp) => (e: unknown) => e instanceof TransportError && e.code === PERMISSION_DENIED && re.test(e.details);

/** Every announcement in the checkpoint stream of the server at `url`, in stream order. */
async function announcements(url: string, runId: string): Promise<Announcement[]> {
  const nc = await connectNats({ url, name: 'state-lost-chain-audit' });
  try {
    return await storedAnnouncements(nc, await CheckpointStore.open(nc, { runId, readOnly: true }));
  } finally {
    await nc.close();
  }
}

/**
 * The chain, the first orchestrator killed when the learner announces checkpoint v`held` (see the header): the learner
 * then holds batch `held`, and every outcome below names it exactly. With `again`, a second orchestrator process takes
 * the state back, is killed when v`again` is announced, and the store is lost again before the last orchestrator.
 */
async function lostWhileHolding(t: TestContext, held: number, again?: number): Promise<void> {
  const cleanups: Array<() => Promise<unknown>> = [];
  t.after(async () => { for (const c of cleanups.reverse()) await c().catch(() => undefined); });
  const dir = mkdtempSync(join(tmpdir(), 'state-lost-chain-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const storeDir = join(dir, 'nats');
  const natsPort = await freePort();
  let nats: NatsServerProcess = await spawnNatsServer({ port: natsPort, storeDir });
  cleanups.push(() => nats.stop());
  const raw = {
    run: { id: 'state-lost-chain', seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: STEPS, groupSize: 2, samplesPerBatch: 2, maxStaleness: 0, advantageMode: 'scalar', quarantineAfter: 1 },
    orchestrator: { bundleMs: 0, leaseSeconds: 30 },
  };
  const config = parseConfig(raw);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(raw));
  writeFileSync(join(dir, 'role-tokens'), TOKENS);
  const address = `127.0.0.1:${await freePort()}`;

  /**
   * An orchestrator child process on `address`, killed (SIGKILL) in the callback of the learner's announcement of
   * checkpoint v`killAt` (a subscription of this process), before this process's workers can take another turn toward a
   * later batch.
   */
  const killedAtVersion = async (name: string, killAt: number, env: Record<string, string>) => {
    const watcher = await connectNats({ url: nats.url, name: `state-lost-chain-kill-${name}` });
    cleanups.push(() => watcher.close());
    const out: string[] = [];
    const child = spawn(process.execPath, [BIN, 'orchestrator', '--config', join(dir, 'config.json'), '--nats', nats.url, '--listen', address, '--metrics-port', '0', '--role-tokens-file', join(dir, 'role-tokens')], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RECOVERY_GRPO_LOG_FORMAT: 'text', ...env },
    });
    for (const stream of [child.stdout, child.stderr]) stream.on('data', (d: Buffer) => out.push(...d.toString().split('\n')));
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
    cleanups.push(async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited; } });
    let killed = false;
    watcher.subscribe(announcementSubject(config.run.id), {
      callback: (err, m) => {
        if (err || killed) return;
        let version: unknown;
        try {
          version = (JSON.parse(new TextDecoder().decode(m.data)) as { version?: unknown }).version;
        } catch {
          return;
        }
        if (version !== killAt) return;
        killed = true;
        child.kill('SIGKILL');
      },
    });
    await waitFor(() => out.some((l) => /listening on/.test(l)) || killed, `orchestrator ${name} listening`, out, WAIT_MS);
    /** Resolves once it was killed there; then the watcher is closed (its server is about to be stopped). */
    const killedThere = async () => {
      await waitFor(() => killed, `the learner's checkpoint v${killAt} announced (orchestrator ${name} killed)`, out, WAIT_MS);
      assert.equal(await exited, 'SIGKILL');
      await watcher.close();
    };
    return { out, killedThere };
  };

  const learnerLog: string[] = [];
  /** The learner holds exactly batch `seq`, published, and trains nothing while no orchestrator runs. */
  const learnerHolds = async (seq: number) => {
    const got = await waitFor(() => {
      const st = learner.state();
      return st && st.latest?.version === st.version ? st : undefined;
    }, 'the learner\'s newest checkpoint published', learnerLog, WAIT_MS);
    assert.deepEqual({ version: got.version, lastBatchSeq: got.lastBatchSeq }, { version: seq, lastBatchSeq: seq }, learnerLog.join('\n'));
  };
  /**
   * The store lost while no orchestrator runs: nats-server killed, its store directory removed, started again empty on
   * the same port; the learner puts its newest checkpoint (v`seq`) back.
   */
  const loseStore = async (seq: number) => {
    await nats.stop({ killAfterMs: 0 });
    rmSync(storeDir, { recursive: true, force: true });
    nats = await spawnNatsServer({ port: natsPort, storeDir });
    const putBack = await waitFor(async () => {
      const nc = await connectNats({ url: nats.url, name: 'state-lost-chain-probe' }).catch(() => null);
      if (!nc) return undefined;
      try {
        // (v0, the KL reference, may be put back first)
        const latest = await (await CheckpointStore.open(nc, { runId: config.run.id, readOnly: true })).latest();
        return latest && latest.version > 0 ? latest : undefined;
      } catch {
        return undefined; // the stream is not there yet
      } finally {
        await nc.close();
      }
    }, 'the learner\'s newest checkpoint put back in the empty store', learnerLog, WAIT_MS);
    assert.equal(putBack.version, seq);
    assert.equal(learner.state()?.version, seq, 'the learner trained nothing while no orchestrator ran');
  };
  /** The loss said once, at start, with checkpoint v`seq` and the forger's quarantine and both bindings taken back. */
  const lossSaid = (lines: readonly string[], seq: number) => {
    const said = lines.filter((l) => l.includes('WARNING: ') && l.includes('the run state was lost'));
    assert.equal(said.length, 1, lines.join('\n'));
    assert.match(said[0]!, new RegExp(`WARNING: at start, the run state is missing .* newest checkpoint v${seq} records batch ${seq}: the run state was lost .*taken back from it: 1 quarantined rollout worker id\\(s\\) \\("forger"\\) and 2 worker-id binding\\(s\\) \\("rollout/forger", "rollout/honest"\\) \\(its announcement's meta worker_ids`));
  };

  // the first orchestrator, a child process that holds batch 3's acknowledgement, killed when v`held` is announced
  const a = await killedAtVersion('a', held, { [HOLD_ACK_ENV]: String(HELD_ACK) });
  const outA = a.out;

  // a reconnect backoff of at most 500 ms, so the workers find the next orchestrator soon
  const logger = { info() {}, warn: (m: string) => void learnerLog.push(m), error: (m: string) => void learnerLog.push(m) };
  const common = { orchestrator: address, nats: nats.url, metricsPort: 0, handleSignals: false, reconnect: { initialDelayMs: 100, maxDelayMs: 500 } } as const;
  const learner = await runLearner({ ...common, logger, workerId: 'l', token: LEARNER, publishRetryMs: 200 });
  cleanups.push(() => learner.stop({ graceMs: 1000 }));
  const reward = await runRewardWorker({ ...common, logger: silentLogger, workerId: 's', token: REWARD });
  cleanups.push(() => reward.stop({ graceMs: 1000 }));

  // batch 1 rolled out by the forger alone: the learner excludes its rows, the orchestrator quarantines it (closing
  // its session); then the honest rollout worker (bound to FLEET_A at its first connection) rolls out the rest
  const forger = await connectToOrchestrator({ address, role: 'ROLLOUT', workerId: 'forger', token: FLEET_A, capabilities });
  cleanups.push(() => forger.close());
  void answerRolloutTasks(forger, -1);
  await waitFor(() => outA.some((l) => /quarantined rollout worker forger: /.test(l)), 'the forger quarantined', outA, WAIT_MS);
  assert.equal((await forger.closed).code, PERMISSION_DENIED, outA.join('\n'));
  const honest = await runRolloutWorker({ ...common, logger: silentLogger, workerId: 'honest', token: FLEET_A });
  cleanups.push(() => honest.stop({ graceMs: 1000 }));
  await a.killedThere();
  if (held > HELD_ACK) {
    // the batch after the held one went out during the held write: the hold was logged before the kill
    assert.ok(outA.some((l) => l.includes(`${HOLD_ACK_ENV}: holding the acknowledgement of batch ${HELD_ACK} before writing it`)), outA.join('\n'));
  }
  await learnerHolds(held);
  await loseStore(held);

  // two faults in a row: a second orchestrator process takes the state back from v`held` (and stores it), carries the
  // record in the batches it sends, and is killed when v`again` is announced; the store is lost a second time
  let last = held;
  if (again !== undefined) {
    const second = await killedAtVersion('b', again, {});
    await second.killedThere();
    lossSaid(second.out, held);
    await learnerHolds(again);
    await loseStore(again);
    last = again;
  }

  // the next orchestrator (in this process) finds no run state while checkpoint v`last` records batch `last`: the
  // loss, said once and counted, at start
  const logB: string[] = [];
  const b = await runOrchestrator({ config, listen: address, natsUrl: nats.url, metricsPort: 0, auth: { roleTokens: parseRoleTokens(TOKENS, 'test role-token file') }, log: (l) => logB.push(l) });
  cleanups.push(() => b.stop());
  const why = () => `${logB.join('\n')}\n--- learner:\n${learnerLog.join('\n')}`;
  lossSaid(logB, last);
  assert.equal(await scrapeMetric(b.metricsUrl, 'run_state_lost_total'), 1);
  // the forger stays refused; the honest worker's id stays bound to FLEET_A: another fleet's token may not take it
  await assert.rejects(connectToOrchestrator({ address, role: 'ROLLOUT', workerId: 'forger', token: FLEET_A, capabilities, connectTimeoutMs: WAIT_MS }),
    refusal(/worker forger is quarantined for the rest of the run/));
  await assert.rejects(connectToOrchestrator({ address, role: 'ROLLOUT', workerId: 'honest', token: FLEET_B, capabilities, connectTimeoutMs: WAIT_MS }),
    refusal(/worker id "honest" \(role ROLLOUT\) is bound for this run to the role token that first used it/));

  // the learner's Hello catches the state up to batch `last`; the honest worker (FLEET_A) reconnects; the run finishes
  await waitFor(() => b.coordinator.state.ackedSeq === STEPS, 'the run finished', logB, WAIT_MS);
  await b.done;
  assert.deepEqual(logB.filter((l) => l.startsWith('learner says it holds batch ')).map((l) => l.slice(0, l.indexOf(':'))), [`learner says it holds batch ${last}, newer than the stored 0`], why());
  assert.equal(b.coordinator.state.ackedSeq, STEPS, why());
  assert.equal(b.coordinator.state.learnerVersion, STEPS, why());
  assert.deepEqual(b.coordinator.state.quarantined, ['forger']);

  // exactly once: one learner process applied STEPS updates, version v = batch v; the new store has one checkpoint per
  // version from the one put back (v`last`) to STEPS, each with one digest: batches last+1..STEPS sent by this
  // orchestrator, none again
  const s = learner.state()!;
  assert.deepEqual({ version: s.version, step: s.step, lastBatchSeq: s.lastBatchSeq }, { version: STEPS, step: STEPS, lastBatchSeq: STEPS });
  assert.equal(sumMetric(await learner.metricsText(), 'train_steps_total', { kind: 'grpo' }), STEPS);
  const anns = (await announcements(nats.url, config.run.id)).filter((x) => x.version > 0); // v0: the KL reference put back
  const digests = new Map<number, Set<string>>();
  for (const x of anns) {
    assert.equal(Number(x.meta['last_batch_seq']), x.version, `checkpoint v${x.version} holds batch ${String(x.meta['last_batch_seq'])}`);
    (digests.get(x.version) ?? digests.set(x.version, new Set()).get(x.version)!).add(x.digest);
  }
  assert.deepEqual([...digests.keys()].sort((p, q) => p - q), Array.from({ length: STEPS - last + 1 }, (_, i) => last + i));
  for (const [v, d] of digests) assert.equal(d.size, 1, `v${v} announced with ${d.size} digests`);

  // the run state this orchestrator stored keeps the quarantine and the bindings
  const nc = await connectNats({ url: nats.url, name: 'state-lost-chain-state' });
  cleanups.push(() => nc.close());
  const stored = (await (await RunStateStore.open(nc, { runId: config.run.id, schema: z.record(z.string(), z.unknown()) })).get())?.value;
  assert.equal(stored?.['ackedSeq'], STEPS);
  assert.deepEqual(stored?.['quarantined'], ['forger']);
  assert.deepEqual(stored?.['boundIds'], { 'rollout/forger': tokenCredentialId(FLEET_A), 'rollout/honest': tokenCredentialId(FLEET_A) });
}

test('a run state lost with the NATS store while the orchestrator was down, the learner holding batch 3 (killed before it got batch 4): the forger stays refused, the binding holds, the loss is said and counted, and the run finishes exactly once', { timeout: 300_000 }, async (t) => {
  await lostWhileHolding(t, HELD_ACK);
});

test('the same, the learner holding batch 4 (killed holding batch 3\'s acknowledgement after the learner applied batch 4, sent during the held write): caught up to a batch the second orchestrator never sent', { timeout: 300_000 }, async (t) => {
  await lostWhileHolding(t, HELD_ACK + 1);
});

test('two faults in a row: the store lost again after a second orchestrator took the state back and sent batches 4 and 5 (killed when the learner announces v5): the third takes the quarantine and the bindings back from v5, and the run ends exactly once', { timeout: 300_000 }, async (t) => {
  await lostWhileHolding(t, HELD_ACK, HELD_ACK + 2);
});
