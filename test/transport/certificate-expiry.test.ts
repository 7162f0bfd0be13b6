// When the certificates of a run's connections expire (lib/transport/certificate-expiry.ts): the watch reads the
// files' certificates as they are (a renewal moves the value, an expired one is reported, a bad file keeps the last
// value and is said once, naming it); the certificate a real nats-server serves is read by a handshake of its own
// (verified clients or not; a server without TLS or none at all named in the error); a real rollout worker over TLS
// (gRPC with a client certificate, NATS with one) shows its two on /metrics as
// recovery_grpo_tls_certificate_expiry_timestamp_seconds, what the renewal alerts read
// (k8s/monitoring/prometheusrule.yaml). Since round 35 the CA bundles a process trusts as well (grpc_ca, nats_ca): the
// earliest certificate of each bundle, read as the files above; a worker's two and a real orchestrator's (its client
// CA in use, its NATS CA) on /metrics. Certificates by openssl (test/helpers/certs.ts).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { caBundleFiles, CertificateExpiryWatch, clientCertificateFiles, leafNotAfterMs, natsServedCertificate, natsServerCertificate, type WatchedCertificate } from '../../lib/transport/certificate-expiry.ts';
import { parseConfig } from '../../lib/config/index.ts';
import { runOrchestrator } from '../../orchestrator/main.ts';
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
const EXPIRED_2020 = Date.parse('2020-01-02T00:00:00Z');
const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * Two more certificates for CA bundles, signed by the test CA for the server's key (a bundle's reader parses its
 * certificates, it does not ask that they be self-signed): one expired in 2020, one valid until 2099. The test CA
 * itself is valid for a day, so in a bundle with both it is neither the first nor the last date.
 */
function bundleCerts(dir: string, certs: { ca: string; server: { key: string } }) {
  const ca = { cert: certs.ca, key: join(dir, 'ca.key') };
  return {
    expired: readFileSync(datedCert(dir, ca, certs.server.key, 'old-ca', '20200101000000Z', '20200102000000Z'), 'utf8'),
    late: readFileSync(datedCert(dir, ca, certs.server.key, 'late-ca', '20200101000000Z', '20990101000000Z'), 'utf8'),
    ca: readFileSync(certs.ca, 'utf8'),
  };
}

test('the watch reports each file\'s certificate as it is: a renewal moves it, an expired one is reported, a bad file keeps the last value and is said once', async (t) => {
  const s = setUp(t);
  if (!s) return;
  const { dir, certs } = s;
  const grpcCert = join(dir, 'tls.crt');
  copyFileSync(certs.clients['worker']!.cert, grpcCert);
  const seen: [WatchedCertificate, number][] = [];
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

test('a CA bundle\'s expiry is its earliest certificate\'s: read at start and on every refresh, PEM text too; a bundle cut short keeps the last value and is said once', async (t) => {
  const s = setUp(t);
  if (!s) return;
  const { dir, certs } = s;
  const b = bundleCerts(dir, certs);
  const grpcCa = join(dir, 'grpc-ca.crt');
  const natsCa = join(dir, 'nats-ca.crt');
  writeFileSync(grpcCa, b.late + b.ca); // the earliest is the last
  writeFileSync(natsCa, b.late + b.expired + b.ca); // the earliest is in the middle, and expired: reported as it is
  const seen: [WatchedCertificate, number][] = [];
  const errors: string[] = [];
  const watch = new CertificateExpiryWatch(caBundleFiles({ grpcCa, natsCa }), { refreshMs: 0, onExpiry: (c, ms) => seen.push([c, ms]), onError: (m) => errors.push(m) });
  t.after(() => watch.close());
  await watch.started;
  assert.deepEqual(seen, [['grpc_ca', notAfterOf(certs.ca)], ['nats_ca', EXPIRED_2020]]);
  assert.ok(notAfterOf(certs.ca) < Date.parse('2099-01-01T00:00:00Z') && notAfterOf(certs.ca) > EXPIRED_2020);
  // the library's options may hold the bundle's PEM text: read as it is, named without its content
  const text = caBundleFiles({ grpcCa: b.ca + b.expired });
  assert.equal(text[0]!.what, '--tls-ca (PEM text)');
  assert.equal(await text[0]!.read(), EXPIRED_2020);

  // a renewal: the expired CA dropped from the bundle moves the value
  writeFileSync(natsCa, b.ca + b.late);
  seen.length = 0;
  await watch.refresh();
  assert.deepEqual(seen, [['grpc_ca', notAfterOf(certs.ca)], ['nats_ca', notAfterOf(certs.ca)]]);

  // a bundle cut inside its second certificate (half-written): the last value stays, the error names the file, once
  // for two refreshes; the other bundle is still read
  writeFileSync(natsCa, b.ca + b.late.slice(0, 100));
  seen.length = 0;
  await watch.refresh();
  await watch.refresh();
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0]!, new RegExp(`^--nats-tls-ca ${reEscape(natsCa)}: 2 '-----BEGIN' markers but 1 complete PEM blocks`));
  assert.deepEqual(seen, [['grpc_ca', notAfterOf(certs.ca)], ['grpc_ca', notAfterOf(certs.ca)]]);
  assert.equal(watch.expiries().get('nats_ca'), notAfterOf(certs.ca));
  // gone: another error, said once
  rmSync(natsCa);
  await watch.refresh();
  await watch.refresh();
  assert.equal(errors.length, 2, errors.join('\n'));
  assert.match(errors[1]!, new RegExp(`^--nats-tls-ca ${reEscape(natsCa)}: cannot read it \\(ENOENT\\)$`));
  // a bundle without a certificate says so
  writeFileSync(grpcCa, '# no certificate here\n');
  await watch.refresh();
  assert.match(errors[2]!, new RegExp(`^--tls-ca ${reEscape(grpcCa)}: holds no PEM certificate$`));
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
    const seen: [WatchedCertificate, number][] = [];
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

test('a rollout worker over TLS shows when its gRPC and NATS client certificates and CA bundles expire on /metrics', async (t) => {
  const s = setUp(t);
  if (!s) return;
  const { dir, certs } = s;
  // its CA bundles: the test CA (which verifies the orchestrator and NATS) with another certificate each
  const b = bundleCerts(dir, certs);
  const grpcCa = join(dir, 'worker-grpc-ca.crt');
  const natsCa = join(dir, 'worker-nats-ca.crt');
  writeFileSync(grpcCa, b.late + b.ca);
  writeFileSync(natsCa, b.ca + b.expired);
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
    tls: { ca: grpcCa, ...certs.clients['worker']!, serverName: 'localhost' },
    natsAuth: { tls: { ca: natsCa, ...certs.clients['nats']! } },
  }).catch(async (e: unknown) => {
    await orch.close();
    await nats.stop();
    throw e;
  });
  try {
    await worker.ready;
    const at = (certificate: string, ms: number) =>
      new RegExp(`^recovery_grpo_tls_certificate_expiry_timestamp_seconds\\{certificate="${certificate}",run_id="${runId}",role="rollout"\\} ${ms / 1000}$`, 'm');
    const line = (certificate: string, file: string) => at(certificate, notAfterOf(file));
    let text = '';
    await waitFor(async () => {
      text = await (await fetch(`${worker.metricsUrl}/metrics`)).text();
      return line('grpc_client', certs.clients['worker']!.cert).test(text);
    }, "the worker's client certificate expiry on /metrics");
    assert.match(text, line('nats_client', certs.clients['nats']!.cert));
    // the CA bundles it trusts (round 35): the earliest certificate of each, an expired one as it is
    assert.match(text, line('grpc_ca', certs.ca));
    assert.match(text, at('nats_ca', EXPIRED_2020));
  } finally {
    await worker.stop({ graceMs: 1000 });
    await orch.close();
    await nats.stop();
  }
});

test('an orchestrator with mutual TLS and a NATS CA shows when its client CA bundle in use and its NATS CA bundle expire on /metrics', async (t) => {
  const s = setUp(t);
  if (!s) return;
  const { dir, certs } = s;
  const b = bundleCerts(dir, certs);
  const clientCa = join(dir, 'client-ca.crt');
  const natsCa = join(dir, 'orch-nats-ca.crt');
  writeFileSync(clientCa, b.late + b.expired + b.ca); // the client CA bundle its gRPC server verifies workers with
  writeFileSync(natsCa, b.late + b.ca);
  const port = await freePort();
  const nats = await spawnNatsServer({
    port,
    storeDir: join(dir, 'js'),
    extraArgs: ['--tlsverify', '--tlscert', certs.server.cert, '--tlskey', certs.server.key, '--tlscacert', certs.ca],
  });
  const runId = 'cert-expiry-orch';
  const orch = await runOrchestrator({
    config: parseConfig(tinyConfig(runId)),
    listen: '127.0.0.1:0',
    natsUrl: `nats://127.0.0.1:${port}`,
    natsAuth: { tls: { caFile: natsCa, certFile: certs.clients['nats']!.cert, keyFile: certs.clients['nats']!.key } },
    auth: { tls: { ...certs.server, ca: clientCa, requireClientCert: true, refreshMs: 0 } },
    metricsPort: 0,
    log: () => undefined,
  }).catch(async (e: unknown) => {
    await nats.stop();
    throw e;
  });
  t.after(async () => {
    await orch.stop();
    await nats.stop();
  });
  const at = (certificate: string, ms: number) =>
    new RegExp(`^recovery_grpo_tls_certificate_expiry_timestamp_seconds\\{certificate="${certificate}",run_id="${runId}",role="orchestrator"\\} ${ms / 1000}$`, 'm');
  let text = '';
  await waitFor(async () => {
    text = await (await fetch(`${orch.metricsUrl}/metrics`)).text();
    return at('nats_ca', notAfterOf(certs.ca)).test(text);
  }, "the orchestrator's NATS CA bundle expiry on /metrics");
  // the client CA bundle its server uses (tls-reload's set in use): the expired certificate in it is the earliest
  assert.match(text, at('grpc_ca', EXPIRED_2020));
  assert.match(text, at('grpc_server', notAfterOf(certs.server.cert)));
  assert.match(text, at('nats_client', notAfterOf(certs.clients['nats']!.cert)));
});
