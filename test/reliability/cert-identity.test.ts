// Identity per role from the mTLS client certificate (issue #16, probe 1): with mutual TLS, a certificate whose
// URI SAN is spiffe://recovery-grpo/role/<role>[/<worker-id>] connects only as that role (and worker id); a
// certificate that names no role needs a token that grants one. Real gRPC over 127.0.0.1 with certificates made
// here by openssl; the unit cases check the SAN parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  certificateGrant,
  connectToOrchestrator,
  roleUri,
  startOrchestratorServer,
  uriSansOf,
  type ServerAuth,
  type WorkerRole,
} from '../../lib/transport/index.ts';
import { makeTestCerts, opensslAvailable, type TestCerts } from '../helpers/certs.ts';

test('the role URI of a certificate: parsed, and refused when ambiguous or unknown', () => {
  assert.deepEqual(uriSansOf('DNS:localhost, URI:spiffe://recovery-grpo/role/learner, IP Address:127.0.0.1'), ['spiffe://recovery-grpo/role/learner']);
  assert.deepEqual(certificateGrant('URI:spiffe://recovery-grpo/role/rollout'), { role: 'ROLLOUT' });
  assert.deepEqual(certificateGrant('URI:spiffe://recovery-grpo/role/reward/reward-0'), { role: 'REWARD', workerId: 'reward-0' });
  assert.equal(certificateGrant('DNS:localhost, URI:https://example.org/x'), undefined);
  assert.equal(certificateGrant(undefined), undefined);
  assert.throws(() => certificateGrant('URI:spiffe://recovery-grpo/role/learner, URI:spiffe://recovery-grpo/role/rollout'), /names 2 roles/);
  assert.throws(() => certificateGrant('URI:spiffe://recovery-grpo/role/admin'), /is not spiffe:\/\/recovery-grpo\/role\/<rollout\|reward\|learner>/);
  assert.throws(() => certificateGrant('URI:spiffe://recovery-grpo/role/learner/a/b'), /is not spiffe/);
  assert.equal(roleUri('rollout', 'rollout-3'), 'spiffe://recovery-grpo/role/rollout/rollout-3');
  // a per-pod certificate (k8s/components/per-pod-identity): the role URI (NATS's user) and the worker URI, either order
  const R = 'URI:spiffe://recovery-grpo/role/rollout';
  assert.deepEqual(certificateGrant(`${R}, ${R}/pod-a`), { role: 'ROLLOUT', workerId: 'pod-a' });
  assert.deepEqual(certificateGrant(`DNS:x, ${R}/pod-a, URI:https://example.org/y, ${R}`), { role: 'ROLLOUT', workerId: 'pod-a' });
  // any other pair is refused, naming the URIs
  assert.throws(() => certificateGrant(`${R}, URI:spiffe://recovery-grpo/role/learner/pod-a`), /names 2 roles, ROLLOUT and LEARNER \(spiffe:\/\/recovery-grpo\/role\/rollout, spiffe:\/\/recovery-grpo\/role\/learner\/pod-a\)/);
  assert.throws(() => certificateGrant(`${R}/pod-a, ${R}/pod-b`), /names 2 worker ids, "pod-a" and "pod-b"/);
  assert.throws(() => certificateGrant(`${R}, ${R}`), /names the role URI twice/);
  assert.throws(() => certificateGrant(`${R}/a, ${R}/a`), /names the worker URI twice \(spiffe:\/\/recovery-grpo\/role\/rollout\/a, spiffe:\/\/recovery-grpo\/role\/rollout\/a\)/);
  // review30 F6: an empty worker segment, a role name not exactly lower case (no NATS user is named so)
  assert.throws(() => certificateGrant(`${R}/`), /spiffe:\/\/recovery-grpo\/role\/rollout\/ has an empty worker id/);
  assert.throws(() => certificateGrant(`${R}, ${R}/`), /has an empty worker id/);
  assert.throws(() => certificateGrant('URI:spiffe://recovery-grpo/role/LEARNER'), /spiffe:\/\/recovery-grpo\/role\/LEARNER is not spiffe:\/\/recovery-grpo\/role\/<rollout\|reward\|learner>/);
  assert.throws(() => certificateGrant('URI:spiffe://recovery-grpo/role/Rollout/a'), /role\/Rollout\/a is not spiffe/);
  // review30 F2: any other SAN spelling a spiffe://recovery-grpo/ name is refused, naming it (nats-server maps email
  // addresses and DNS names before URIs, and lower-cases a URI's scheme: it could be another NATS user)
  const L = 'spiffe://recovery-grpo/role/learner';
  assert.throws(() => certificateGrant(`DNS:${L}, ${R}, ${R}/pod-a`), /DNS SAN "spiffe:\/\/recovery-grpo\/role\/learner" spells a spiffe:\/\/recovery-grpo\/ name/);
  assert.throws(() => certificateGrant(`email:${L}, ${R}, ${R}/pod-a`), /email SAN "spiffe:\/\/recovery-grpo\/role\/learner" spells/);
  assert.throws(() => certificateGrant(`${R}, ${R}/pod-a, URI:SPIFFE://recovery-grpo/role/learner`), /URI SAN "SPIFFE:\/\/recovery-grpo\/role\/learner" spells/);
  assert.throws(() => certificateGrant('DNS:spiffe://recovery-grpo/orchestrator'), /DNS SAN "spiffe:\/\/recovery-grpo\/orchestrator" spells/);
  assert.throws(() => certificateGrant(`${R}, URI:spiffe://Recovery-GRPO/role/orchestrator`), /URI SAN "spiffe:\/\/Recovery-GRPO\/role\/orchestrator" spells/);
  assert.throws(() => certificateGrant(`${R}, URI:spiffe://recovery-grpo/orchestrator`), /URI SAN "spiffe:\/\/recovery-grpo\/orchestrator" spells/);
  // other names beside the role URIs stay allowed
  assert.deepEqual(certificateGrant(`DNS:worker.example, email:ops@example.org, IP Address:127.0.0.1, URI:spiffe://other/role/learner, ${R}`), { role: 'ROLLOUT' });
  assert.throws(() => certificateGrant(`${R}, ${R}/a, ${R}/a`), /names 3 role URIs/);
  assert.throws(() => certificateGrant(`${R}, ${R}/bad id`), /worker id "bad id"/);
});

test('mutual TLS: the client certificate decides the role a Hello may claim', { timeout: 60_000 }, async (t) => {
  if (!opensslAvailable()) return t.skip('openssl is not installed: cannot make test certificates');
  const dir = mkdtempSync(join(tmpdir(), 'cert-identity-'));
  try {
    const certs = makeTestCerts(dir, {
      learner: `URI:${roleUri('learner')}`,
      rollout: `URI:${roleUri('rollout')}`,
      reward0: `URI:${roleUri('reward', 'reward-0')}`,
      anonymous: 'DNS:worker.example',
    });
    const welcomed: string[] = [];
    const serve = (auth: Omit<ServerAuth, 'tls'>) =>
      startOrchestratorServer({
        auth: { ...auth, tls: { cert: certs.server.cert, key: certs.server.key, ca: certs.ca, requireClientCert: true } },
        onConnect: async (s) => {
          welcomed.push(`${s.role}/${s.workerId}`);
          await s.send({ welcome: { run_id: 'cert-run', config_json: '{}', policy_version: 0, heartbeat_interval_ms: 0 } });
        },
      });
    const connect = (address: string, client: keyof TestCerts['clients'], role: WorkerRole, workerId: string, token?: string) =>
      connectToOrchestrator({
        address,
        role,
        workerId,
        token,
        tls: { ca: certs.ca, cert: certs.clients[client]!.cert, key: certs.clients[client]!.key, serverName: 'localhost' },
        capabilities: { device: 'cpu', max_batch: 1, max_in_flight: 1 },
        connectTimeoutMs: 5000,
      });

    // certificates alone (no token): each connects as its role only
    const server = await serve({});
    try {
      for (const [client, role, id] of [['learner', 'LEARNER', 'learner-0'], ['rollout', 'ROLLOUT', 'rollout-7'], ['reward0', 'REWARD', 'reward-0']] as const) {
        const c = await connect(server.address, client, role, id);
        await c.close();
      }
      assert.deepEqual(welcomed, ['LEARNER/learner-0', 'ROLLOUT/rollout-7', 'REWARD/reward-0']);
      // the probe: a rollout worker's certificate posing as the learner
      await assert.rejects(connect(server.address, 'rollout', 'LEARNER', 'learner-0'), /PERMISSION_DENIED.*the client certificate grants role ROLLOUT, not LEARNER/);
      await assert.rejects(connect(server.address, 'reward0', 'REWARD', 'reward-1'), /PERMISSION_DENIED.*the client certificate grants worker id "reward-0", not "reward-1"/);
      await assert.rejects(connect(server.address, 'anonymous', 'ROLLOUT', 'rollout-1'), /PERMISSION_DENIED.*the client certificate names no role/);
      assert.equal(welcomed.length, 3, 'no refused Hello reached onConnect');
    } finally {
      await server.close();
    }

    // with the shared token beside mutual TLS: a certificate without a role URI is fine (the token grants every
    // role), but a certificate that names a role still binds it
    const TOKEN = 'shared-token-0123456789abcdef';
    const withToken = await serve({ token: TOKEN });
    try {
      const c = await connect(withToken.address, 'anonymous', 'REWARD', 'reward-9', TOKEN);
      await c.close();
      await assert.rejects(connect(withToken.address, 'rollout', 'LEARNER', 'learner-0', TOKEN), /PERMISSION_DENIED.*grants role ROLLOUT, not LEARNER/);
    } finally {
      await withToken.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
