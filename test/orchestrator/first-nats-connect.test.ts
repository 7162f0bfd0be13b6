// The orchestrator's first connection to NATS (orchestrator/first-nats-connect.ts): an outage is waited out, logged,
// as the workers wait it out; refused credentials end it at once (exit code 1, docs/roles.md), saying which flags. Before round 24's review (review24e) the
// orchestrator gave up at the first refused connection, and a supervisor restarting it every ~1.6 s stopped a local
// run on its crash-loop rule after ~16 s of NATS outage.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config/index.ts';
import { CONFIG_EXIT_CODE, exitCodeFor, SetupError } from '../../lib/config/setup-error.ts';
import { spawnNatsServer } from '../../lib/transport/index.ts';
import { runOrchestrator, type RunningOrchestrator } from '../../orchestrator/main.ts';
import { freePort, startNatsServer } from '../helpers/nats.ts';
import { makeTestCerts, opensslAvailable } from '../helpers/certs.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const config = (id: string) => parseConfig({
  run: { id, seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 64 } },
  model: { width: 4, depth: 1 }, sft: { steps: 2, batchSize: 2 }, grpo: { steps: 0 },
});

test('an orchestrator started while NATS is down waits for it, logging each failed attempt, and then runs', { timeout: 150_000 }, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  await nats.kill(); // down: its port refuses connections
  const log: string[] = [];
  let outcome: RunningOrchestrator | Error | undefined;
  const settled = () => outcome; // read through a call: the callbacks below set it
  void runOrchestrator({ config: config('first-connect'), listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, log: (l) => log.push(l) }).then(
    (o) => {
      outcome = o;
      cleanups.push(() => o.stop());
    },
    (e: Error) => (outcome = e),
  );
  for (const t0 = Date.now(); Date.now() - t0 < 40_000 && outcome === undefined && log.filter((l) => /trying again/.test(l)).length < 2; ) await sleep(50);
  // before the fix it gave up at once: 'cannot connect to NATS ...'
  assert.equal(outcome, undefined, `the orchestrator did not wait for NATS: ${outcome instanceof Error ? outcome.message : 'it ran without it'}`);
  assert.match(log.join('\n'), /cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+ as orchestrator-first-connect: .*; trying again in \d+ ms \(attempt 2\)/);
  await nats.restart();
  for (const t0 = Date.now(); Date.now() - t0 < 60_000 && settled() === undefined; ) await sleep(50);
  const started = settled();
  assert.ok(started !== undefined && !(started instanceof Error), `the orchestrator did not start once NATS was back: ${String(started)}`);
});

test('an orchestrator whose NATS credentials are refused ends at once, naming the flags', { timeout: 60_000 }, async () => {
  const storeDir = mkdtempSync(join(tmpdir(), 'nats-auth-'));
  const proc = await spawnNatsServer({ port: await freePort(), storeDir, extraArgs: ['--user', 'grpo', '--pass', 'right'] });
  cleanups.push(async () => {
    await proc.stop();
    rmSync(storeDir, { recursive: true, force: true });
  });
  const run = runOrchestrator({ config: config('first-connect-auth'), listen: '127.0.0.1:0', natsUrl: proc.url, natsAuth: { user: 'grpo', pass: 'wrong' }, metricsPort: 0, log: () => undefined });
  await assert.rejects(run, (e: Error) => !(e instanceof SetupError) && /Authorization Violation.*check the NATS credentials/i.test(e.message));
});

// Round 25 (fix25): a TLS failure at the first connect (the server's certificate signed by another CA, or naming
// another host) was waited out as an outage, for ever, logged as "trying again". It is a SetupError now (exit 78),
// naming the server and the cause; a refused connection is still waited for (the first test).
test('an orchestrator whose NATS TLS fails (another CA, another host name) ends at once with a SetupError naming the server and the cause', { timeout: 150_000, skip: !opensslAvailable() && 'openssl is missing' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nats-tls-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const sub = (name: string) => {
    mkdirSync(join(dir, name));
    return join(dir, name);
  };
  const certs = makeTestCerts(sub('right'), {});
  const otherCa = makeTestCerts(sub('other'), {}).ca;
  // a server certificate signed by the CA the client trusts, for a name that is not the host dialled
  const elsewhere = makeTestCerts(sub('elsewhere'), {}, { serverNames: 'DNS:elsewhere.example' });
  const serve = async (cert: string, key: string, name: string) => {
    const proc = await spawnNatsServer({ port: await freePort(), storeDir: join(dir, `js-${name}`), extraArgs: ['--tls', '--tlscert', cert, '--tlskey', key] });
    cleanups.push(() => proc.stop());
    return proc.url;
  };
  const right = await serve(certs.server.cert, certs.server.key, 'right');
  const misnamed = await serve(elsewhere.server.cert, elsewhere.server.key, 'misnamed');
  for (const [what, url, ca, cause] of [
    ['another CA', right, otherCa, /unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/],
    ['another host name', misnamed, elsewhere.ca, /does not match certificate's altnames.*\(ERR_TLS_CERT_ALTNAME_INVALID\)/],
  ] as const) {
    const log: string[] = [];
    const run = runOrchestrator({ config: config('first-connect-tls'), listen: '127.0.0.1:0', natsUrl: url, natsAuth: { tls: { caFile: ca } }, metricsPort: 0, log: (l) => log.push(l) });
    run.then((o) => cleanups.push(() => o.stop()), () => undefined);
    // before the fix: still waiting, its log saying "trying again"
    const outcome = await Promise.race([run.then(() => 'started', (e: unknown) => e), sleep(45_000).then(() => `still waiting: ${log.join(' | ')}`)]);
    assert.ok(outcome instanceof SetupError, `${what}: not a SetupError: ${outcome instanceof Error ? outcome.message : String(outcome)}`);
    assert.equal(exitCodeFor(outcome), CONFIG_EXIT_CODE);
    assert.ok(outcome.message.includes(`cannot connect to NATS at ${url}`), `${what}: the message does not name the server: ${outcome.message}`);
    assert.match(outcome.message, cause, what);
  }
});

test('which TLS failures are setup errors: another CA, another name, no TLS on the server; not a certificate outside its dates (review25e)', async () => {
  const { isNatsTlsError } = await import('../../lib/transport/nats.ts');
  const coded = (code: string) => Object.assign(new Error(code), { code });
  for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SERVER_OPT_NA']) assert.equal(isNatsTlsError(coded(code)), true, code);
  // a renewal or a clock put right cures these while the orchestrator waits
  for (const code of ['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ECONNREFUSED', 'TIMEOUT', 'ECONNRESET']) assert.equal(isNatsTlsError(coded(code)), false, code);
});
