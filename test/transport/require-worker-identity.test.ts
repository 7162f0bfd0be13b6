// auth.requireWorkerIdentity (--require-worker-identity; docs/security.md): with it on, a rollout, reward or learner
// session must come with a credential that pins the worker id its Hello presents. Each kind that does not (the shared
// token, a wildcard role token, a certificate with only its role URI, no credential) is refused naming it; a pinned
// role token or a certificate naming the worker is welcomed; with it off all of them are welcomed, as before.
// A real gRPC server over loopback; certificates by openssl (test/helpers/certs.ts).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOrchestratorServer, type ServerAuth, type WorkerSession } from '../../lib/transport/grpc-server.ts';
import { connectToOrchestrator, type ConnectOptions } from '../../lib/transport/grpc-client.ts';
import { roleUri } from '../../lib/transport/cert-identity.ts';
import type { WorkerRole } from '../../lib/transport/proto.ts';
import { makeTestCerts, opensslAvailable } from '../helpers/certs.ts';

const SHARED = 'shared-token-0123456789abcdef';
const WILDCARD = 'wildcard-token-0123456789abcdef';
const PINNED = 'pinned-token-0123456789abcdef';
const ROLE_TOKENS = [
  { role: 'REWARD' as const, token: WILDCARD },
  { role: 'LEARNER' as const, workerId: 'learner-0', token: PINNED },
];

async function serve(auth: ServerAuth) {
  const welcomed: WorkerSession[] = [];
  const server = await startOrchestratorServer({
    auth,
    onConnect: async (s) => {
      welcomed.push(s);
      await s.send({ welcome: { run_id: 'run-t', config_json: '{}', policy_version: 0, heartbeat_interval_ms: 0 } });
    },
  });
  return { server, welcomed };
}

const dial = (address: string, role: WorkerRole, workerId: string, extra: Partial<ConnectOptions> = {}) =>
  connectToOrchestrator({ address, role, workerId, capabilities: { device: 'cpu', max_batch: 1, max_in_flight: 1 }, connectTimeoutMs: 5000, ...extra });

async function welcomedAs(address: string, role: WorkerRole, workerId: string, extra: Partial<ConnectOptions> = {}): Promise<void> {
  const c = await dial(address, role, workerId, extra);
  await c.close();
}

test('tokens: the shared token and a wildcard role token are refused naming their kind, a pinned role token welcomed; off: all welcomed', async () => {
  for (const requireWorkerIdentity of [true, false]) {
    const { server, welcomed } = await serve({ token: SHARED, roleTokens: ROLE_TOKENS, requireWorkerIdentity });
    try {
      const shared = dial(server.address, 'ROLLOUT', 'rollout-0', { token: SHARED });
      const wildcard = dial(server.address, 'REWARD', 'reward-0', { token: WILDCARD });
      if (requireWorkerIdentity) {
        await assert.rejects(shared, /PERMISSION_DENIED.*requires a per-worker identity \(auth\.requireWorkerIdentity\), and ROLLOUT "rollout-0" connected with the shared token, which grants every role and worker id: it needs a credential naming worker id "rollout-0"/);
        await assert.rejects(wildcard, /PERMISSION_DENIED.*REWARD "reward-0" connected with a role token whose line grants any worker id \(\*\).*role-token line "reward reward-0 <token>"/);
      } else {
        await (await shared).close();
        await (await wildcard).close();
      }
      await welcomedAs(server.address, 'LEARNER', 'learner-0', { token: PINNED });
      const kinds = welcomed.map((s) => `${s.credential.kind}:${s.credential.pinned}`);
      assert.deepEqual(kinds, requireWorkerIdentity ? ['token:true'] : ['shared:false', 'token:false', 'token:true']);
    } finally {
      await server.close();
    }
  }
});

test('start-up: requireWorkerIdentity where no configured credential can pin a worker id is refused, saying what to configure', async (t) => {
  const cases: [string, ServerAuth, RegExp][] = [
    ['no credential', {}, /has no credential at all/],
    ['the shared token only', { token: SHARED }, /has the shared token:/],
    ['wildcard role tokens only', { roleTokens: [{ role: 'REWARD', token: WILDCARD }] }, /has 1 role token\(s\), each for any worker id \(\*\):/],
  ];
  const certs = certsOrSkip(t);
  if (certs) cases.push(['TLS without client certificates', { token: SHARED, tls: { ...certs.server, refreshMs: 0 } }, /has the shared token, TLS without client certificates:/]);
  for (const [name, auth, pattern] of cases) {
    const started = await serve({ ...auth, requireWorkerIdentity: true }).then(
      async ({ server }) => {
        await server.close();
        return undefined;
      },
      (e: Error) => e,
    );
    assert.ok(started, `${name}: started, and every worker would be refused`);
    assert.match(started.message, /^auth\.requireWorkerIdentity \(--require-worker-identity\) needs a credential that can pin a worker id/, name);
    assert.match(started.message, pattern, name);
    assert.match(started.message, /Turn on mutual TLS .* or give a role-token file with at least one line naming a worker id/, name);
  }
});

function certsOrSkip(t: TestContext) {
  if (!opensslAvailable()) {
    t.skip('openssl unavailable');
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'worker-identity-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return makeTestCerts(dir, {
    roleWide: `URI:${roleUri('rollout')}`,
    pod: `URI:${roleUri('rollout')},URI:${roleUri('rollout', 'rollout-7')}`,
    single: `URI:${roleUri('reward', 'reward-3')}`,
  });
}

test('certificates: one with only the role URI is refused naming what it lacks (also beside the shared token); one naming the worker welcomed; off: all welcomed', async (t) => {
  const certs = certsOrSkip(t);
  if (!certs) return;
  const tlsOf = (name: string) => ({ tls: { ca: certs.ca, ...certs.clients[name]!, serverName: 'localhost' } });
  for (const requireWorkerIdentity of [true, false]) {
    const { server, welcomed } = await serve({ token: SHARED, tls: { ...certs.server, ca: certs.ca, requireClientCert: true, refreshMs: 0 }, requireWorkerIdentity });
    const { server: certOnly, welcomed: certWelcomed } = await serve({ tls: { ...certs.server, ca: certs.ca, requireClientCert: true, refreshMs: 0 }, requireWorkerIdentity });
    try {
      if (requireWorkerIdentity) {
        await assert.rejects(dial(certOnly.address, 'ROLLOUT', 'rollout-1', tlsOf('roleWide')), /PERMISSION_DENIED.*ROLLOUT "rollout-1" connected with a client certificate without a worker URI \(it names only spiffe:\/\/recovery-grpo\/role\/<role>\).*URI spiffe:\/\/recovery-grpo\/role\/rollout\/rollout-1/);
        await assert.rejects(dial(server.address, 'ROLLOUT', 'rollout-1', { ...tlsOf('roleWide'), token: SHARED }), /PERMISSION_DENIED.*connected with a client certificate without a worker URI/);
      } else {
        await welcomedAs(certOnly.address, 'ROLLOUT', 'rollout-1', tlsOf('roleWide'));
        await welcomedAs(server.address, 'ROLLOUT', 'rollout-1', { ...tlsOf('roleWide'), token: SHARED });
      }
      // pinned certificates: both shapes (role and worker URI; the worker URI alone), alone or beside the shared token
      await welcomedAs(certOnly.address, 'ROLLOUT', 'rollout-7', tlsOf('pod'));
      await welcomedAs(certOnly.address, 'REWARD', 'reward-3', tlsOf('single'));
      await welcomedAs(server.address, 'ROLLOUT', 'rollout-7', { ...tlsOf('pod'), token: SHARED });
      const kinds = (ss: WorkerSession[]) => ss.map((s) => `${s.workerId}:${s.credential.kind}:${s.credential.pinned}`);
      assert.deepEqual(kinds(certWelcomed), [...(requireWorkerIdentity ? [] : ['rollout-1:cert:false']), 'rollout-7:cert:true', 'reward-3:cert:true']);
      assert.deepEqual(kinds(welcomed), [...(requireWorkerIdentity ? [] : ['rollout-1:cert:false']), 'rollout-7:cert:true']);
    } finally {
      await server.close();
      await certOnly.close();
    }
  }
});
