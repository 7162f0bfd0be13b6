// Grants that name the run (NatsUser.run, lib/transport/nats-permissions.ts runScope), against a real nats-server whose
// config names two runs, each with its own four users: a learner's credential creates, purges and writes only its own
// run's streams (and the learner state), changes none (round 25), never a stream of another name (one capturing every JetStream answer,
// `_R_.>`, or republishing into the announcement subject) nor another run's; an orchestrator's creates only its run's
// state bucket; and each still does everything its role does.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiscardPolicy, type NatsConnection } from 'nats';
import { z } from 'zod';
import { freePort, PERMISSION_REFUSED, randomCheckpoint } from '../helpers/nats.ts';
import { CheckpointStore, connectNats, RunStateStore } from '../../lib/transport/nats.ts';
import { spawnNatsServer, type NatsServerProcess } from '../../lib/transport/nats-server.ts';
import { natsAccountsBlock, NATS_ROLES, RUN_STATE_API, type NatsRole } from '../../lib/transport/nats-permissions.ts';
import { LearnerStateStore } from '../../lib/worker/learner-state.ts';
import { CONFIG_EXIT_CODE, exitCodeFor, SetupError } from '../../lib/config/setup-error.ts';

const RUNS = ['run-a', 'run-b'] as const;
type Run = (typeof RUNS)[number];
const pass = (role: NatsRole, run: Run) => `${role}-${run}-pass-0123456789`;
const schema = z.object({ phase: z.string(), seq: z.number() });
let dir: string;
let server: NatsServerProcess;
const conns: NatsConnection[] = [];
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nats-run-grants-'));
  const users = RUNS.flatMap((run) => NATS_ROLES.map((role) => ({ role, user: `${role}-${run}`, password: pass(role, run), run })));
  writeFileSync(join(dir, 'nats.conf'), natsAccountsBlock(users));
  server = await spawnNatsServer({ port: await freePort(), storeDir: join(dir, 'js'), extraArgs: ['-c', join(dir, 'nats.conf')] });
});
after(async () => {
  for (const nc of conns) await nc.close().catch(() => undefined);
  for (const c of cleanups) await c().catch(() => undefined);
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function as(role: NatsRole, run: Run): Promise<NatsConnection> {
  const nc = await connectNats({ url: server.url, name: `run-grants/${role}-${run}`, user: `${role}-${run}`, pass: pass(role, run), maxReconnectAttempts: 0 });
  conns.push(nc);
  return nc;
}

const refused = PERMISSION_REFUSED;
const ckpt = randomCheckpoint;
const moments = (version: number) => ({ version, checkpointDigest: '0'.repeat(64), state: { step: version, m: new Map([['w', { shape: [3], data: new Float32Array([1, 2, 3]) }]]), v: new Map([['w', { shape: [3], data: new Float32Array([4, 5, 6]) }]]) } });
const params = () => new Map([['w', { shape: [3], data: new Float32Array(3) }]]);

test('a learner whose grant names its run does all it does there, and creates no stream of another name', { timeout: 60_000 }, async () => {
  const learner = await as('learner', 'run-a');
  const ljsm = await learner.jetstreamManager();
  const store = await CheckpointStore.open(learner, { runId: 'run-a' });
  for (let v = 0; v < 3; v++) { const c = ckpt(); await store.put(v, c.bytes, c.digest); }
  assert.deepEqual(await store.prune(1), [0, 1]);
  const optim = await LearnerStateStore.open(learner, 'run-a');
  await optim.put(moments(2));
  await optim.put(moments(2)); // a replaced object: a purge of the old chunks
  assert.ok(await optim.get(2, '0'.repeat(64), params()));
  const skips = await RunStateStore.open(learner, { runId: 'run-a', key: 'learner-skips', schema });
  await skips.modify(() => ({ phase: 'skips', seq: 1 }));
  // a reader of the run sees it all
  assert.equal((await CheckpointStore.open(await as('rollout', 'run-a'), { runId: 'run-a', readOnly: true }).then((s) => s.latest()))?.version, 2);

  // streams of any other name: refused, in the streams' account and the run state's
  const streams = [
    { name: 'capr', subjects: ['_R_.>'], no_ack: true },
    { name: 'rp', subjects: ['$KV.rp.x'], republish: { src: '$KV.rp.x', dest: 'recovery.run-a.checkpoint' } },
    { name: 'src', sources: [{ name: 'OBJ_learner-state' }] },
  ];
  const rjsm = await learner.jetstreamManager({ apiPrefix: RUN_STATE_API });
  for (const config of streams) {
    await assert.rejects(ljsm.streams.add(config), refused, `the learner creates ${config.name} in the streams' account`);
    await assert.rejects(rjsm.streams.add(config), refused, `the learner creates ${config.name} in the run state's account`);
  }
  // nor may it change a stream of another name (made here by run-b's learner, in its own run's name)
  await CheckpointStore.open(await as('learner', 'run-b'), { runId: 'run-b' });
  const other = (await ljsm.streams.info('recovery-ckpt-run-b')).config;
  await assert.rejects(ljsm.streams.update('recovery-ckpt-run-b', { ...other, subjects: ['recovery.run-b.checkpoint', '_R_.>'] }), refused, 'the learner changes run-b\'s announcement stream');
  assert.equal(learner.isClosed(), false);
});

// Round 25 (fix25): the learner may no longer change even its own run's streams. Before, its grant included
// `$JS.API.STREAM.UPDATE.<its streams>` (to correct their settings), so its stolen credential could add `_R_.>` to its
// announcement stream's subjects and have the JetStream answers passing through the streams' account stored there.
test('a learner cannot change its own run\'s streams (no `_R_.>` capture)', { timeout: 60_000 }, async () => {
  const learner = await as('learner', 'run-a');
  const ljsm = await learner.jetstreamManager();
  await CheckpointStore.open(learner, { runId: 'run-a' });
  await LearnerStateStore.open(learner, 'run-a');
  for (const name of ['recovery-ckpt-run-a', 'OBJ_checkpoints-run-a', 'OBJ_learner-state-run-a']) {
    const config = (await ljsm.streams.info(name)).config;
    await assert.rejects(ljsm.streams.update(name, { ...config, subjects: [...config.subjects, '_R_.>'] }), refused, `the learner adds _R_.> to ${name}`);
    assert.deepEqual((await ljsm.streams.info(name)).config.subjects, config.subjects, `${name}'s subjects changed`);
  }
});

// Round 25 (fix25): the learner's optimizer state was one bucket for every run (`OBJ_learner-state`, objects
// `<run>/optim-v...`), so one run's learner could write, replace or purge another run's moments. Where the grants name
// the run each has its own bucket, `learner-state-<run>`, which only its learner writes and no other role reads.
test('each run\'s learner keeps its moments in its own bucket, which another run\'s learner cannot write or purge, nor any other role read', { timeout: 60_000 }, async () => {
  const b = await LearnerStateStore.open(await as('learner', 'run-b'), 'run-b');
  assert.equal(b.bucket, 'learner-state-run-b');
  await b.put(moments(4));
  const learnerA = await as('learner', 'run-a');
  assert.equal((await LearnerStateStore.open(learnerA, 'run-a')).bucket, 'learner-state-run-a');
  const js = learnerA.jetstream();
  await assert.rejects(js.publish('$O.learner-state-run-b.C.x', new Uint8Array(8)), refused, 'run-a\'s learner writes a chunk of run-b\'s moments');
  const jsm = await learnerA.jetstreamManager();
  await assert.rejects(jsm.streams.purge('OBJ_learner-state-run-b'), refused, 'run-a\'s learner purges run-b\'s moments');
  // nor through the bucket it would have shared before
  await assert.rejects(jsm.streams.purge('OBJ_learner-state', { filter: '$O.learner-state.C.>' }), refused, 'run-a\'s learner purges the shared bucket');
  for (const role of ['rollout', 'orchestrator', 'reward'] as const) {
    for (const run of RUNS) {
      const rjsm = await (await as(role, run)).jetstreamManager();
      await assert.rejects(rjsm.streams.getMessage('OBJ_learner-state-run-b', { seq: 1 }), refused, `${role} of ${run} reads run-b's moments`);
    }
  }
  assert.ok(await b.get(4, '0'.repeat(64), params()), 'run-b\'s moments are still there');
});

// A run resumed across round 25 (or from a config for every run to one naming it): its moments of before are in the
// shared bucket; its learner, now given its own, still reads them from there (and writes only its own).
test('a learner whose grant now names its run resumes the moments it stored in the shared bucket', { timeout: 60_000 }, async () => {
  const store = join(dir, 'js-resumed');
  const conf = join(dir, 'resumed.conf');
  const serve = async (run?: string) => {
    writeFileSync(conf, natsAccountsBlock(NATS_ROLES.map((role) => ({ role, user: role, password: `${role}-pass-0123456789`, ...(run ? { run } : {}) }))));
    return spawnNatsServer({ port: await freePort(), storeDir: store, extraArgs: ['-c', conf] });
  };
  const learnerOn = (s: NatsServerProcess) => connectNats({ url: s.url, name: 'resumed/learner', user: 'learner', pass: 'learner-pass-0123456789', maxReconnectAttempts: 0 });
  const before = await serve();
  let nc = await learnerOn(before);
  const old = await LearnerStateStore.open(nc, 'run-r');
  assert.equal(old.bucket, 'learner-state', 'a grant for every run keeps the shared bucket');
  await old.put(moments(7));
  await nc.close();
  await before.stop();
  const named = await serve('run-r');
  cleanups.push(() => named.stop());
  nc = await learnerOn(named);
  conns.push(nc);
  const resumed = await LearnerStateStore.open(nc, 'run-r');
  assert.equal(resumed.bucket, 'learner-state-run-r');
  const got = await resumed.get(7, '0'.repeat(64), params());
  assert.deepEqual(got && [...got.state.m.get('w')!.data], [1, 2, 3], 'the moments stored in the shared bucket');
  await resumed.put(moments(8));
  assert.ok(await resumed.get(8, '0'.repeat(64), params()));
});

test('a shared bucket without direct gets (made before round 22) is refused when a run reads it, naming the stream and the edit', { timeout: 60_000 }, async () => {
  // LearnerStateStore.shared() reads the old shared bucket by direct gets; a learner no longer turns them on itself
  // (no role may update a stream), so the read is refused with the operator's edit instead (review25f)
  const store = join(dir, 'js-no-direct');
  const conf = join(dir, 'no-direct.conf');
  const serve = async (run?: string) => {
    writeFileSync(conf, natsAccountsBlock(NATS_ROLES.map((role) => ({ role, user: role, password: `${role}-pass-0123456789`, ...(run ? { run } : {}) }))));
    return spawnNatsServer({ port: await freePort(), storeDir: store, extraArgs: ['-c', conf] });
  };
  const learnerOn = (s: NatsServerProcess) => connectNats({ url: s.url, name: 'no-direct/learner', user: 'learner', pass: 'learner-pass-0123456789', maxReconnectAttempts: 0 });
  const before = await serve();
  let nc = await learnerOn(before);
  // the shared bucket as an old learner made it: an object store stream without allow_direct
  await (await nc.jetstreamManager()).streams.add({ name: 'OBJ_learner-state', subjects: ['$O.learner-state.C.>', '$O.learner-state.M.>'], allow_direct: false, allow_rollup_hdrs: true, discard: DiscardPolicy.New });
  await nc.close();
  await before.stop();
  const named = await serve('run-s');
  cleanups.push(() => named.stop());
  nc = await learnerOn(named);
  conns.push(nc);
  const s = await LearnerStateStore.open(nc, 'run-s');
  assert.equal(s.bucket, 'learner-state-run-s');
  await assert.rejects(s.get(3, '0'.repeat(64), params()), /stream OBJ_learner-state: allow_direct: has false, expected true .*nats stream edit OBJ_learner-state --allow-direct/);
});

test('one run\'s learner cannot create, write, purge or change another run\'s checkpoints, nor its skip record', { timeout: 60_000 }, async () => {
  const learnerB = await as('learner', 'run-b');
  const storeB = await CheckpointStore.open(learnerB, { runId: 'run-b' });
  const c = ckpt();
  await storeB.put(0, c.bytes, c.digest);
  const c1 = ckpt();
  await storeB.put(1, c1.bytes, c1.digest);
  await (await RunStateStore.open(await as('orchestrator', 'run-b'), { runId: 'run-b', schema })).create({ phase: 'sft', seq: 0 });

  const learnerA = await as('learner', 'run-a');
  // its writer's open of run-b succeeds (the streams exist and conform: nothing to write), its writes do not
  const rogue = await CheckpointStore.open(learnerA, { runId: 'run-b' });
  const evil = ckpt();
  await assert.rejects(rogue.put(2, evil.bytes, evil.digest), refused, 'run-a\'s learner stores a checkpoint of run-b');
  await assert.rejects(rogue.prune(1), refused, 'run-a\'s learner prunes run-b\'s checkpoints');
  const js = learnerA.jetstream();
  await assert.rejects(js.publish('recovery.run-b.checkpoint', new TextEncoder().encode('{}')), refused, 'run-a\'s learner announces in run-b');
  await assert.rejects(js.publish('$O.checkpoints-run-b.C.x', new Uint8Array(8)), refused, 'run-a\'s learner writes a chunk of run-b');
  const jsm = await learnerA.jetstreamManager();
  await assert.rejects(jsm.streams.purge('OBJ_checkpoints-run-b'), refused, 'run-a\'s learner purges run-b\'s bucket');
  const si = await jsm.streams.info('OBJ_checkpoints-run-b');
  await assert.rejects(jsm.streams.update('OBJ_checkpoints-run-b', { ...si.config, max_age: 1e9 }), refused, 'run-a\'s learner changes run-b\'s bucket');
  await assert.rejects(jsm.streams.add({ name: 'recovery-ckpt-run-c', subjects: ['recovery.run-c.checkpoint'] }), refused, 'run-a\'s learner creates a stream of a run the config does not name');
  const skipsB = await RunStateStore.open(learnerA, { runId: 'run-b', key: 'learner-skips', schema });
  await assert.rejects(skipsB.modify(() => ({ phase: 'skips', seq: 9 })), refused, 'run-a\'s learner writes run-b\'s skip record');

  // run-b is as its learner left it
  assert.equal((await storeB.latest())?.version, 1);
  assert.deepEqual(await storeB.versions(), [0, 1]);
  assert.deepEqual(Buffer.from((await storeB.get(0)).bytes), c.bytes);
  assert.equal((await jsm.streams.info('OBJ_checkpoints-run-b')).config.max_age, 0);
});

test('an orchestrator whose grant names its run creates only that run\'s state', { timeout: 60_000 }, async () => {
  const orchestrator = await as('orchestrator', 'run-a');
  const state = await RunStateStore.open(orchestrator, { runId: 'run-a', schema });
  const rev = await state.create({ phase: 'sft', seq: 0 });
  await state.update({ phase: 'grpo', seq: 1 }, rev);
  const rjsm = await orchestrator.jetstreamManager({ apiPrefix: RUN_STATE_API });
  for (const config of [{ name: 'capr', subjects: ['_R_.>'], no_ack: true }, { name: 'KV_runstate-run-c', subjects: ['$KV.runstate-run-c.>'] }]) {
    await assert.rejects(rjsm.streams.add(config), refused, `the orchestrator creates ${config.name} in the run state's account`);
  }
  await assert.rejects(RunStateStore.open(orchestrator, { runId: 'run-c', schema }), refused, 'run-a\'s orchestrator creates run-c\'s state');
  // run-b's state (made by its own orchestrator): read, not written
  const other = await as('orchestrator', 'run-b');
  await (await RunStateStore.open(other, { runId: 'run-b', schema })).modify(() => ({ phase: 'sft', seq: 5 }));
  const b = await RunStateStore.open(orchestrator, { runId: 'run-b', schema });
  const cur = await b.get();
  assert.ok(cur);
  await assert.rejects(b.update({ phase: 'done', seq: 9 }, cur.revision), refused, 'run-a\'s orchestrator writes run-b\'s state');
  assert.deepEqual((await state.get())?.value, { phase: 'grpo', seq: 1 });
});

test('a store opened for a run the grants do not name ends with a SetupError that says how to regenerate them', { timeout: 60_000 }, async () => {
  // a run id changed in the run configuration, nats.conf not regenerated: no restart cures it (exit 78), and the
  // message says which run the grants lack and how to write them
  const notNamed = (e: unknown): boolean => {
    assert.ok(e instanceof SetupError, `a SetupError, not ${String(e)}`);
    assert.equal(exitCodeFor(e), CONFIG_EXIT_CODE);
    assert.match(e.message, /NATS grants of this connection's user do not name run run-c/);
    assert.match(e.message, /scripts\/gen-nats-conf\.ts --run=run-c/);
    assert.match(e.message, refused, 'the server\'s words kept');
    return true;
  };
  await assert.rejects(RunStateStore.open(await as('orchestrator', 'run-a'), { runId: 'run-c', schema }), notNamed, 'the orchestrator\'s run state');
  await assert.rejects(RunStateStore.open(await as('learner', 'run-a'), { runId: 'run-c', key: 'learner-skips', schema }), notNamed, 'the learner\'s skip record');
  await assert.rejects(CheckpointStore.open(await as('learner', 'run-a'), { runId: 'run-c' }), notNamed, 'the learner\'s checkpoints');
});

test('a config names runs for all its users or for none', () => {
  assert.throws(() => natsAccountsBlock([{ role: 'learner', user: 'l', password: 'p', run: 'run-a' }, { role: 'rollout', user: 'r', password: 'p' }]), /r name no run while l do/);
  assert.throws(() => natsAccountsBlock([{ role: 'learner', user: 'l', password: 'p', run: 'run.a' }]), /runId "run.a" must be/);
});
