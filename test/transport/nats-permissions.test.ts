// Least privilege in NATS (issue #16, probe 2), against a real nats-server running the authorization block the
// local run and Kubernetes use (lib/transport/nats-permissions.ts): a rollout worker's credential can read
// checkpoints but the server refuses its attempts to store a checkpoint, announce one, write the run state,
// purge or delete a stream; the orchestrator cannot write checkpoints; the learner's writes succeed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, DeliverPolicy, DiscardPolicy, JSONCodec, StorageType, type NatsConnection } from 'nats';
import { z } from 'zod';
import { freePort, PERMISSION_REFUSED, randomCheckpoint } from '../helpers/nats.ts';
import { CheckpointStore, connectNats, RunStateStore } from '../../lib/transport/nats.ts';
import { spawnNatsServer, type NatsServerProcess } from '../../lib/transport/nats-server.ts';
import { PUSHED_CHUNKS } from '../../lib/transport/checkpoint-push.ts';
import { LEARNER_STATE_BUCKET, natsAccountsBlock, NATS_ROLES, RUN_STATE_API, type NatsRole } from '../../lib/transport/nats-permissions.ts';
import { LearnerStateStore } from '../../lib/worker/learner-state.ts';
import { writeLocalNatsUsers } from '../../lib/local/nats-config.ts';
import { LEARNER_RECORD_KEY } from '../../lib/grpo/exclusion-reports.ts';
import { learnerRecordReader } from '../../orchestrator/learner-record.ts';
import { permissionRefusal } from '../../lib/transport/nats-refusal.ts';

const RUN = 'perm-run';
const pass = (role: NatsRole) => `${role}-pass-0123456789`;
const schema = z.object({ phase: z.string(), seq: z.number() });
let dir: string;
let server: NatsServerProcess;
const conns: NatsConnection[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nats-perm-'));
  writeFileSync(join(dir, 'nats.conf'), natsAccountsBlock(NATS_ROLES.map((role) => ({ role, user: role, password: pass(role) }))));
  server = await spawnNatsServer({ port: await freePort(), storeDir: join(dir, 'js'), extraArgs: ['-c', join(dir, 'nats.conf')] });
});
after(async () => {
  for (const nc of conns) await nc.close().catch(() => undefined);
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function as(role: NatsRole): Promise<NatsConnection> {
  const nc = await connectNats({ url: server.url, name: `perm-test/${role}`, user: role, pass: pass(role), maxReconnectAttempts: 0 });
  conns.push(nc);
  return nc;
}

const refused = PERMISSION_REFUSED;
const ckpt = randomCheckpoint;

test('per-role NATS users: only the learner writes checkpoints and announcements, only the orchestrator the run state, workers read', { timeout: 60_000 }, async () => {
  const orchestrator = await as('orchestrator');
  const learner = await as('learner');
  const rollout = await as('rollout');

  // the orchestrator creates the run's state and opens the checkpoints read-only before the learner made them, as at start
  const state = await RunStateStore.open(orchestrator, { runId: RUN, schema });
  const rev = await state.create({ phase: 'sft', seq: 0 });
  const orchStore = await CheckpointStore.open(orchestrator, { runId: RUN, readOnly: true });
  assert.equal(await orchStore.latest(), null);
  assert.equal(await orchStore.storedMeta(1), null);

  // the learner publishes v1 (object + announcement), its optimizer state and its skip record
  const learnerStore = await CheckpointStore.open(learner, { runId: RUN });
  const v1 = ckpt();
  await learnerStore.put(1, v1.bytes, v1.digest);
  const optim = await LearnerStateStore.open(learner, RUN);
  assert.equal(optim.bucket, LEARNER_STATE_BUCKET);
  const moments = () => ({ version: 2, checkpointDigest: '0'.repeat(64), state: { step: 2, m: new Map([['w', { shape: [3], data: new Float32Array([1, 2, 3]) }]]), v: new Map([['w', { shape: [3], data: new Float32Array([4, 5, 6]) }]]) } });
  const skips = await RunStateStore.open(learner, { runId: RUN, key: 'learner-skips', schema });
  await skips.modify(() => ({ phase: 'skips', seq: 1 }));
  // ... and prunes (a purge of its object store)
  const v2 = ckpt();
  await learnerStore.put(2, v2.bytes, v2.digest);
  assert.deepEqual(await learnerStore.prune(1), [1]);

  // a rollout worker reads: latest, the bytes, the announcement stream
  const rolloutStore = await CheckpointStore.open(rollout, { runId: RUN });
  assert.equal((await rolloutStore.latest())?.version, 2);
  assert.deepEqual(Buffer.from((await rolloutStore.get(2)).bytes), v2.bytes);
  const watch = await rolloutStore.watch();
  for await (const a of watch) {
    assert.equal(a.version, 2);
    break;
  }
  await watch.stop();
  // ... but not the run state (review29 F6: it holds excluded-result ages per worker id and token-digest prefixes;
  // until then every reader might): not through its store, not through the run state's API, not its stored subject
  await assert.rejects(RunStateStore.open(rollout, { runId: RUN, schema }).then((s) => s.get()), refused, 'rollout reads the run state through its store');
  for (const reader of [rollout, await as('reward')]) {
    await assert.rejects(reader.request(`${RUN_STATE_API}.DIRECT.GET.KV_runstate-${RUN}.$KV.runstate-${RUN}.state`, undefined, { timeout: 20_000 }), refused, 'a reader direct-gets the run state');
    await assert.rejects(reader.request(`${RUN_STATE_API}.STREAM.MSG.GET.KV_runstate-${RUN}`, new TextEncoder().encode(JSON.stringify({ last_by_subj: `$KV.runstate-${RUN}.state` })), { timeout: 20_000 }), refused, 'a reader gets the run state\'s message');
    await assert.rejects(reader.jetstreamManager({ apiPrefix: RUN_STATE_API }).then((j) => j.streams.info(`KV_runstate-${RUN}`)), refused, 'a reader reads the run state\'s stream info');
  }

  // ... receives the object chunks as the learner stores them (checkpoint-push.ts; a subscription the server
  // refused would never deliver them)
  const pushes = rollout.subscribe(`$O.checkpoints-${RUN}.C.push.>`, { max: 1 });
  await rollout.flush();
  const pushed = ckpt();
  await learnerStore.put(3, pushed.bytes, pushed.digest);
  for await (const m of pushes) assert.deepEqual(Buffer.from(m.data), Buffer.from(pushed.bytes).subarray(0, m.data.length));

  // ... but never the learner's optimizer state: not as its chunks are stored, not through the JetStream API
  const leaked: Uint8Array[] = [];
  rollout.subscribe(`$O.${LEARNER_STATE_BUCKET}.C.>`, { callback: (e, m) => { if (!e) leaked.push(m.data); } });
  rollout.subscribe('$O.*.C.>', { callback: (e, m) => { if (!e) leaked.push(m.data); } });
  rollout.subscribe(PUSHED_CHUNKS, { callback: (e, m) => { if (!e && m.subject.startsWith(`$O.${LEARNER_STATE_BUCKET}.`)) leaked.push(m.data); } });
  await rollout.flush().catch(() => undefined);
  await optim.put(moments());
  assert.ok(await optim.get(2, '0'.repeat(64), new Map([['w', { shape: [3], data: new Float32Array(3) }]])), 'the learner reads its moments back');
  await rollout.flush().catch(() => undefined);
  await learner.flush();
  assert.equal(leaked.length, 0, 'a rollout subscription received the learner\'s optimizer state');
  const rjsm = await rollout.jetstreamManager();
  await assert.rejects(rjsm.streams.getMessage(`OBJ_${LEARNER_STATE_BUCKET}`, { seq: 1 }), refused, 'rollout gets a message of the learner state');
  // (one consumer-create request; nats.js's ordered consumer would retry a refused create until the test's timeout)
  await assert.rejects(rjsm.consumers.add(`OBJ_${LEARNER_STATE_BUCKET}`, { ack_policy: AckPolicy.None }), refused, 'rollout makes a consumer of the learner state');
  // (refused at its open since round 25: no grant of a reader may purge the shared bucket, so its store looks for the
  // run's own bucket, which it may not create; before, at the read)
  await assert.rejects(LearnerStateStore.open(rollout, RUN).then((s) => s.get(2, '0'.repeat(64), new Map())), refused, 'rollout reads the learner state through its store');
  const ojsm = await orchestrator.jetstreamManager();
  await assert.rejects(ojsm.streams.getMessage(`OBJ_${LEARNER_STATE_BUCKET}`, { seq: 1 }), refused, 'the orchestrator gets a message of the learner state');
  await assert.rejects(ojsm.streams.update(`OBJ_${LEARNER_STATE_BUCKET}`, { republish: { src: '>', dest: '_INBOX.leak.>' } }), refused, 'the orchestrator makes the learner state republish');
  // round 23: the orchestrator updates no stream (it could turn direct gets back on for the announcement stream)
  const annConfig = (await ojsm.streams.info(`recovery-ckpt-${RUN}`)).config;
  await assert.rejects(ojsm.streams.update(annConfig.name, { ...annConfig, allow_direct: true }), refused, 'the orchestrator turns on direct gets of the announcement stream');

  // ... and every write it tries is refused by the server
  const forged = ckpt();
  await assert.rejects(rolloutStore.put(4, forged.bytes, forged.digest), refused, 'rollout stores a checkpoint');
  const jc = JSONCodec();
  const announcement = { run_id: RUN, version: 999, name: 'v0000000999', digest: forged.digest, size: 3000, meta: {}, published_unix_ms: Date.now() };
  await assert.rejects(rollout.jetstream().publish(`recovery.${RUN}.checkpoint`, jc.encode(announcement)), refused, 'rollout announces a checkpoint');
  await assert.rejects(rollout.request(`${RUN_STATE_API}.$KV.runstate-${RUN}.state`, new TextEncoder().encode(JSON.stringify({ phase: 'done', seq: 3 })), { timeout: 20_000 }), refused, 'rollout writes the run state');
  const jsm = await rollout.jetstreamManager();
  await assert.rejects(rollout.jetstreamManager({ apiPrefix: RUN_STATE_API }).then((j) => j.streams.purge(`KV_runstate-${RUN}`)), refused, 'rollout purges the run state');
  await assert.rejects(jsm.streams.delete(`OBJ_checkpoints-${RUN}`), refused, 'rollout deletes the checkpoints');
  await assert.rejects(jsm.streams.add({ name: 'rogue', subjects: ['rogue.>'] }), refused, 'rollout creates a stream');

  // the orchestrator writes the run state but cannot write checkpoints
  await state.update({ phase: 'grpo', seq: 1 }, rev);
  await assert.rejects(orchStore.put(4, forged.bytes, forged.digest), refused, 'orchestrator stores a checkpoint');
  // the learner cannot write the run state itself (only its skip record)
  const learnerState = await RunStateStore.open(learner, { runId: RUN, schema });
  const cur = await learnerState.get();
  await assert.rejects(learnerState.update({ phase: 'done', seq: 9 }, cur!.revision), refused, 'learner writes the run state');
  // the learner's record (its skips and kept exclusion reports): the orchestrator reads it, never writes it; readers neither
  await learnerRecordGrants({ orchestrator, rollout, reward: await as('reward') }, RUN, { phase: 'skips', seq: 1 });

  // nothing refused changed anything
  assert.equal((await rolloutStore.latest())?.version, 3);
  assert.equal((await orchStore.latest())?.version, 3, 'the orchestrator\'s read-only store reads what the learner made since');
  assert.deepEqual((await state.get())?.value, { phase: 'grpo', seq: 1 });
  // the connections survive their refusals
  assert.equal(rollout.isClosed(), false);
});

/**
 * The learner's record in the run state (key `learner-skips`: its non-finite skips and, since round 32, its kept
 * exclusion reports, lib/grpo/exclusion-reports.ts) under real grants: the orchestrator opens and reads it (as
 * orchestrator/main.ts does, to count a batch acknowledged without its TrainResult) and cannot write it (review32 F3:
 * its grant names its own key `state`); a rollout or reward credential can neither open nor read it (review29 F6).
 * `held`: what the learner wrote there.
 */
async function learnerRecordGrants(nc: { orchestrator: NatsConnection; rollout: NatsConnection; reward: NatsConnection }, run: string, held: unknown): Promise<void> {
  const record = await RunStateStore.open(nc.orchestrator, { runId: run, key: LEARNER_RECORD_KEY, schema: z.unknown() });
  const got = await record.get();
  assert.deepEqual(got?.value, held, 'the orchestrator reads the learner\'s record');
  await assert.rejects(record.update({ exclusion_reports: [{ seq: 1, results: { honest: 'x' } }] }, got!.revision), refused, 'the orchestrator writes the learner\'s record');
  await assert.rejects(nc.orchestrator.request(`${RUN_STATE_API}.$KV.runstate-${run}.learner-skips`, new TextEncoder().encode('{}'), { timeout: 20_000 }), refused, 'the orchestrator publishes on the learner\'s record');
  for (const [role, reader] of [['rollout', nc.rollout], ['reward', nc.reward]] as const) {
    await assert.rejects(RunStateStore.open(reader, { runId: run, key: LEARNER_RECORD_KEY, schema: z.unknown() }).then((s) => s.get()), refused, `${role} reads the learner's record through its store`);
    await assert.rejects(reader.request(`${RUN_STATE_API}.DIRECT.GET.KV_runstate-${run}.$KV.runstate-${run}.learner-skips`, undefined, { timeout: 20_000 }), refused, `${role} direct-gets the learner's record`);
  }
  assert.deepEqual((await record.get())?.value, held, 'nothing refused changed the learner\'s record');
}

/**
 * A nats-server in a fresh directory on the config `setUp` writes there, and `connect(role)` with the credentials it
 * names; `body` runs with them, then every connection, the server and the directory go.
 */
async function withGrantsServer(
  name: string,
  setUp: (dir: string) => { configFile: string; credentials: (role: NatsRole) => { user: string; pass: string } },
  body: (connect: (role: NatsRole) => Promise<NatsConnection>) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `nats-perm-${name}-`));
  const { configFile, credentials } = setUp(dir);
  const server = await spawnNatsServer({ port: await freePort(), storeDir: join(dir, 'js'), extraArgs: ['-c', configFile] });
  const opened: NatsConnection[] = [];
  try {
    await body(async (role) => {
      const nc = await connectNats({ url: server.url, name: `perm-test-${name}/${role}`, ...credentials(role), maxReconnectAttempts: 0 });
      opened.push(nc);
      return nc;
    });
  } finally {
    for (const nc of opened) await nc.close().catch(() => undefined);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// The local run's grants name its run (writeLocalNatsUsers(out, config.run.id): runScope for one run, the form
// k8s/base/nats.conf holds for run recovery-grpo, test/k8s/security.test.ts): the same for the learner's record there.
test('grants that name the run (the local run\'s nats.conf): the orchestrator reads the learner\'s record and writes only its own key', { timeout: 60_000 }, async () => {
  const run = 'local-grants-run';
  await withGrantsServer('local', (dir) => writeLocalNatsUsers(dir, run), async (connect) => {
    const orchestrator = await connect('orchestrator');
    const learner = await connect('learner');
    const state = await RunStateStore.open(orchestrator, { runId: run, schema });
    await state.create({ phase: 'grpo', seq: 0 });
    const held = { version: 1, digest: 'd', last_batch_seq: 0, exclusion_reports: [{ seq: 1, results: { forger: 'x' } }] };
    await (await RunStateStore.open(learner, { runId: run, key: LEARNER_RECORD_KEY, schema: z.unknown() })).modify(() => held);
    await learnerRecordGrants({ orchestrator, rollout: await connect('rollout'), reward: await connect('reward') }, run, held);
    // ... as the orchestrator reads it (orchestrator/main.ts): the kept reports
    const lines: string[] = [];
    const read = learnerRecordReader(await RunStateStore.open(orchestrator, { runId: run, key: LEARNER_RECORD_KEY, schema: z.unknown() }), (l) => lines.push(l), (_what, op) => op());
    assert.deepEqual(await read(), held.exclusion_reports);
    assert.deepEqual(lines, []);
    await state.modify(() => ({ phase: 'grpo', seq: 1 }));
    assert.deepEqual((await state.get())?.value, { phase: 'grpo', seq: 1 }, 'the orchestrator writes its own key');
  });
});

// review32 F4: a server whose grant refuses the orchestrator's read of the learner's record (an older or hand-made
// nats.conf): the refusal is final, said once, and counts nothing (as an older learner's missing reports), instead of
// being retried as a NATS outage until the run fails.
test('a grant that refuses the orchestrator\'s read of the learner\'s record: said once, nothing read, not retried', { timeout: 60_000 }, async () => {
  const run = 'refused-record-run';
  const users = NATS_ROLES.map((role) => ({ role, user: role, password: pass(role), run }));
  // the orchestrator's user: the run state's message reads denied besides its grant
  const conf = natsAccountsBlock(users).replace(/(\{ user: "orchestrator".*?deny: \[)/s, '$1"RS.API.DIRECT.GET.>", "RS.API.STREAM.MSG.GET.>", ');
  assert.match(conf, /deny: \["RS\.API\.DIRECT\.GET\.>"/, 'the deny was added');
  const setUp = (dir: string) => {
    writeFileSync(join(dir, 'nats.conf'), conf);
    return { configFile: join(dir, 'nats.conf'), credentials: (role: NatsRole) => ({ user: role, pass: pass(role) }) };
  };
  await withGrantsServer('denied', setUp, async (connect) => {
    await (await RunStateStore.open(await connect('learner'), { runId: run, key: LEARNER_RECORD_KEY, schema: z.unknown() })).modify(() => ({ version: 1, digest: 'd', last_batch_seq: 1, exclusion_reports: [{ seq: 1, results: { forger: 'x' } }] }));
    const orchestrator = await connect('orchestrator');
    const record = await RunStateStore.open(orchestrator, { runId: run, key: LEARNER_RECORD_KEY, schema: z.unknown() });
    await assert.rejects(record.get(), refused, 'the hand-made grant refuses the read');
    // the one reader of a refusal (lib/transport/nats-refusal.ts, also grantsNameAnotherRun's) names what was refused
    const error = await record.get().then(() => undefined, (e: unknown) => e);
    const what = permissionRefusal(error);
    assert.equal(what?.operation, 'publish', String(error));
    assert.match(what?.subject ?? '', /^RS\.API\.(DIRECT|STREAM\.MSG)\.GET\./, String(error));
    assert.equal(permissionRefusal(new Error('TIMEOUT')), undefined);
    assert.equal(permissionRefusal(undefined), undefined);
    const lines: string[] = [];
    let tries = 0;
    const read = learnerRecordReader(record, (l) => lines.push(l), async (_what, op) => {
      // as retryingNats: a thrown error would be tried again (three times here)
      for (let attempt = 1; ; attempt++) {
        tries++;
        try {
          return await op();
        } catch (e) {
          if (attempt >= 3) throw e;
        }
      }
    });
    assert.equal(await read(), undefined);
    assert.equal(await read(), undefined);
    assert.equal(tries, 1, 'read once, not retried, not read again');
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /^the NATS server refuses this orchestrator's read of the learner's record runstate-refused-record-run\/learner-skips \(.*[Pp]ermission.*\): its kept exclusion reports are not read in this process/);
    assert.equal(orchestrator.isClosed(), false);
  });
});

// The round-22 review's attack (docs/security.md, "Readers make no consumers"): with CONSUMER.CREATE in its grant, a
// rollout credential made push consumers of the object store delivering into the announcement subject; the
// announcement stream stored those deliveries, and a few thousand consumers evicted every genuine announcement
// (latest() null for every role; a restarted learner then started over at v0). Now no reader may make a consumer,
// on any stream, and its reads (latest, watch, get from the store) still work.
test('readers make no consumers: the eviction attack is refused, announcements survive, reads still work', { timeout: 60_000 }, async () => {
  const run = 'evict-run';
  const learner = await as('learner');
  const learnerStore = await CheckpointStore.open(learner, { runId: run });
  const stored = [ckpt(), ckpt(), ckpt()];
  for (const [v, c] of stored.entries()) await learnerStore.put(v, c.bytes, c.digest);
  // round 23: the learner neither (its reads are direct gets, so that they cross the NATS account import as requests)
  for (const role of ['rollout', 'reward', 'orchestrator', 'learner'] as const) {
    const nc = await as(role);
    const jsm = await nc.jetstreamManager();
    for (const stream of [`OBJ_checkpoints-${run}`, `recovery-ckpt-${run}`, `KV_runstate-${RUN}`]) {
      await assert.rejects(
        jsm.consumers.add(stream, { ack_policy: AckPolicy.None, deliver_subject: `recovery.${run}.checkpoint`, deliver_policy: DeliverPolicy.All }),
        refused, `${role} makes a push consumer of ${stream} delivering into the announcement subject`);
      await assert.rejects(jsm.consumers.add(stream, { durable_name: 'd', ack_policy: AckPolicy.Explicit }), refused, `${role} makes a durable consumer of ${stream}`);
    }
    // ... and still reads: the newest announcement, the watch (core subscription + direct reads), the bytes from the
    // store (direct gets of each chunk: a join's fetch, no push involved)
    const store = await CheckpointStore.open(nc, { runId: run });
    assert.equal((await store.latest())?.version, 2, `${role} reads the newest announcement`);
    const watch = await store.watch();
    for await (const a of watch) {
      assert.equal(a.version, 2);
      break;
    }
    await watch.stop();
    assert.deepEqual(Buffer.from((await store.get(1)).bytes), stored[1]!.bytes, `${role} reads v1 from the store`);
    assert.equal(nc.isClosed(), false);
  }
  const si = await (await learner.jetstreamManager()).streams.info(`recovery-ckpt-${run}`);
  assert.equal(si.state.messages, 3, 'the announcement stream holds the 3 genuine announcements and nothing else');
  assert.equal((await learnerStore.latest())?.version, 2);
});

// Round 22's review found (docs/security.md, "JetStream API replies stay in the requester's account"): a JetStream API
// request's reply subject is the requester's choice and is not checked against its publish permissions, and the
// server's answer was stored by any stream whose subjects it matched (nats-server 2.9.10). So a rollout credential,
// with only the read API it keeps, wrote a JSON API answer as the newest run state, as an object's info record, or as
// announcements. Now every role is a user of its own account, which reaches the streams only through service imports:
// the server maps an imported request's reply subject to one of its own, and the answer goes back to the requester's
// account, where no stream is. Each request below is one the sender's grant allows: the rollout user's read API, and
// (since review29 F6 the readers may not reach the run state) the learner's read API of the run state.
const injected = async (reply: string) => {
  const rollout = await as('rollout');
  const learner = await as('learner');
  // the read API the grants keep: answers of different kinds (account info, a stream's info, a message get)
  const sent = [
    ...['$JS.API.INFO', `$JS.API.STREAM.INFO.OBJ_checkpoints-${RUN}`, `$JS.API.STREAM.MSG.GET.OBJ_checkpoints-${RUN}`].map((request) => ({ nc: rollout, request })),
    ...[`${RUN_STATE_API}.INFO`, `${RUN_STATE_API}.STREAM.INFO.KV_runstate-${RUN}`, `${RUN_STATE_API}.STREAM.MSG.GET.KV_runstate-${RUN}`].map((request) => ({ nc: learner, request })),
  ];
  for (const { nc, request } of sent) nc.publish(request, new TextEncoder().encode(request.includes('MSG.GET') ? JSON.stringify({ seq: 1 }) : ''), { reply });
  await rollout.flush();
  await learner.flush();
  // the answers are on their way back within a round trip; give the server time to store any
  await new Promise((r) => setTimeout(r, 300));
  await rollout.flush();
  await learner.flush();
};

test('a reader cannot make the server store an API answer as the run state (reply-subject injection)', { timeout: 30_000 }, async () => {
  const run = 'reply-run';
  const orchestrator = await as('orchestrator');
  const state = await RunStateStore.open(orchestrator, { runId: run, schema });
  await state.create({ phase: 'sft', seq: 0 });
  await injected(`$KV.runstate-${run}.state`);
  assert.deepEqual((await state.get())?.value, { phase: 'sft', seq: 0 });
  const si = await (await orchestrator.jetstreamManager({ apiPrefix: RUN_STATE_API })).streams.info(`KV_runstate-${run}`);
  assert.equal(si.state.messages, 1, 'the run state stream holds the orchestrator\'s one write and nothing else');
});

test('a reader cannot make the server store an API answer as an announcement or an object\'s info record', { timeout: 30_000 }, async () => {
  const run = 'reply-ann-run';
  const learner = await as('learner');
  const store = await CheckpointStore.open(learner, { runId: run });
  const v0 = ckpt();
  await store.put(0, v0.bytes, v0.digest);
  const jsm = await learner.jetstreamManager();
  const before = { ann: (await jsm.streams.info(`recovery-ckpt-${run}`)).state.messages, obj: (await jsm.streams.info(`OBJ_checkpoints-${run}`)).state.messages };
  await injected(`recovery.${run}.checkpoint`);
  await injected(`$O.checkpoints-${run}.M.${Buffer.from('v0000000000').toString('base64url')}`);
  await injected(`$O.checkpoints-${run}.M.${Buffer.from('v0000000001').toString('base64url')}`);
  const now = { ann: (await jsm.streams.info(`recovery-ckpt-${run}`)).state.messages, obj: (await jsm.streams.info(`OBJ_checkpoints-${run}`)).state.messages };
  assert.deepEqual(now, before, 'the announcement stream (ann) or the object store (obj) stored an API answer');
  assert.equal((await store.latest())?.version, 0);
  assert.deepEqual(await store.versions(), [0]);
  assert.deepEqual(Buffer.from((await store.get(0)).bytes), v0.bytes);
});

// Round 23: the orchestrator may no longer update streams, so it opens the checkpoints read-only: a store whose streams
// predate round 22 (no direct gets on the bucket) is left as it is. Round 25: the learner's open no longer brings them up
// to date (no role may update a stream): it refuses them, naming the stream and each setting, and changes nothing.
test('the orchestrator opens a store whose streams predate round 22 read-only; the learner\'s open refuses them, unchanged', { timeout: 30_000 }, async () => {
  const run = 'old-streams-run';
  const learner = await as('learner');
  const ljsm = await learner.jetstreamManager();
  await ljsm.streams.add({ name: `OBJ_checkpoints-${run}`, subjects: [`$O.checkpoints-${run}.C.>`, `$O.checkpoints-${run}.M.>`], allow_rollup_hdrs: true, allow_direct: false });
  const orchStore = await CheckpointStore.open(await as('orchestrator'), { runId: run, readOnly: true });
  assert.equal(await orchStore.latest(), null);
  assert.equal((await ljsm.streams.info(`OBJ_checkpoints-${run}`)).config.allow_direct, false);
  await assert.rejects(CheckpointStore.open(learner, { runId: run }), new RegExp(`stream OBJ_checkpoints-${run} has settings .*allow_direct: has false, expected true.*not changed`));
  assert.equal((await ljsm.streams.info(`OBJ_checkpoints-${run}`)).config.allow_direct, false);
});

// review23d findings 1 and 2 (HIGH): with `$JS.API.STREAM.CREATE.*` in the streams' account, the orchestrator's
// credential made a stream republishing into the announcement subject (a replayed signed v1 became latest() for every
// role; 10,050 junk announcements evicted every genuine one; a deletion record made the learner lose its AdamW state),
// one capturing every JetStream answer (`_R_.>`: the learner's direct gets of its optimizer state), and one sourcing
// OBJ_learner-state (a copy of the moments). Now it creates streams only in the run state's account, which imports
// nothing: there the same streams are accepted and reach nothing.
test('the orchestrator creates no stream beside the checkpoints; those it makes beside the run state reach nothing', { timeout: 60_000 }, async () => {
  const run = 'create-run';
  const learner = await as('learner');
  const orchestrator = await as('orchestrator');
  const store = await CheckpointStore.open(learner, { runId: run });
  for (let v = 0; v < 3; v++) { const c = ckpt(); await store.put(v, c.bytes, c.digest); }
  const count = await store.announcementCount();
  const ojsm = await orchestrator.jetstreamManager();
  const v1 = await ojsm.streams.getMessage(`recovery-ckpt-${run}`, { seq: 2 });
  const subject = `recovery.${run}.checkpoint`;
  const infoRecord = `$O.${LEARNER_STATE_BUCKET}.M.${Buffer.from(`${run}/optim-v0000000002`).toString('base64url')}`;
  const streams = [
    { name: 'rp', subjects: ['$KV.rp.x'], republish: { src: '$KV.rp.x', dest: subject } },
    { name: 'rp2', subjects: ['$KV.rp2.x'], republish: { src: '$KV.rp2.x', dest: infoRecord } },
    { name: 'capr', subjects: ['_R_.>'], no_ack: true },
    { name: 'src', sources: [{ name: `OBJ_${LEARNER_STATE_BUCKET}` }] },
  ];
  for (const config of streams) await assert.rejects(ojsm.streams.add(config), refused, `the orchestrator creates ${config.name} in the streams' account`);
  // in the run state's account: accepted, and fed
  const rjsm = await orchestrator.jetstreamManager({ apiPrefix: RUN_STATE_API });
  for (const config of streams) await rjsm.streams.add(config);
  await orchestrator.publish(`${RUN_STATE_API}.$KV.rp.x`, v1.data);
  await orchestrator.publish(`${RUN_STATE_API}.$KV.rp2.x`, new TextEncoder().encode(JSON.stringify({ name: `${run}/optim-v0000000002`, bucket: LEARNER_STATE_BUCKET, deleted: true })));
  await assert.rejects(orchestrator.jetstream().publish('$KV.rp.x', v1.data), refused);
  // the learner stores and reads back its moments (direct gets, whose answers cross `_R_` subjects)
  const optim = await LearnerStateStore.open(learner, run);
  const marker = new Float32Array([1234.5, 6789.25, 42.125]);
  await optim.put({ version: 2, checkpointDigest: '0'.repeat(64), state: { step: 2, m: new Map([['w', { shape: [3], data: marker }]]), v: new Map([['w', { shape: [3], data: marker }]]) } });
  const params = new Map([['w', { shape: [3], data: new Float32Array(3) }]]);
  assert.ok(await optim.get(2, '0'.repeat(64), params));
  await orchestrator.flush();
  await new Promise((r) => setTimeout(r, 300));
  // nothing reached the checkpoints, the announcements or the learner's state
  assert.equal(await store.announcementCount(), count);
  assert.equal((await store.latest())?.version, 2);
  assert.ok(await optim.get(2, '0'.repeat(64), params), 'the learner\'s moments are still there');
  for (const name of ['capr', 'src']) {
    const info = await rjsm.streams.info(name);
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await rjsm.streams.getMessage(name, { seq }).catch(() => null);
      assert.ok(!m || !Buffer.from(m.data).includes(Buffer.from(marker.buffer)), `${name} holds the learner's moments`);
    }
  }
  assert.equal((await rjsm.streams.info('src')).state.messages, 0, 'a stream of the run state\'s account sourced the learner\'s state');
});

// review23d finding 3 (MEDIUM): a stream that already exists was trusted but for three settings; one pre-made by whoever
// had create rights (with an expiry, an extra subject, ...) was kept. The learner's open now checks every setting.
// Round 25 (fix25): it refuses such a stream, naming it and each setting, and changes nothing (it corrected what
// nats-server let it before, through a stream update no role's grant now includes: docs/security.md).
test('the learner refuses, unchanged, a checkpoint stream made by someone else with settings of its own', { timeout: 30_000 }, async () => {
  const learner = await as('learner');
  const ljsm = await learner.jetstreamManager();
  const run = 'premade-run';
  await ljsm.streams.add({ name: `recovery-ckpt-${run}`, subjects: [`recovery.${run}.checkpoint`, 'evil.>'], max_age: 2e9, max_msgs_per_subject: 10_000 });
  await assert.rejects(CheckpointStore.open(learner, { runId: run }), new RegExp(`stream recovery-ckpt-${run} has settings (?=.*subjects: has .*evil)(?=.*max_age: has 2000000000, expected 0).*not changed`));
  const ann = (await ljsm.streams.info(`recovery-ckpt-${run}`)).config;
  assert.deepEqual({ maxAge: ann.max_age, subjects: ann.subjects }, { maxAge: 2e9, subjects: [`recovery.${run}.checkpoint`, 'evil.>'] }, 'the learner changed the stream');
  const src = 'premade-src-run';
  await ljsm.streams.add({ name: `OBJ_checkpoints-${src}`, subjects: [`$O.checkpoints-${src}.C.>`, `$O.checkpoints-${src}.M.>`], allow_rollup_hdrs: true, allow_direct: true, sources: [{ name: `recovery-ckpt-${run}` }] });
  await assert.rejects(CheckpointStore.open(learner, { runId: src }), new RegExp(`stream OBJ_checkpoints-${src} has settings .*sources: has .*expected none`));
  // a bucket made before round 22 (no direct gets): refused, where the learner's open turned them on before
  const old = 'premade-old-run';
  await ljsm.streams.add({ name: `OBJ_checkpoints-${old}`, subjects: [`$O.checkpoints-${old}.C.>`, `$O.checkpoints-${old}.M.>`], allow_rollup_hdrs: true, allow_direct: false });
  await assert.rejects(CheckpointStore.open(learner, { runId: old }), new RegExp(`stream OBJ_checkpoints-${old} has settings .*allow_direct: has false, expected true`));
  assert.equal((await ljsm.streams.info(`OBJ_checkpoints-${old}`)).config.allow_direct, false);
  const rp = 'premade-rp-run';
  await ljsm.streams.add({ name: `recovery-ckpt-${rp}`, subjects: [`recovery.${rp}.checkpoint`], max_msgs_per_subject: 10_000, republish: { src: '>', dest: 'copied.>' } });
  await assert.rejects(CheckpointStore.open(learner, { runId: rp }), new RegExp(`stream recovery-ckpt-${rp} has settings .*republish`));
  const mem = 'premade-mem-run';
  await ljsm.streams.add({ name: `recovery-ckpt-${mem}`, subjects: [`recovery.${mem}.checkpoint`], storage: StorageType.Memory, max_msgs_per_subject: 10_000 });
  await assert.rejects(CheckpointStore.open(learner, { runId: mem }), new RegExp(`stream recovery-ckpt-${mem} has settings .*storage`));
  // nor may the learner's credential change a stream itself (the grant for every run): `_R_.>` added to the
  // announcement stream would store the JetStream answers passing through the streams' account
  const ok = 'own-run';
  await CheckpointStore.open(learner, { runId: ok });
  const config = (await ljsm.streams.info(`recovery-ckpt-${ok}`)).config;
  await assert.rejects(ljsm.streams.update(config.name, { ...config, subjects: [...config.subjects, '_R_.>'] }), refused, 'the learner adds _R_.> to its announcement stream');
});

// Round 24 (trust24): the settings checkOwnedStream (conformOwnedStream then) leaves alone, and the one it cannot fix. deny_purge: the learner
// purges (prune, a replaced object; an info record is a roll-up, which nats-server refuses on such a stream: "roll-ups
// require the purge permission"), and nats-server cannot cancel it ("can not cancel deny purge", 2.9.10), so such a
// bucket is refused, naming it. deny_delete (it cannot be cancelled either) blocks only message deletes, which no role
// makes; the duplicate window only spares a retried announcement its copy (a duplicate is harmless: watch() yields
// versions strictly increasing, latest() reads the newest); on one server every stream has one replica. Those are
// kept, and the learner's put, re-put and prune work on such streams.
test('the learner refuses a bucket that denies purges, and keeps deny_delete, a short duplicate window and a description', { timeout: 30_000 }, async () => {
  const learner = await as('learner');
  const ljsm = await learner.jetstreamManager();
  const dp = 'premade-dp-run';
  await ljsm.streams.add({ name: `OBJ_checkpoints-${dp}`, subjects: [`$O.checkpoints-${dp}.C.>`, `$O.checkpoints-${dp}.M.>`], allow_direct: true, deny_purge: true });
  await assert.rejects(CheckpointStore.open(learner, { runId: dp }), new RegExp(`stream OBJ_checkpoints-${dp} has settings .*deny_purge: has true`));
  const kept = 'premade-kept-run';
  const odd = { deny_delete: true, duplicate_window: 1e8, description: 'made by someone else' };
  await ljsm.streams.add({ name: `OBJ_checkpoints-${kept}`, subjects: [`$O.checkpoints-${kept}.C.>`, `$O.checkpoints-${kept}.M.>`], discard: DiscardPolicy.New, allow_rollup_hdrs: true, allow_direct: true, ...odd });
  await ljsm.streams.add({ name: `recovery-ckpt-${kept}`, subjects: [`recovery.${kept}.checkpoint`], max_msgs_per_subject: 10_000, ...odd });
  const store = await CheckpointStore.open(learner, { runId: kept });
  const cs = [ckpt(), ckpt(), ckpt()];
  for (const [v, c] of cs.entries()) { await store.put(v, c.bytes, c.digest); await store.put(v, c.bytes, c.digest); }
  assert.deepEqual(await store.prune(1), [0, 1]);
  assert.equal((await store.latest())?.version, 2);
  assert.deepEqual(Buffer.from((await store.get(2)).bytes), cs[2]!.bytes);
  assert.equal((await ljsm.streams.info(`recovery-ckpt-${kept}`)).config.deny_delete, true);
});

test('a wrong password is refused', async () => {
  await assert.rejects(connectNats({ url: server.url, name: 'perm-test/bad', user: 'rollout', pass: 'nope', maxReconnectAttempts: 0 }), /Authorization Violation|AUTHORIZATION/i);
});
