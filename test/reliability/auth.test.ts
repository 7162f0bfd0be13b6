// Authentication end to end, through the real command line: nats-server with TLS (client certificates
// verified) and a user/password; the orchestrator serving gRPC over TLS with a bearer token; a learner, a
// rollout worker and a reward worker as processes that present the token over TLS and the NATS credentials
// (from files and from the environment). The run completes. Clients without the token or with a wrong one are
// refused, so is a plaintext client, a worker with a wrong NATS password, and an orchestrator asked to listen
// on a public address without authentication. No secret appears in any output. Certificates are made here
// with openssl (the test is skipped, saying so, where openssl is missing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { connectToOrchestrator, spawnNatsServer, TransportError, type ConnectOptions } from '../../lib/transport/index.ts';
import { runRewardWorker } from '../../reward-worker/index.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { freePort } from '../helpers/nats.ts';
import { CONFIG_EXIT_CODE } from '../../lib/config/setup-error.ts';

const BIN = fileURLToPath(new URL('../../bin/recovery-grpo.mjs', import.meta.url));
const TOKEN = 'grpc-token-7f3a9c1e';
const NATS_USER = 'grpo';
const NATS_PASS = 'nats-pass-51d0b2e8';

function makeCerts(dir: string): void {
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=recovery-grpo-test-ca', '-days', '1');
  // nats.js checks the name "localhost" when dialling 127.0.0.1 over TLS: both names are in the certificate
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    ossl('req', ...ec, '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who}`);
    ossl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.crt`, '-days', '1', '-extfile', `${who}.ext`);
  }
}

interface Proc {
  name: string;
  child: ChildProcess;
  out: string[];
  exit: Promise<number | null>;
}

function start(name: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  for (const s of [child.stdout!, child.stderr!]) s.on('data', (d: Buffer) => out.push(d.toString()));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { name, child, out, exit };
}

async function waitFor(cond: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('TLS + token to the orchestrator, TLS + user/password to NATS, through the CLI: the run completes; wrong or missing credentials are refused; no secret is printed', { timeout: 180_000 }, async (t) => {
  const openssl = spawnSync('openssl', ['version']);
  if (openssl.error || openssl.status !== 0) {
    t.skip('openssl is not installed: cannot make test certificates');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'auth-'));
  const procs: Proc[] = [];
  const stopAll = () => procs.forEach((p) => p.child.exitCode === null && p.child.kill('SIGKILL'));
  try {
    makeCerts(dir);
    const f = (n: string) => join(dir, n);
    writeFileSync(f('token'), `${TOKEN}\n`);
    writeFileSync(f('natspass'), `${NATS_PASS}\n`);
    writeFileSync(f('config.json'), JSON.stringify({
      run: { id: 'auth-run', seed: 3 },
      data: { size: 16, source: { kind: 'procedural', count: 32 } },
      model: { width: 4, depth: 1 },
      sft: { steps: 2, batchSize: 4 },
      grpo: { steps: 2, groupSize: 2, samplesPerBatch: 2 },
      orchestrator: { leaseSeconds: 10, heartbeatSeconds: 1 },
    }));

    // nats-server: TLS with verified client certificates, and a user/password
    const natsPort = await freePort();
    const nats = await spawnNatsServer({
      port: natsPort,
      storeDir: f('nats'),
      extraArgs: ['--tls', '--tlscert', f('server.crt'), '--tlskey', f('server.key'), '--tlscacert', f('ca.crt'), '--tlsverify', '--user', NATS_USER, '--pass', NATS_PASS],
    });
    // its state and log go into every failure message below (ci164: the roles' NATS connections dropped together and
    // the test could not say whether the server had died)
    let natsState = 'running';
    void nats.exited.then((e) => (natsState = `exited (code ${e.code}, signal ${e.signal})`));
    const natsReport = () => `--- nats-server (${natsState})\n${nats.logTail()}`;
    const natsFlags = ['--nats', `nats://127.0.0.1:${natsPort}`, '--nats-user', NATS_USER, '--nats-tls-ca', f('ca.crt'), '--nats-tls-cert', f('client.crt'), '--nats-tls-key', f('client.key')];
    try {
      // refused before anything starts: a public address without authentication
      const pub = spawnSync(process.execPath, [BIN, 'orchestrator', '--config', f('config.json'), '--listen', '0.0.0.0:0', ...natsFlags, '--nats-pass-file', f('natspass')], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(pub.status, CONFIG_EXIT_CODE, pub.stderr);
      assert.match(pub.stderr, /^orchestrator: refusing to listen on 0\.0\.0\.0:0 without authentication: it is not a loopback address, so any host that can reach it could join the run/);
      // --require-worker-identity reaches the start-up check (lib/transport/grpc-server.ts checkListenAuth): with only the
      // shared token no worker could present a pinned credential, so it is refused before anything starts
      const unpinned = spawnSync(process.execPath, [BIN, 'orchestrator', '--config', f('config.json'), '--listen', '127.0.0.1:0', '--auth-token-file', f('token'), '--require-worker-identity', ...natsFlags, '--nats-pass-file', f('natspass')], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(unpinned.status, CONFIG_EXIT_CODE, unpinned.stderr);
      assert.match(unpinned.stderr, /^orchestrator: auth\.requireWorkerIdentity \(--require-worker-identity\) needs a credential that can pin a worker id, and this orchestrator has the shared token: every worker would be refused/);
      const refresh = spawnSync(process.execPath, [BIN, 'orchestrator', '--config', f('config.json'), '--tls-refresh-seconds', '-1'], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(refresh.status, CONFIG_EXIT_CODE, refresh.stderr);
      assert.match(refresh.stderr, /--tls-refresh-seconds must be a whole number of seconds from 0 to \d+ \(0: never\), got -1/);

      const port = await freePort();
      const address = `127.0.0.1:${port}`;
      const orch = start('orchestrator', ['orchestrator', '--config', f('config.json'), '--listen', address, '--metrics-port', '0',
        '--auth-token-file', f('token'), '--tls-cert', f('server.crt'), '--tls-key', f('server.key'), ...natsFlags, '--nats-pass-file', f('natspass'),
        '--linger-seconds', '0']); // the test waits for it to exit after the run
      procs.push(orch);
      await waitFor(() => orch.out.join('').includes('listening on') || orch.child.exitCode !== null, 'the orchestrator to listen', 60_000);
      assert.match(orch.out.join(''), /connected to NATS at nats:\/\/127\.0\.0\.1:\d+ \(user grpo, TLS with a client certificate\)/);
      // the served certificate's expiry on /metrics (a stuck renewal shows as a date coming near)
      const metricsUrl = /metrics on (http:\/\/\S+\/metrics)/.exec(orch.out.join(''))?.[1];
      assert.ok(metricsUrl, orch.out.join(''));
      const notAfter = Date.parse(new X509Certificate(readFileSync(f('server.crt'))).validTo) / 1000;
      const served = await (await fetch(metricsUrl)).text();
      assert.match(served, new RegExp(`^recovery_grpo_tls_certificate_expiry_timestamp_seconds\\{certificate="grpc_server",[^}]*\\} ${notAfter}$`, 'm'));
      // and its NATS client certificate's (lib/transport/certificate-expiry.ts)
      const natsNotAfter = Date.parse(new X509Certificate(readFileSync(f('client.crt'))).validTo) / 1000;
      assert.match(served, new RegExp(`^recovery_grpo_tls_certificate_expiry_timestamp_seconds\\{certificate="nats_client",[^}]*\\} ${natsNotAfter}$`, 'm'));
      // and the certificate NATS serves (here the same file as the orchestrator's), read by a handshake of its own
      assert.match(served, new RegExp(`^recovery_grpo_tls_certificate_expiry_timestamp_seconds\\{certificate="nats_server",[^}]*\\} ${notAfter}$`, 'm'));

      // refused at the door
      const client = (extra: Partial<ConnectOptions>): ConnectOptions => ({
        address, role: 'ROLLOUT', workerId: 'intruder', capabilities: { device: 'cpu', max_batch: 1, max_in_flight: 1 },
        tls: { ca: f('ca.crt') }, connectTimeoutMs: 5000, ...extra,
      });
      for (const [what, opts] of [['no token', {}], ['a wrong token', { token: 'not-the-token' }]] as const) {
        await assert.rejects(connectToOrchestrator(client(opts)), (e: unknown) => {
          assert.ok(e instanceof TransportError, String(e));
          assert.equal(e.code, grpc.status.UNAUTHENTICATED, `${what}: ${e.message}`);
          assert.equal(e.retryable, false);
          return true;
        });
      }
      await assert.rejects(connectToOrchestrator(client({ token: TOKEN, tls: undefined })), (e: unknown) => e instanceof TransportError && e.code === grpc.status.UNAVAILABLE);
      // the right token, but a wrong NATS password: the worker ends (no endless retry), saying why
      const wrongPass = await runRewardWorker({
        orchestrator: address, token: TOKEN, tls: { ca: f('ca.crt') }, workerId: 'reward-wrong-pass', logger: silentLogger,
        nats: `nats://127.0.0.1:${natsPort}`, natsAuth: { user: NATS_USER, pass: 'wrong', tls: { ca: f('ca.crt'), cert: f('client.crt'), key: f('client.key') } },
      });
      await assert.rejects(wrongPass.done, /Authorization Violation.*check the NATS credentials/i);

      // the run: every role as a process, token and NATS password from files or the environment
      const grpcFlags = ['--orchestrator', address, '--tls-ca', f('ca.crt'), '--metrics-port', '0'];
      procs.push(start('learner', ['learner', ...grpcFlags, '--auth-token-file', f('token'), ...natsFlags, '--nats-pass-file', f('natspass'), '--worker-id', 'learner']));
      procs.push(start('rollout', ['rollout-worker', ...grpcFlags, '--auth-token-file', f('token'), ...natsFlags, '--worker-id', 'rollout-0'], { RECOVERY_GRPO_NATS_PASS: NATS_PASS }));
      procs.push(start('reward', ['reward-worker', ...grpcFlags, ...natsFlags, '--nats-pass-file', f('natspass'), '--worker-id', 'reward-0'], { RECOVERY_GRPO_TOKEN: TOKEN }));
      const code = await Promise.race([orch.exit, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 120_000).unref())]);
      const roles = () => procs.map((p) => `--- ${p.name}\n${p.out.join('')}`).join('\n');
      const all = () => `${roles()}\n${natsReport()}`;
      assert.equal(code, 0, all());
      assert.match(orch.out.join(''), /run auth-run complete at policy version 4/);
      for (const p of procs.slice(1)) assert.equal(await Promise.race([p.exit, new Promise((r) => setTimeout(() => r('still running'), 20_000).unref())]), 0, `${p.name} exits 0 after the run\n${all()}`);
      for (const secret of [TOKEN, NATS_PASS]) assert.ok(!roles().includes(secret), 'no secret in any role\'s output');
      assert.match(procs[1]!.out.join(''), /dialling the orchestrator at 127\.0\.0\.1:\d+ \(with a token\) over TLS; NATS nats:\/\/127\.0\.0\.1:\d+ \(user grpo, TLS with a client certificate\)/);
    } finally {
      stopAll();
      await nats.stop();
    }
  } finally {
    stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});
