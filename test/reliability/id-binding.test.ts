// Worker ids and credentials (round 29; docs/security.md, "A worker id belongs to the first role token that used it").
// A worker chooses its own id unless its credential names one, so before round 29 one role token granting any id
// (`*`) could present several ids: claim an honest worker's id while it was disconnected (its tasks, its quarantine),
// or play both voters of the non-retryable quorum. Now: a wildcard token may not use an id another line of the file
// pins; a worker id is bound for the run to the first wildcard token that used it (stored in the run state, kept across
// a restart, lapsed when that token leaves the file); and the quorum counts a token once whatever ids it presents.
// Real orchestrator processes, gRPC on 127.0.0.1, real nats-server; the workers are gRPC clients with their tokens.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { parseConfig, type RunConfig } from '../../lib/config/index.ts';
import { connectNats, connectToOrchestrator, parseRoleTokens, RunStateStore, tokenCredentialId, type OrchestratorConnection, type RolloutTask__Output, type WorkerRole } from '../../lib/transport/index.ts';
import { parseUnbind, runOrchestrator, type RunningOrchestrator } from '../../orchestrator/main.ts';
import { startNatsServer } from '../helpers/nats.ts';
import { until } from '../helpers/scripted-workers.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => undefined); });

const LEARNER = 'learner-token-0123456789abcdef';
/** Two fleets' wildcard rollout tokens, and one token pinned to worker id w1. */
const FLEET_A = 'rollout-fleet-a-0123456789abcdef';
const FLEET_B = 'rollout-fleet-b-0123456789abcdef';
const PINNED = 'rollout-w1-token-0123456789abcdef';
const file = (...lines: string[]) => parseRoleTokens(lines.join('\n'), 'test role-token file');
const ALL = file(`learner * ${LEARNER}`, `rollout * ${FLEET_A}`, `rollout * ${FLEET_B}`, `rollout w1 ${PINNED}`);

const sftConfig = (id: string) => parseConfig({ run: { id, seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 }, sft: { steps: 2, batchSize: 2 }, grpo: { steps: 0 } });

/** The shared token, given beside the file in a migration: it grants every role and any id. */
const SHARED = 'shared-token-0123456789abcdef';

async function start(nats: string, config: RunConfig, grants: ReturnType<typeof file>, log: string[], shared?: string, unbind?: string[]): Promise<RunningOrchestrator> {
  const o = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats, metricsPort: 0, auth: { roleTokens: grants, ...(shared ? { token: shared } : {}) }, log: (l) => log.push(l), ...(unbind ? { unbind } : {}) });
  cleanups.push(() => o.stop());
  return o;
}

const connect = (o: RunningOrchestrator, role: WorkerRole, workerId: string, token: string): Promise<OrchestratorConnection> =>
  connectToOrchestrator({ address: o.address, role, workerId, token, capabilities: { device: 'cpu', max_batch: 8, max_in_flight: 1 }, connectTimeoutMs: 5000 });

const bound = (id: string) => new RegExp(`PERMISSION_DENIED.*worker id "${id}" \\(role ROLLOUT\\) is bound for this run to the role token that first used it, not this one`);

/** The learner (its token) acknowledges batch 1 (applied, version 1), so the run state is written; closed after. */
async function acknowledgeBatchOne(o: RunningOrchestrator, log: string[]): Promise<void> {
  const conn = await connect(o, 'LEARNER', 'l', LEARNER);
  const got: Array<{ batch_id: string; batch_seq: number }> = [];
  void (async () => {
    try {
      for await (const m of conn.messages) if (m.train_batch) got.push(m.train_batch);
    } catch {
      // closed
    }
  })();
  await until(() => got.some((b) => b.batch_seq === 1), 'batch 1 at the learner', log);
  const b1 = got.find((b) => b.batch_seq === 1)!;
  await conn.send({ train_result: { batch_id: b1.batch_id, batch_seq: 1, applied: true, skipped_reason: '', version: 1 } });
  await until(() => o.coordinator.state.ackedSeq === 1, 'batch 1 acknowledged', log);
  await conn.close();
}

test('only a token whose line pins a worker id may use it: not a wildcard role token, not the shared token beside the file', { timeout: 60_000 }, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const o = await start(nats.url, sftConfig('id-pinned'), ALL, [], SHARED);
  await assert.rejects(connect(o, 'ROLLOUT', 'w1', FLEET_A), /PERMISSION_DENIED.*worker id "w1" is granted to another token \(a line of the role-token file names it for role ROLLOUT\)/);
  // the shared token given beside the file neither (review29 F2: until then it was accepted as w1, while an id bound
  // to a wildcard token was refused to it)
  await assert.rejects(connect(o, 'ROLLOUT', 'w1', SHARED), /PERMISSION_DENIED.*worker id "w1" is granted to another token \(a line of the role-token file names it for role ROLLOUT\); the shared token does not name it/);
  (await connect(o, 'ROLLOUT', 'w1', PINNED)).close();
  // the pinned id is the pinned token's also after it connected; another id is the wildcard's, or the shared token's
  await assert.rejects(connect(o, 'ROLLOUT', 'w1', FLEET_B), /PERMISSION_DENIED.*granted to another token/);
  await assert.rejects(connect(o, 'ROLLOUT', 'w1', SHARED), /PERMISSION_DENIED.*granted to another token/);
  (await connect(o, 'ROLLOUT', 'w2', FLEET_A)).close();
  (await connect(o, 'ROLLOUT', 'w3', SHARED)).close();
  await o.stop();
});

test('a worker id is bound to the first wildcard token that used it, across a restart, until that token leaves the file', { timeout: 120_000 }, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const config = sftConfig('id-binding');
  const logA: string[] = [];
  const a = await start(nats.url, config, ALL, logA, SHARED);
  // fleet A's worker x connects and leaves; fleet B's token claiming x meanwhile is refused, naming the id
  await (await connect(a, 'ROLLOUT', 'x', FLEET_A)).close();
  await assert.rejects(connect(a, 'ROLLOUT', 'x', FLEET_B), bound('x'));
  assert.ok(logA.some((l) => /^refused rollout x: worker id "x" \(role ROLLOUT\) is bound/.test(l)), logA.join('\n'));
  // x comes back with its own token; fleet B's workers use their own ids
  await (await connect(a, 'ROLLOUT', 'x', FLEET_A)).close();
  await (await connect(a, 'ROLLOUT', 'y', FLEET_B)).close();
  await assert.rejects(connect(a, 'ROLLOUT', 'y', FLEET_A), bound('y'));
  // the shared token beside the file may not take a bound id either; an unbound one it uses, and leaves unbound
  await assert.rejects(connect(a, 'ROLLOUT', 'x', SHARED), /PERMISSION_DENIED.*worker id "x" \(role ROLLOUT\) is bound for this run to the role token that first used it, not this credential/);
  await (await connect(a, 'ROLLOUT', 'z', SHARED)).close();
  // stored with the next acknowledgement: the tokens' digests, never the tokens
  await acknowledgeBatchOne(a, logA);
  await a.stop();
  const nc = await connectNats({ url: nats.url, name: 'id-binding-test' });
  cleanups.push(() => nc.close());
  const store = await RunStateStore.open(nc, { runId: config.run.id, schema: z.object({ ackedSeq: z.number(), boundIds: z.record(z.string(), z.string()).optional() }) });
  const stored = (await store.get())?.value;
  assert.deepEqual(stored, { ackedSeq: 1, boundIds: { 'learner/l': tokenCredentialId(LEARNER), 'rollout/x': tokenCredentialId(FLEET_A), 'rollout/y': tokenCredentialId(FLEET_B) } });
  assert.ok(!JSON.stringify(stored).includes(FLEET_A.slice(0, 12)));

  // a restarted orchestrator keeps the bindings
  const logB: string[] = [];
  const b = await start(nats.url, config, ALL, logB);
  assert.ok(logB.some((l) => /^3 worker id\(s\) stay bound to the role token that first used them \(run state\)$/.test(l)), logB.join('\n'));
  await assert.rejects(connect(b, 'ROLLOUT', 'x', FLEET_B), bound('x'));
  await (await connect(b, 'ROLLOUT', 'x', FLEET_A)).close();
  await b.stop();

  // fleet A's token rotated out of the file: its bindings lapse, x may be used by another token
  const logC: string[] = [];
  const c = await start(nats.url, config, file(`learner * ${LEARNER}`, `rollout * ${FLEET_B}`), logC);
  assert.ok(logC.some((l) => /^1 worker id binding\(s\) lapsed: their role token is no longer in the role-token file: "rollout\/x"$/.test(l)), logC.join('\n'));
  await (await connect(c, 'ROLLOUT', 'x', FLEET_B)).close();
  await c.stop();
});

test('a wildcard token rotated with an overlap refuses a worker keeping its id; --unbind frees the id', { timeout: 120_000 }, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const config = sftConfig('id-unbind');
  const OVERLAP = file(`learner * ${LEARNER}`, `rollout * ${FLEET_A}`, `rollout * ${FLEET_B}`);
  const logA: string[] = [];
  const a = await start(nats.url, config, OVERLAP, logA);
  await (await connect(a, 'ROLLOUT', 'x', FLEET_A)).close();
  // the worker moved to the new token (B) while the old line (A) is still in the file: refused (docs/security.md)
  await assert.rejects(connect(a, 'ROLLOUT', 'x', FLEET_B), /not this one: connect with that token or under another worker id \(or restart the orchestrator with --unbind rollout\/x: docs\/security\.md\)/);
  await acknowledgeBatchOne(a, logA);
  await a.stop();
  // restarted with --unbind rollout/x (any case of the role): the id is free, the first wildcard token using it binds it
  const logB: string[] = [];
  const b = await start(nats.url, config, OVERLAP, logB, undefined, ['ROLLOUT/x', 'rollout/nobody'].map(parseUnbind));
  assert.ok(logB.includes('worker id rollout/x unbound (--unbind): the next role token granting any id that uses it binds it'), logB.join('\n'));
  assert.ok(logB.includes('--unbind rollout/nobody: no such worker id is bound in run state'), logB.join('\n'));
  await (await connect(b, 'ROLLOUT', 'x', FLEET_B)).close();
  await assert.rejects(connect(b, 'ROLLOUT', 'x', FLEET_A), bound('x'));
  await b.stop();
  // a malformed value is refused naming it, before anything starts
  for (const bad of ['x', 'orchestrator/x', 'rollout/a b', 'rollout/']) {
    assert.throws(() => parseUnbind(bad), new RegExp(`--unbind ${JSON.stringify(bad).replace(/[/.]/g, '\\$&')}: expected <role>/<worker-id>`));
  }
  await assert.rejects(runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, auth: { roleTokens: OVERLAP }, unbind: ['x'] }), /--unbind "x": expected <role>\/<worker-id>/);
});

test('the non-retryable quorum counts a role token once, whatever worker ids it presents', { timeout: 60_000 }, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const config = parseConfig({
    run: { id: 'id-quorum', seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: 1, groupSize: 2, samplesPerBatch: 1, maxStaleness: 0, advantageMode: 'scalar' }, orchestrator: { bundleMs: 0 },
  });
  const log: string[] = [];
  const o = await start(nats.url, config, ALL, log);
  /** A rollout worker that answers its first task non-retryable, and leaves once the orchestrator handled it. */
  const refuser = async (workerId: string, token: string): Promise<void> => {
    const conn = await connect(o, 'ROLLOUT', workerId, token);
    cleanups.push(() => conn.close());
    for await (const m of conn.messages) {
      const t = (m.rollout_task ?? m.task_bundle?.rollout_tasks?.[0]) as RolloutTask__Output | undefined;
      if (!t) continue;
      await conn.send({ task_error: { task_id: t.task_id, attempt: t.attempt, code: 'bad_input', message: 'no', retryable: false } });
      await until(() => log.some((l) => new RegExp(`task ${t.task_id}: worker "?${workerId}"? reports a non-retryable error|giving up task ${t.task_id}`).test(l)), `${workerId}'s error handled`, log);
      await conn.close();
      return;
    }
    throw new Error(`${workerId}: the stream ended without a task`);
  };
  // fleet A's token under two worker ids: one voter, so the task is retried (before round 29: given up here). (Each
  // refuser leaves once its error is handled; a retry handed back to it meanwhile is a failed attempt too, so the
  // attempt numbers are not fixed.)
  await refuser('a1', FLEET_A);
  await refuser('a2', FLEET_A);
  assert.ok(!log.some((l) => /giving up task/.test(l)), log.join('\n'));
  assert.ok(log.some((l) => /worker "?a2"? reports a non-retryable error \(bad_input: "no"\) at attempt [2-4]; retried/.test(l)), log.join('\n'));
  // another token: the second voter, given up
  await refuser('b1', FLEET_B);
  assert.ok(log.some((l) => /giving up task .* after [3-5] attempts: bad_input: "no" \(non-retryable for 2 workers\)/.test(l)), log.join('\n'));
  await o.stop();
});

test('a failed attempt\'s retry goes to another role token\'s worker, not to another id of the token that failed it', { timeout: 60_000 }, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const config = parseConfig({
    run: { id: 'id-retry', seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 },
    sft: { steps: 0 }, grpo: { steps: 1, groupSize: 2, samplesPerBatch: 1, maxStaleness: 0, advantageMode: 'scalar' }, orchestrator: { bundleMs: 0 },
  });
  const log: string[] = [];
  const o = await start(nats.url, config, ALL, log);
  /** A rollout worker recording the tasks it gets. */
  const worker = async (workerId: string, token: string) => {
    const conn = await connect(o, 'ROLLOUT', workerId, token);
    cleanups.push(() => conn.close());
    const tasks: RolloutTask__Output[] = [];
    void (async () => {
      try {
        for await (const m of conn.messages) tasks.push(...((m.rollout_task ? [m.rollout_task] : m.task_bundle?.rollout_tasks ?? []) as RolloutTask__Output[]));
      } catch {
        // closed
      }
    })();
    return { conn, tasks };
  };
  const a1 = await worker('a1', FLEET_A);
  await until(() => a1.tasks.length === 1, 'the task at a1', log);
  // fleet A's second id connects before fleet B's worker: the least-loaded pick would be either
  const a2 = await worker('a2', FLEET_A);
  const b1 = await worker('b1', FLEET_B);
  const t = a1.tasks[0]!;
  await a1.conn.send({ task_error: { task_id: t.task_id, attempt: t.attempt, code: 'internal', message: 'try elsewhere', retryable: true } });
  await until(() => b1.tasks.length === 1, 'the retry at b1 (fleet B)', log);
  assert.equal(b1.tasks[0]!.attempt, 2);
  assert.equal(a2.tasks.length, 0, 'the retry went to fleet A\'s other id');
  await o.stop();
});
