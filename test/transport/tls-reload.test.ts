// Renewed TLS files taken without a restart (lib/transport/tls-reload.ts, docs/security.md "Certificate renewal"):
// the orchestrator's gRPC server (its certificate and key, the client CA bundle), a worker's reconnect, a NATS client's
// reconnect. Certificates by openssl (test/helpers/certs.ts); a real server over loopback; the files are replaced as a
// renewal would, and each check waits for an event (the refresh the server exposes, or a reload it reports).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { createHash, X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { startOrchestratorServer, type OrchestratorServer, type OrchestratorServerOptions, type WorkerSession } from '../../lib/transport/grpc-server.ts';
import { connectToOrchestrator, withReconnect, type ConnectOptions } from '../../lib/transport/grpc-client.ts';
import { connectNats } from '../../lib/transport/nats.ts';
import { spawnNatsServer } from '../../lib/transport/nats-server.ts';
import { CLOCK_SKEW_MS, loadTlsSet, type TlsReloadStatus } from '../../lib/transport/tls-reload.ts';
import { roleUri } from '../../lib/transport/cert-identity.ts';
import { datedCert, makeTestCerts, opensslAvailable, signClientCert } from '../helpers/certs.ts';
import { freePort } from '../helpers/nats.ts';
import { waitFor } from '../helpers/wait.ts';
import { requireTool } from '../k8s/tools.ts';
import { TransportError } from '../../lib/transport/errors.ts';

const SERVER_EXT = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n';
const clientSan = (workerId: string) => `URI:${roleUri('rollout')},URI:${roleUri('rollout', workerId)}`;
const clientExt = (workerId: string) => `subjectAltName=${clientSan(workerId)}\nextendedKeyUsage=clientAuth\n`;

function setUp(t: TestContext) {
  if (!opensslAvailable()) {
    t.skip('openssl unavailable');
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'tls-reload-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const certs = makeTestCerts(dir, { w1: clientSan('w1') });
  // the files the server reads, as a volume holds them: replaced below as a renewal replaces them
  const live = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key'), ca: join(dir, 'bundle.crt') };
  copyFileSync(certs.server.cert, live.cert);
  copyFileSync(certs.server.key, live.key);
  copyFileSync(certs.ca, live.ca);
  const ca1 = { cert: certs.ca, key: join(dir, 'ca.key') };
  return { dir, certs, live, ca1 };
}

/** A second CA, as a CA rotation adds one to the bundle. */
function newCa(dir: string, name: string): { cert: string; key: string } {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=${name}`, '-days', '1'], { cwd: dir, stdio: 'pipe' });
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}


const serialOf = (file: string) => new X509Certificate(readFileSync(file)).serialNumber;
/** The id a session's certificate credential carries (the first 16 hex digits of the certificate's sha256), computed here. */
const certCredentialId = (file: string) => `cert:${createHash('sha256').update(new X509Certificate(readFileSync(file)).raw).digest('hex').slice(0, 16)}`;

/** A worker's certificate files holding w1's certificate, and the certificate its renewal brings (same id, new key). */
function workerFiles({ dir, certs, ca1 }: NonNullable<ReturnType<typeof setUp>>) {
  const files = { cert: join(dir, 'worker.crt'), key: join(dir, 'worker.key') };
  copyFileSync(certs.clients['w1']!.cert, files.cert);
  copyFileSync(certs.clients['w1']!.key, files.key);
  return { files, renewed: signClientCert(dir, ca1, 'w1-renewed', 'w1', clientExt('w1')) };
}

/** The serial of the certificate the server presents to a new TLS connection (a handshake of its own, ALPN h2). */
function servedSerial(port: number, ca: string, client: { cert: string; key: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(ca), cert: readFileSync(client.cert), key: readFileSync(client.key), ALPNProtocols: ['h2'] }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      resolve(serial);
    });
    s.once('error', reject);
  });
}

async function serve(live: { cert: string; key: string; ca: string }, extra: Partial<OrchestratorServerOptions> = {}) {
  const sessions: WorkerSession[] = [];
  const server = await startOrchestratorServer({
    auth: { tls: { ...live, requireClientCert: true, refreshMs: 0 } },
    onConnect: async (s) => {
      await s.send({ welcome: { run_id: 'run-t', config_json: '{}', policy_version: 0, heartbeat_interval_ms: 0 } });
      sessions.push(s);
    },
    ...extra,
  });
  return { server, sessions };
}

const worker = (server: OrchestratorServer, ca: string, client: { cert: string; key: string }, workerId: string): ConnectOptions => ({
  address: server.address,
  role: 'ROLLOUT',
  workerId,
  capabilities: { device: 'cpu', max_batch: 1, max_in_flight: 1 },
  tls: { ca, ...client, serverName: 'localhost' },
  connectTimeoutMs: 5000,
});

test('renewed server files reach new handshakes without a restart: a new certificate, and a client CA added to the bundle', async (t) => {
  const env = setUp(t);
  if (!env) return;
  const { dir, certs, live, ca1 } = env;
  const reloads: TlsReloadStatus[] = [];
  // read again every 50 ms: the test waits for the reload the server reports, not for a time
  const { server, sessions } = await serve(live, { auth: { tls: { ...live, requireClientCert: true, refreshMs: 50 } }, onTlsReload: (st) => reloads.push(st) });
  try {
    const w1 = certs.clients['w1']!;
    assert.equal(await servedSerial(server.port, certs.ca, w1), serialOf(certs.server.cert));
    const before = await connectToOrchestrator(worker(server, certs.ca, w1, 'w1'));
    // a client certificate from a CA the bundle does not hold yet is refused
    const ca2 = newCa(dir, 'ca2');
    const w2 = signClientCert(dir, ca2, 'w2', 'w2', clientExt('w2'));
    await assert.rejects(connectToOrchestrator(worker(server, certs.ca, w2, 'w2')));

    // the renewal: a new server key and certificate, and the bundle gains the second CA (as the csi-driver's volume or
    // a rotated Secret changes its files)
    const renewed = signClientCert(dir, ca1, 'server2', 'server2', SERVER_EXT);
    writeFileSync(live.ca, Buffer.concat([readFileSync(certs.ca), readFileSync(ca2.cert)]));
    copyFileSync(renewed.key, live.key);
    copyFileSync(renewed.cert, live.cert);
    const st = await waitFor(() => reloads.find((r) => r.serial === serialOf(renewed.cert) && r.caCertificates === 2), 'the server to take the renewed files');
    assert.equal(st.error, undefined);
    // the expiry the orchestrator's gauge shows (recovery_grpo_tls_certificate_expiry_timestamp_seconds) is the renewed one's
    assert.equal(st.notAfterMs, Date.parse(new X509Certificate(readFileSync(renewed.cert)).validTo));
    assert.deepEqual(server.tlsStatus(), st);

    assert.equal(await servedSerial(server.port, certs.ca, w1), serialOf(renewed.cert), 'a new connection sees the renewed certificate');
    const after = await connectToOrchestrator(worker(server, certs.ca, w2, 'w2'));
    assert.deepEqual(sessions.map((s) => s.workerId), ['w1', 'w2'], 'the client certificate of the added CA is welcomed');
    assert.equal(sessions[0]!.isOpen, true, 'the connection made before the renewal keeps going');
    await before.send({ heartbeat: { active_task_ids: [] } });
    for await (const m of sessions[0]!.messages) {
      assert.equal(m.kind, 'heartbeat');
      break;
    }
    await before.close();
    await after.close();
  } finally {
    await server.close();
  }
});

test('renewed files that cannot be used keep the pair in use, reported once naming the file; good files then take over', async (t) => {
  const env = setUp(t);
  if (!env) return;
  const { dir, certs, live, ca1 } = env;
  const errors: string[] = [];
  const { server } = await serve(live, { onTlsError: (m) => errors.push(m), onTlsReload: () => {} });
  try {
    const w1 = certs.clients['w1']!;
    const old = serialOf(certs.server.cert);
    const check = async (pattern: RegExp) => {
      const st = server.reloadTls()!;
      assert.match(st.error ?? '', pattern);
      assert.deepEqual([st.serial, st.generation], [old, 1], 'the pair in use is kept');
      assert.equal(await servedSerial(server.port, certs.ca, w1), old, 'and served');
      const c = await connectToOrchestrator(worker(server, certs.ca, w1, 'w1'));
      await c.close();
    };
    // a certificate that does not parse (a half-written file)
    writeFileSync(live.cert, readFileSync(certs.server.cert).subarray(0, 200));
    await check(new RegExp(`auth\\.tls\\.cert ${live.cert.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a PEM certificate`));
    server.reloadTls(); // the same error again is not reported again
    // a renewed certificate beside the old key
    const renewed = signClientCert(dir, ca1, 'server2', 'server2', SERVER_EXT);
    copyFileSync(renewed.cert, live.cert);
    await check(/auth\.tls\.key .*tls\.key does not match the certificate auth\.tls\.cert .*tls\.crt/);
    // a CA bundle that holds no certificate
    copyFileSync(renewed.key, live.key);
    writeFileSync(live.ca, 'not a certificate\n');
    await check(/auth\.tls\.ca .*bundle\.crt: holds no PEM certificate/);
    // a CA bundle cut inside its second certificate (half-written): refused, not taken with its first certificate
    const caText = readFileSync(certs.ca, 'utf8');
    writeFileSync(live.ca, caText + caText.slice(0, Math.floor(caText.length / 2)));
    await check(/auth\.tls\.ca .*bundle\.crt: 2 '-----BEGIN' markers but 1 complete PEM blocks/);
    // a certificate chain cut the same way
    copyFileSync(certs.ca, live.ca);
    writeFileSync(live.cert, readFileSync(renewed.cert, 'utf8') + caText.slice(0, Math.floor(caText.length / 2)));
    await check(/auth\.tls\.cert .*tls\.crt: 2 '-----BEGIN' markers but 1 complete PEM blocks/);
    // a certificate (for the key in place) that has expired, and one not yet valid: refused naming the file and the date
    copyFileSync(datedCert(dir, ca1, renewed.key, 'expired', '20200101000000Z', '20200102000000Z'), live.cert);
    await check(/auth\.tls\.cert .*tls\.crt \(serial \w+\) expired at 2020-01-02T00:00:00\.000Z/);
    copyFileSync(datedCert(dir, ca1, renewed.key, 'future', '20990101000000Z', '20990102000000Z'), live.cert);
    await check(/auth\.tls\.cert .*tls\.crt \(serial \w+\) is not valid before 2099-01-01T00:00:00\.000Z/);
    assert.equal(errors.length, 7, errors.join('\n'));
    copyFileSync(renewed.cert, live.cert);
    // the set complete again: taken
    copyFileSync(certs.ca, live.ca);
    const st = server.reloadTls()!;
    assert.deepEqual([st.serial, st.generation, st.error], [serialOf(renewed.cert), 2, undefined]);
    assert.equal(await servedSerial(server.port, certs.ca, w1), serialOf(renewed.cert));
  } finally {
    await server.close();
  }
});

test('a worker reconnect presents its renewed certificate (connectToOrchestrator reads the files on each dial)', async (t) => {
  const env = setUp(t);
  if (!env) return;
  const { certs, live } = env;
  const { server, sessions } = await serve(live);
  try {
    const { files, renewed } = workerFiles(env);
    const opts = worker(server, certs.ca, files, 'w1');
    // the worker's reconnect loop (lib/worker/runtime.ts: withReconnect around connectToOrchestrator with the same
    // options): its certificate is renewed while it is connected, then the orchestrator drops the stream
    const attempts = await withReconnect(
      async (attempt) => {
        const c = await connectToOrchestrator(opts);
        if (attempt === 1) {
          copyFileSync(renewed.key, files.key);
          copyFileSync(renewed.cert, files.cert);
          const s = await waitFor(() => sessions[0], 'the first session');
          s.fail(grpc.status.UNAVAILABLE, 'dropped');
          for await (const _ of c.messages); // throws UNAVAILABLE: the loop dials again
        }
        await c.close();
        return attempt;
      },
      { initialDelayMs: 1, maxDelayMs: 1, maxAttempts: 3 },
    );
    assert.equal(attempts, 2);
    assert.equal(sessions.length, 2);
    assert.equal(sessions[0]!.credential.id, certCredentialId(certs.clients['w1']!.cert));
    assert.equal(sessions[1]!.credential.id, certCredentialId(renewed.cert), 'the reconnect presents the renewed certificate');
  } finally {
    await server.close();
  }
});

test('a NATS client reconnect presents its renewed certificate (nats.js reads certFile/keyFile/caFile on each dial)', async (t) => {
  const natsServer = requireTool(t, 'nats-server', 'bash scripts/ensure-nats-server.sh');
  if (!natsServer) return;
  const env = setUp(t);
  if (!env) return;
  const { dir, certs, ca1 } = env;
  const monitor = await freePort();
  writeFileSync(
    join(dir, 'nats.conf'),
    [
      `http_port: ${monitor}`,
      `tls { cert_file: "${certs.server.cert}", key_file: "${certs.server.key}", ca_file: "${certs.ca}", verify_and_map: true }`,
      `authorization { users = [ { user: "${roleUri('rollout')}" } ] }`,
      '',
    ].join('\n'),
  );
  const nats = await spawnNatsServer({ port: await freePort(), storeDir: join(dir, 'js'), binary: natsServer, extraArgs: ['-c', join(dir, 'nats.conf')] });
  t.after(() => nats.stop());
  const files = { certFile: join(dir, 'worker.crt'), keyFile: join(dir, 'worker.key'), caFile: certs.ca };
  copyFileSync(certs.clients['w1']!.cert, files.certFile);
  copyFileSync(certs.clients['w1']!.key, files.keyFile);
  const fingerprint = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256.replace(/:/g, '').toLowerCase();
  /** The SHA-256 of the certificate the server holds for the connection named `name` (connz with auth). */
  const presented = async (name: string): Promise<string | undefined> => {
    const r = await fetch(`http://127.0.0.1:${monitor}/connz?auth=true`);
    const body = (await r.json()) as { connections?: { name?: string; tls_peer_certs?: { cert_sha256?: string }[] }[] };
    return body.connections?.find((c) => c.name === name)?.tls_peer_certs?.[0]?.cert_sha256;
  };
  const nc = await connectNats({ url: nats.url.replace('nats://', 'tls://').replace('127.0.0.1', 'localhost'), name: 'renewing', tls: files });
  t.after(() => nc.close());
  const original = fingerprint(certs.clients['w1']!.cert);
  assert.equal(await waitFor(() => presented('renewing'), 'the connection in connz'), original);
  const renewed = signClientCert(dir, ca1, 'w1-renewed', 'w1', clientExt('w1'));
  copyFileSync(renewed.key, files.keyFile);
  copyFileSync(renewed.cert, files.certFile);
  await nc.reconnect();
  const now = await waitFor(async () => {
    const p = await presented('renewing');
    return p !== undefined && p !== original ? p : undefined;
  }, 'the reconnected connection in connz');
  assert.equal(now, fingerprint(renewed.cert));
  await nc.flush();
});

test('a worker dial that reads a half-renewed pair (new certificate, old key) is retried by the reconnect loop, naming the file; the key put back, the next dial succeeds', async (t) => {
  const env = setUp(t);
  if (!env) return;
  const { certs, live } = env;
  const { server, sessions } = await serve(live);
  try {
    const { files, renewed } = workerFiles(env);
    copyFileSync(renewed.cert, files.cert); // the new certificate is in place, the new key not yet
    const opts = worker(server, certs.ca, files, 'w1');
    // the runtime's predicate (lib/worker/runtime.ts): a retryable TransportError
    const isRetryable = (e: unknown) => e instanceof TransportError && e.retryable;
    // files that stay mismatched: every dial fails with an error naming the key file, the loop's attempts bound it
    const bad = await withReconnect(() => connectToOrchestrator(opts), { initialDelayMs: 1, maxDelayMs: 1, maxAttempts: 2, isRetryable }).then(
      () => assert.fail('a mismatched pair dialled'),
      (e: unknown) => e,
    );
    assert.ok(bad instanceof TransportError && bad.code === grpc.status.UNAVAILABLE, String(bad));
    assert.match(bad.message, new RegExp(`tls.key ${files.key} does not match the certificate tls.cert ${files.cert}`));
    // the renewal completes while the loop waits: the next dial presents the renewed pair
    const errors: unknown[] = [];
    const attempts = await withReconnect(
      async (attempt) => {
        const c = await connectToOrchestrator(opts);
        await c.close();
        return attempt;
      },
      {
        initialDelayMs: 1,
        maxDelayMs: 1,
        maxAttempts: 3,
        isRetryable,
        onRetry: ({ error }) => {
          errors.push(error);
          copyFileSync(renewed.key, files.key);
        },
      },
    );
    assert.equal(attempts, 2);
    assert.match(String(errors[0]), /does not match the certificate/);
    assert.equal(sessions.at(-1)!.credential.id, certCredentialId(renewed.cert));
  } finally {
    await server.close();
  }
});

test('the orchestrator does not start on an expired certificate: the error names the file and the date', async (t) => {
  const env = setUp(t);
  if (!env) return;
  const { dir, live, ca1 } = env;
  copyFileSync(datedCert(dir, ca1, live.key, 'expired', '20200101000000Z', '20200102000000Z'), live.cert);
  const started = await startOrchestratorServer({ auth: { tls: { ...live, requireClientCert: true, refreshMs: 0 } }, onConnect: async () => {} }).then(
    async (server) => {
      await server.close();
      return undefined;
    },
    (e: Error) => e,
  );
  assert.ok(started, 'the server started on an expired certificate');
  assert.match(started.message, new RegExp(`auth\\.tls\\.cert ${live.cert.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(serial \\w+\\) expired at 2020-01-02T00:00:00\\.000Z`));
});

test('a certificate whose start lies less than CLOCK_SKEW_MS ahead of this clock is taken (an issuer whose clock runs ahead), one further ahead is refused', (t) => {
  const env = setUp(t);
  if (!env) return;
  const { dir, live, ca1 } = env;
  const cert = datedCert(dir, ca1, live.key, 'skewed', '20990101000000Z', '20990201000000Z');
  const start = Date.parse('2099-01-01T00:00:00Z');
  const files = { cert, key: live.key };
  assert.equal(loadTlsSet(files, 'auth.tls', start - CLOCK_SKEW_MS + 1000).serial, serialOf(cert));
  assert.throws(() => loadTlsSet(files, 'auth.tls', start - CLOCK_SKEW_MS - 1000), /auth\.tls\.cert .*skewed\.crt \(serial \w+\) is not valid before 2099-01-01T00:00:00\.000Z/);
  assert.throws(() => loadTlsSet(files, 'auth.tls', Date.parse('2099-02-01T00:00:01Z')), /expired at 2099-02-01T00:00:00\.000Z/);
});
