// The local run trusts as a cluster does (docs/security.md, "The local run"): its orchestrator takes only the
// processes it started, each with its own token for its role and worker id (a gRPC client without one, or with a
// rollout worker's token saying Hello as the learner, is refused), and its learner signs every checkpoint
// announcement with a key made for the run, which the run's readers verify. A real local run (nats-server, the
// four roles as processes, a killed rollout worker restarted with its token), tiny configuration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runLocal } from '../../lib/local/local-run.ts';
import type { LocalRoleTokens } from '../../lib/local/role-tokens.ts';
import { closeNats, connectNats, connectToOrchestrator, CheckpointStore, type WorkerRole } from '../../lib/transport/index.ts';
import { CHECKPOINT_MAX_PAYLOAD } from '../../lib/transport/nats-server.ts';
import { generateSigningKeys, loadVerifyKey, verifyCheckpoint } from '../../lib/checkpoint/sign.ts';
import { startNatsServer } from '../helpers/nats.ts';

const SFT = 6;
const GRPO = 3;
const TINY = [
  'data.source.kind=procedural', 'data.size=16', 'data.source.count=32', 'model.width=4', 'model.depth=1', 'sft.batchSize=4', 'grpo.groupSize=4',
  'grpo.samplesPerBatch=2', 'eval.samples=4', 'orchestrator.leaseSeconds=10', 'orchestrator.heartbeatSeconds=1',
  // above the workers' default receive limit (64 MiB): the local run passes its own to every worker (review23f: its
  // workers stopped at the Welcome)
  `orchestrator.maxMessageBytes=${128 * 1024 * 1024}`,
];

/** What a gRPC client that is not one of the run's processes gets: the refusals, as error messages. */
async function intruders(port: number, tokens: LocalRoleTokens): Promise<Record<string, string>> {
  const hello = async (role: WorkerRole, workerId: string, token?: () => string) => {
    try {
      const c = await connectToOrchestrator({ address: `127.0.0.1:${port}`, role, workerId, token: token?.(), capabilities: { device: 'cpu', max_batch: 1, max_in_flight: 1 }, connectTimeoutMs: 10_000 });
      await c.close();
      return 'accepted';
    } catch (e) {
      return (e as Error).message;
    }
  };
  // onStarted comes when the processes are spawned: the orchestrator may not listen yet
  let noToken = await hello('LEARNER', 'learner');
  for (let i = 0; i < 100 && /UNAVAILABLE/.test(noToken); i++) {
    await new Promise((r) => setTimeout(r, 200));
    noToken = await hello('LEARNER', 'learner');
  }
  return {
    noToken,
    unknownToken: await hello('ROLLOUT', 'rollout-0', () => 'not-a-token-of-this-run-0123456789'),
    rolloutAsLearner: await hello('LEARNER', 'learner', () => tokens.token('rollout-0')),
    learnerUnderAnotherId: await hello('LEARNER', 'impostor', () => tokens.token('learner')),
  };
}

test('the local run: gRPC only with each process\'s own role token, announcements signed with the run\'s key, and it trains', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'local-trust-'));
  // a NATS of the test's own, so that the run's announcements can be read after it ends
  const nats = await startNatsServer({ maxPayload: CHECKPOINT_MAX_PAYLOAD });
  const log: string[] = [];
  let refused: Promise<Record<string, string>> | undefined;
  let cmdlines: string[] = [];
  let tokens: LocalRoleTokens | undefined;
  try {
    const summary = await runLocal({
      out: dir,
      seed: 1,
      sftSteps: SFT,
      steps: GRPO,
      overrides: TINY,
      natsUrl: nats.url,
      log: (l) => log.push(l),
      onStarted: (sup, info) => {
        tokens = info.roleTokens;
        refused = intruders(info.grpcPort, info.roleTokens).then((r) => {
          // every process's command line, then a rollout worker killed: it comes back with the same token
          cmdlines = Object.values(sup.pids()).map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
          sup.kill('rollout-0');
          return r;
        });
      },
    });
    const tail = () => log.slice(-30).join('\n');
    const r = await refused!;
    assert.match(r.noToken!, /UNAUTHENTICATED/, tail());
    assert.match(r.unknownToken!, /UNAUTHENTICATED/);
    assert.match(r.rolloutAsLearner!, /PERMISSION_DENIED.*grants role ROLLOUT, not LEARNER/);
    assert.match(r.learnerUnderAnotherId!, /PERMISSION_DENIED.*grants worker id "learner", not "impostor"/);

    // the run's own processes still trained it to the end, the killed one back with its token
    assert.equal(summary.final_version, SFT + GRPO, tail());
    assert.ok((summary.restarts['rollout-0'] ?? 0) >= 1, 'rollout-0 was restarted');

    // its secrets: 0600 files in the run folder, a token in no process's command line
    for (const f of ['role-tokens', 'checkpoint.key', 'checkpoint.pub']) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    assert.ok(cmdlines.length >= 4, 'the command lines were read');
    for (const id of ['learner', 'rollout-0', 'reward-0']) {
      const token = tokens!.token(id);
      assert.ok(cmdlines.every((c) => !c.includes(token)), `${id}'s token is on no command line`);
      assert.match(readFileSync(join(dir, 'role-tokens'), 'utf8'), new RegExp(`^${id.split('-')[0]} ${id} ${token}$`, 'm'));
    }

    // every announcement carries a signature the run's public key verifies, and a reader with that key takes the last
    const pub = loadVerifyKey(join(dir, 'checkpoint.pub'));
    const nc = await connectNats({ url: nats.url, name: 'local-trust-test' });
    try {
      const store = await CheckpointStore.open(nc, { runId: summary.run_id, verifyKey: pub });
      assert.equal((await store.latest())?.version, summary.final_version);
      const jsm = await nc.jetstreamManager();
      const info = await jsm.streams.info(store.stream);
      const versions = new Set<number>();
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(store.stream, { seq });
        const ann = m.json<{ run_id: string; version: number; digest: string; meta: Record<string, unknown> }>();
        assert.equal(typeof ann.meta['signature'], 'string', `v${ann.version} is signed`);
        assert.ok(verifyCheckpoint(pub, summary.run_id, ann.version, ann.digest, ann.meta, ann.meta['signature']), `v${ann.version}'s signature verifies`);
        versions.add(ann.version);
      }
      for (let v = 1; v <= summary.final_version; v++) assert.ok(versions.has(v), `v${v} was announced`);
      // a reader with another key believes none of them
      const other = loadVerifyKey(generateSigningKeys().publicKeyPem);
      const stranger = await CheckpointStore.open(nc, { runId: summary.run_id, verifyKey: other });
      assert.equal(await stranger.latest(), null);
    } finally {
      await closeNats(nc);
    }
  } finally {
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
