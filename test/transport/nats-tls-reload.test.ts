// nats-server takes renewed TLS files on the reload k8s/base/nats.yaml's reloader sidecar sends (SIGHUP to the pid in
// nats.conf's pid_file; docs/kubernetes.md "NATS takes renewed certificates"): a real nats-server run as the pod runs it
// (`-c` alone, the StatefulSet's environment) with the rendered cpu-dev nats.conf (its tls block, verify_and_map, the
// role accounts, JetStream), only its paths and ports moved, its TLS files in a directory laid out as the kubelet lays
// out a Secret volume (each file a symlink through ..data, renewed by swapping ..data), openssl certificates, loopback.
// (Not spawnNatsServer: its -js/-sd flags make 2.9.10 refuse every reload, "config reload not supported for jetstream
// storage dir", which the pod, whose store_dir is in nats.conf, does not hit.) After the swap and the signal a new handshake gets the new certificate (its serial), a client certificate
// of a CA added to the bundle is welcomed (refused before), and a client connected before stays connected; a renewal
// whose key does not match its certificate is refused by the reload and the previous certificate stays served. Each
// step waits for an event (varz's config_load_time, the server's log), not for a time.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { connect, type ConnectionOptions, type NatsConnection } from 'nats';
import { roleUri } from '../../lib/transport/cert-identity.ts';
import { makeTestCerts, opensslAvailable, signClientCert } from '../helpers/certs.ts';
import { freePort } from '../helpers/nats.ts';
import { waitFor } from '../helpers/wait.ts';
import { requireTool } from '../k8s/tools.ts';
import { renderKustomization, type K8sObject } from '../k8s/kustomize.ts';
import { NATS_PID_FILE, natsConfOf } from '../k8s/overlays.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SERVER_EXT = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n';
const ROLLOUT_EXT = `subjectAltName=URI:${roleUri('rollout')}\nextendedKeyUsage=clientAuth\n`;
const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;

/**
 * A Secret volume as the kubelet writes it (its atomic writer): `<dir>/<file>` -> `..data/<file>`, `..data` ->
 * `..<version>`; `put` writes a new version and swaps `..data` in one rename, as a renewal arrives.
 */
function secretVolume(dir: string) {
  mkdirSync(dir);
  let version = 0;
  const put = (files: Record<string, string>) => {
    const v = `..v${++version}`;
    mkdirSync(join(dir, v));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, v, name), text, { mode: 0o440 });
    symlinkSync(v, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    if (version === 1) for (const name of Object.keys(files)) symlinkSync(join('..data', name), join(dir, name));
    else rmSync(join(dir, `..v${version - 1}`), { recursive: true });
  };
  return { put, cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key'), ca: join(dir, 'ca.crt') };
}

/**
 * nats-server as the StatefulSet runs it: the overlay's nats.conf with `--config` alone and the container's
 * environment; only the paths (TLS files, pid file, store) and the ports (loopback) moved to the test's.
 */
async function podNatsServer(t: TestContext, binary: string, objs: K8sObject[], dir: string, o: { tls: { cert: string; key: string; ca: string }; pidFile: string; port: number; monitor: number }) {
  let conf = natsConfOf(objs);
  const moves: [RegExp, string][] = [
    [/^(\s*cert_file: )\/etc\/nats-tls\/tls\.crt$/m, `$1${JSON.stringify(o.tls.cert)}`],
    [/^(\s*key_file: )\/etc\/nats-tls\/tls\.key$/m, `$1${JSON.stringify(o.tls.key)}`],
    [/^(\s*ca_file: )\/etc\/nats-tls\/ca\.crt$/m, `$1${JSON.stringify(o.tls.ca)}`],
    [new RegExp(`^pid_file: ${NATS_PID_FILE}$`, 'm'), `pid_file: ${JSON.stringify(o.pidFile)}`],
    [/^(\s*store_dir: )\/data\b/m, `$1${JSON.stringify(join(dir, 'data'))}`],
    [/^port: 4222$/m, `port: ${o.port}\nhost: 127.0.0.1`],
    [/^http_port: 8222$/m, `http: 127.0.0.1:${o.monitor}`],
  ];
  for (const [from, to] of moves) {
    assert.match(conf, from, `nats.conf has ${from}`);
    conf = conf.replace(from, to);
  }
  writeFileSync(join(dir, 'nats.conf'), conf);
  const sts = objs.find((x) => x.kind === 'StatefulSet' && x.metadata.labels?.['app.kubernetes.io/component'] === 'nats')!;
  const nats = (sts.spec as { template: { spec: { containers: { name: string; env: { name: string; value?: string }[] }[] } } }).template.spec.containers[0]!;
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, POD_NAME: 'recovery-grpo-nats-0' };
  for (const e of nats.env) if (e.value !== undefined) env[e.name] = e.value;
  const child = spawn(binary, ['--config', join(dir, 'nats.conf')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  const onData = (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(kill);
    }
  });
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`nats-server exited ${child.exitCode}:\n${lines.join('\n')}`);
    return lines.some((l) => l.includes('Server is ready'));
  }, 'nats-server to be ready', lines);
  return { pid: child.pid!, lines, url: `nats://127.0.0.1:${o.port}`, running: () => child.exitCode === null && child.signalCode === null };
}

/**
 * A client's first steps as nats.js takes them, by hand: the server's INFO, then a TLS handshake presenting `client`;
 * `onTls` gets the TLS socket and settles the promise.
 */
function natsTls<T>(port: number, ca: string, client: { cert: string; key: string }, onTls: (s: TLSSocket, resolve: (v: T) => void, reject: (e: Error) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(port, '127.0.0.1');
    let info = '';
    const onData = (d: Buffer) => {
      info += d.toString('latin1');
      if (!info.includes('\r\n')) return;
      sock.off('data', onData);
      if (!/^INFO .*"tls_required":true/.test(info)) {
        sock.destroy();
        reject(new Error(`nats-server's first line is not an INFO requiring TLS: ${info.slice(0, 200)}`));
        return;
      }
      const s = tlsConnect({ socket: sock, servername: 'localhost', ca: readFileSync(ca), cert: readFileSync(client.cert), key: readFileSync(client.key) });
      onTls(s, resolve, reject);
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
}

/** The serial of the certificate nats-server presents to a new client. */
const servedSerial = (port: number, ca: string, client: { cert: string; key: string }) =>
  natsTls<string>(port, ca, client, (s, resolve, reject) => {
    s.once('secureConnect', () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.destroy();
    });
    s.once('error', reject);
  });

/**
 * Whether nats-server lets a client with this certificate in: after the handshake, CONNECT and PING; 'PONG' when it
 * answers, else what ended it (TLS 1.3 checks the client certificate after the client's side of the handshake: a
 * refusal arrives as an alert, an error here, or a close).
 */
const admission = (port: number, ca: string, client: { cert: string; key: string }) =>
  natsTls<string>(port, ca, client, (s, resolve) => {
    let got = '';
    s.once('secureConnect', () => s.write('CONNECT {"verbose":false,"pedantic":false,"tls_required":true}\r\nPING\r\n'));
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (/^PONG\r\n/m.test(got) || /^-ERR/m.test(got)) {
        resolve(/^PONG\r\n/m.test(got) ? 'PONG' : got.trim());
        s.destroy();
      }
    });
    s.once('error', (e) => resolve(`error: ${e.message}`));
    s.once('close', () => resolve(`closed${got ? `: ${got.trim()}` : ''}`));
  });

function setUp(t: TestContext) {
  const natsServer = requireTool(t, 'nats-server', 'bash scripts/ensure-nats-server.sh');
  if (!natsServer) return undefined;
  if (!opensslAvailable()) {
    t.skip('openssl unavailable');
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'nats-tls-reload-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const certs = makeTestCerts(dir, { rollout: `URI:${roleUri('rollout')}` });
  const ca1 = { cert: certs.ca, key: join(dir, 'ca.key') };
  // a second CA, as a new run CA is added to the bundle
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca2.key', '-out', 'ca2.crt', '-subj', '/CN=ca2', '-days', '1'], { cwd: dir, stdio: 'pipe' });
  const ca2 = { cert: join(dir, 'ca2.crt'), key: join(dir, 'ca2.key') };
  const vol = secretVolume(join(dir, 'tls'));
  vol.put({ 'tls.crt': readFileSync(certs.server.cert, 'utf8'), 'tls.key': readFileSync(certs.server.key, 'utf8'), 'ca.crt': readFileSync(ca1.cert, 'utf8') });
  return { natsServer, dir, certs, ca1, ca2, vol };
}

test('nats-server with the rendered nats.conf serves a renewed certificate and trusts a CA added to the bundle after the reloader\'s SIGHUP; a connected client stays', async (t) => {
  const env = setUp(t);
  if (!env) return;
  const { natsServer, dir, certs, ca1, ca2, vol } = env;
  const pidFile = join(dir, 'run', 'nats.pid');
  mkdirSync(join(dir, 'run'));
  const monitor = await freePort();
  const port = await freePort();
  const conns: NatsConnection[] = [];
  t.after(async () => {
    for (const nc of conns) await nc.close().catch(() => undefined);
  });
  const server = await podNatsServer(t, natsServer, renderKustomization(join(ROOT, 'k8s/overlays/cpu-dev')), dir, { tls: vol, pidFile, port, monitor });
  const loadTime = async () => ((await (await fetch(`http://127.0.0.1:${monitor}/varz`)).json()) as { config_load_time: string }).config_load_time;
  /** What the reloader does (nack pkg/natsreloader): the pid file's whole text as a number, then SIGHUP to it. */
  const reloadAsTheSidecar = async () => {
    const before = await loadTime();
    const text = readFileSync(pidFile, 'utf8');
    assert.match(text, /^\d+$/, 'the pid file holds the pid alone (the reloader parses it whole with strconv.Atoi)');
    assert.equal(Number(text), server.pid, 'the pid file names the server');
    process.kill(Number(text), 'SIGHUP');
    return before;
  };
  const tlsOf = (client: { cert: string; key: string }) => ({ caFile: vol.ca, certFile: client.cert, keyFile: client.key, servername: 'localhost' }) as ConnectionOptions['tls'];
  const asRollout = async (client: { cert: string; key: string }, name: string) => {
    const nc = await connect({ servers: server.url, tls: tlsOf(client), maxReconnectAttempts: 0, name });
    conns.push(nc);
    return nc;
  };

  const original = readFileSync(vol.cert, 'utf8');
  assert.equal(await servedSerial(port, vol.ca, certs.clients['rollout']!), serialOf(original), 'the certificate at start');
  const established = await asRollout(certs.clients['rollout']!, 'established');
  const fromCa2 = signClientCert(dir, ca2, 'rollout-ca2', 'rollout-ca2', ROLLOUT_EXT);
  // refused: an alert (or, should the close overtake it, a reset or a close), never a PONG; the server says why
  assert.match(await admission(port, vol.ca, fromCa2), /^(error|closed)\b/, 'a client certificate of a CA not in the bundle is refused');
  await waitFor(() => server.lines.some((l) => /TLS handshake error: .*certificate signed by unknown authority/.test(l)), 'nats-server to log why it refused the CA2 certificate', server.lines);
  assert.equal(await admission(port, vol.ca, certs.clients['rollout']!), 'PONG', 'the same steps with a certificate of the bundle\'s CA: admitted');

  // The renewal: a new certificate and key, and the bundle with a second CA, swapped in at once as the kubelet does.
  const renewed = signClientCert(dir, ca1, 'server-renewed', 'server-renewed', SERVER_EXT);
  vol.put({
    'tls.crt': readFileSync(renewed.cert, 'utf8'),
    'tls.key': readFileSync(renewed.key, 'utf8'),
    'ca.crt': `${readFileSync(ca1.cert, 'utf8')}${readFileSync(ca2.cert, 'utf8')}`,
  });
  assert.equal(await servedSerial(port, vol.ca, certs.clients['rollout']!), serialOf(original), 'nats-server keeps the files it read until it is told');
  const before = await reloadAsTheSidecar();
  await waitFor(async () => (await loadTime()) !== before, 'varz config_load_time to change (the reload)', server.lines);
  assert.doesNotMatch(server.lines.join('\n'), /Failed to reload/);

  assert.equal(await servedSerial(port, vol.ca, certs.clients['rollout']!), serialOf(readFileSync(renewed.cert, 'utf8')), 'a new handshake gets the renewed certificate');
  assert.equal(await admission(port, vol.ca, fromCa2), 'PONG', 'a client certificate of the CA added to the bundle is admitted');
  await asRollout(fromCa2, 'ca2-after').then((nc) => nc.flush());
  await asRollout(certs.clients['rollout']!, 'ca1-after').then((nc) => nc.flush());
  // the connection made before the reload is the same one (maxReconnectAttempts 0: a dropped one would be closed)
  await established.flush();
  assert.equal(established.isClosed(), false, 'the connection made before the reload stays');
  // ... and works as its role: JetStream answers the rollout user's API request (its grant, through the STREAMS import)
  assert.match((await established.request('$JS.API.INFO', undefined, { timeout: 10_000 })).string(), /"type":"io\.nats\.jetstream\.api\.v1\.account_info_response"/);

  // A renewal nats-server cannot load (a certificate beside another key): the reload fails, logged, and the renewed
  // certificate above stays served; the server keeps running.
  const other = signClientCert(dir, ca1, 'server-other', 'server-other', SERVER_EXT);
  vol.put({ 'tls.crt': readFileSync(other.cert, 'utf8'), 'tls.key': readFileSync(renewed.key, 'utf8'), 'ca.crt': readFileSync(vol.ca, 'utf8') });
  await reloadAsTheSidecar();
  await waitFor(() => /Failed to reload server configuration/.test(server.lines.join('\n')), 'nats-server to log the failed reload', server.lines);
  assert.equal(await servedSerial(port, vol.ca, certs.clients['rollout']!), serialOf(readFileSync(renewed.cert, 'utf8')), 'a failed reload keeps the certificate in use');
  await established.flush();
});
