// When the certificates of a run's connections expire (lib/transport/certificate-expiry.ts): the watch reads the
// files' certificates as they are (a renewal moves the value, an expired one is reported, a bad file keeps the last
// value and is said once, naming it); the certificate a real nats-server serves is read by a handshake of its own
// (verified clients or not; a server without TLS or none at all named in the error); a real rollout worker over TLS
// (gRPC with a client certificate, NATS with one) shows its two on /metrics as
// recovery_grpo_tls_certificate_expiry_timestamp_seconds, what the renewal alerts read
// (k8s/monitoring/prometheusrule.yaml). Certificates by openssl (test/helpers/certs.ts).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { CertificateExpiryWatch, clientCertificateFiles, leafNotAfterMs, natsServedCertificate, natsServerCertificate, type PresentedCertificate } from '../../lib/transport/certificate-expiry.ts';
import { spawnNatsServer, type NatsServerProcess } from '../../lib/transport/nats-server.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { runRolloutWorker } from '../../rollout-worker/index.ts';
import { roleUri } from '../../lib/transport/cert-identity.ts';
import { datedCert, makeTestCerts, opensslAvailable } from '../helpers/certs.ts';
import { freePort } from '../helpers/nats.ts';
import { waitFor } from '../helpers/wait.ts';
import { startFakeOrchestrator, tinyConfig } from '../roles/helpers.ts';

function setUp(t: TestContext) {
  if (!opensslAvailable()) {
    t.skip('openssl unavailable');
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'cert-expiry-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // the worker's gRPC certificate names its role (a certificate without one needs a token as well)
  return { dir, certs: makeTestCerts(dir, { worker: `URI:${roleUri('rollout')}`, nats: '' }) };
}

const notAfterOf = (file: string) => Date.parse(new X509Certificate(readFileSync(file)).validTo);

test('the watch reports each file\'s certificate as it is: a renewal moves it, an expired one is reported, a bad file keeps the last value and is said once', async (t) => {
  const s = setUp(t);
  if (!s) return;
  const { dir, certs } = s;
  const grpcCert = join(dir, 'tls.crt');
  copyFileSync(certs.clients['worker']!.cert, grpcCert);
  const seen: [PresentedCertificate, number][] = [];
  const errors: string[] = [];
  const watch = new CertificateExpiryWatch(clientCertificateFiles({ grpcCert, natsCert: certs.clients['nats']!.cert }), {
    refreshMs: 0,
    onExpiry: (c, ms) => seen.push([c, ms]),
    onError: (m) => errors.push(m),
  });
  t.after(() => watch.close());
  await watch.started;
  // read at start, one value per file: the leaf's notAfter
  assert.deepEqual(seen, [['grpc_client', notAfterOf(grpcCert)], ['nats_client', notAfterOf(certs.clients['nats']!.cert)]]);
  assert.equal(leafNotAfterMs(grpcCert, '--tls-cert'), notAfterOf(grpcCert));
  // the library's options may hold PEM text instead of a path: read as it is
  assert.equal(leafNotAfterMs(readFileSync(grpcCert, 'utf8'), '--tls-cert'), notAfterOf(grpcCert));
  assert.throws(() => leafNotAfterMs('-----BEGIN CERTIFICATE-----\nMIIB', '--tls-cert'), /^Error: --tls-cert \(PEM text\): holds no complete PEM certificate$/);

  // a renewal that brings an expired certificate: reported as it is (the critical alert fires on a notAfter in the past)
  const ca = { cert: certs.ca, key: join(dir, 'ca.key') };
  copyFileSync(datedCert(dir, ca, certs.clients['worker']!.key, 'expired', '20200101000000Z', '20200102000000Z'), grpcCert);
  seen.length = 0;
  await watch.refresh();
  assert.deepEqual(seen.find(([c]) => c === 'grpc_client'), ['grpc_client', Date.parse('2020-01-02T00:00:00Z')]);
  assert.equal(watch.expiries().get('grpc_client'), Date.parse('2020-01-02T00:00:00Z'));

  // a half-written file: the last value stays, the error names the file, once for two refreshes
  writeFileSync(grpcCert, '-----BEGIN CERTIFICATE-----\nMIIB');
  seen.length = 0;
  await watch.refresh();
  await watch.refresh();
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0]!, new RegExp(`^--tls-cert ${grpcCert.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: holds no complete PEM certificate`));
  assert.deepEqual(seen.map(([c]) => c), ['nats_client', 'nats_client'], 'the other file is still read');
  assert.equal(watch.expiries().get('grpc_client'), Date.parse('2020-01-02T00:00:00Z'));

  // the renewed file arrives: read again, the error said again if it comes back
  copyFileSync(certs.clients['worker']!.cert, grpcCert);
  await watch.refresh();
  assert.equal(watch.expiries().get('grpc_client'), notAfterOf(grpcCert));
  rmSync(grpcCert);
  await watch.refresh();
  assert.equal(errors.length, 2);
  assert.match(errors[1]!, /--tls-cert .*tls\.crt/);
});

test('the certificate a nats-server serves, read by a handshake of its own: with verified clients or not, expired included; no TLS or no server named', async (t) => {
  const s = setUp(t);
  if (!s) return;
  const { dir, certs } = s;
  const ca = { cert: certs.ca, key: join(dir, 'ca.key') };
  // served: an expired certificate for the server's key (the server starts with it; its clients would refuse it)
  const expired = datedCert(dir, ca, certs.server.key, 'nats-expired', '20200101000000Z', '20200102000000Z');
  const servers: NatsServerProcess[] = [];
  try {
    const start = async (name: string, extraArgs: string[]) => {
      const port = await freePort();
      servers.push(await spawnNatsServer({ port, storeDir: join(dir, name), extraArgs }));
      return `nats://127.0.0.1:${port}`;
    };
    const verified = await start('v', ['--tlsverify', '--tlscert', certs.server.cert, '--tlskey', certs.server.key, '--tlscacert', certs.ca]);
    const tlsOnly = await start('t', ['--tls', '--tlscert', expired, '--tlskey', certs.server.key]);
    const plain = await start('p', []);
    const client = { certFile: certs.clients['nats']!.cert, keyFile: certs.clients['nats']!.key };
    const got = await natsServedCertificate(verified, client);
    assert.equal(got.notAfterMs, notAfterOf(certs.server.cert));
    assert.equal(got.serial, new X509Certificate(readFileSync(certs.server.cert)).serialNumber);
    // closed cleanly: every minute of a run must not put an error in nats-server's log (a reset logged
    // "TLS handshake error: EOF")
    await new Promise((r) => setTimeout(r, 200));
    assert.doesNotMatch(servers[0]!.logTail(), /\[ERR\]/);
    // without a client certificate too: the server's certificate comes before it asks for the client's
    assert.equal((await natsServedCertificate(verified, {})).notAfterMs, notAfterOf(certs.server.cert));
    // an expired one is read as it is (the chain is not verified: a date is read, nothing trusted)
    assert.equal((await natsServedCertificate(tlsOnly, {})).notAfterMs, Date.parse('2020-01-02T00:00:00Z'));
    await assert.rejects(natsServedCertificate(plain, {}), new RegExp(`^Error: NATS at ${plain.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: offers no TLS$`));
    const closed = `nats://127.0.0.1:${await freePort()}`;
    await assert.rejects(natsServedCertificate(closed, {}), /^Error: NATS at nats:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/);
    // as a watch source: the gauge's nats_server value, an error said once
    const seen: [PresentedCertificate, number][] = [];
    const errors: string[] = [];
    const watch = new CertificateExpiryWatch([natsServerCertificate(verified, client), natsServerCertificate(plain, {})], { refreshMs: 0, onExpiry: (c, ms) => seen.push([c, ms]), onError: (m) => errors.push(m) });
    await watch.started;
    await watch.refresh();
    assert.deepEqual(seen, [['nats_server', notAfterOf(certs.server.cert)], ['nats_server', notAfterOf(certs.server.cert)]]);
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0]!, /offers no TLS/);
  } finally {
    for (const srv of servers) await srv.stop();
  }
});

test('a rollout worker over TLS shows when its gRPC and NATS client certificates expire on /metrics', async (t) => {
  const s = setUp(t);
  if (!s) return;
  const { dir, certs } = s;
  // nats-server that verifies client certificates, and an orchestrator that requires them
  const port = await freePort();
  const nats = await spawnNatsServer({
    port,
    storeDir: join(dir, 'js'),
    extraArgs: ['--tlsverify', '--tlscert', certs.server.cert, '--tlskey', certs.server.key, '--tlscacert', certs.ca],
  });
  const runId = 'cert-expiry';
  const orch = await startFakeOrchestrator({ runId, config: tinyConfig(runId), tls: { ...certs.server, ca: certs.ca, requireClientCert: true, refreshMs: 0 } }).catch(async (e: unknown) => {
    await nats.stop();
    throw e;
  });
  const worker = await runRolloutWorker({
    orchestrator: orch.address,
    nats: `nats://127.0.0.1:${port}`,
    workerId: 'roll-tls',
    logger: silentLogger,
    tls: { ca: certs.ca, ...certs.clients['worker']!, serverName: 'localhost' },
    natsAuth: { tls: { ca: certs.ca, ...certs.clients['nats']! } },
  }).catch(async (e: unknown) => {
    await orch.close();
    await nats.stop();
    throw e;
  });
  try {
    await worker.ready;
    const line = (certificate: string, file: string) =>
      new RegExp(`^recovery_grpo_tls_certificate_expiry_timestamp_seconds\\{certificate="${certificate}",run_id="${runId}",role="rollout"\\} ${notAfterOf(file) / 1000}$`, 'm');
    let text = '';
    await waitFor(async () => {
      text = await (await fetch(`${worker.metricsUrl}/metrics`)).text();
      return line('grpc_client', certs.clients['worker']!.cert).test(text);
    }, "the worker's client certificate expiry on /metrics");
    assert.match(text, line('nats_client', certs.clients['nats']!.cert));
  } finally {
    await worker.stop({ graceMs: 1000 });
    await orch.close();
    await nats.stop();
  }
});
