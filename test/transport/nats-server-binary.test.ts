// RECOVERY_GRPO_NATS_SERVER picks the nats-server binary that spawnNatsServer (tests, the demo), the local run and
// the fault suite start (e.g. the 2.10 the image runs, fetched by scripts/fetch-nats-server-2.10.sh); unset, PATH's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureNatsBinary, isReachable, natsServerBinary, spawnNatsServer } from '../../lib/transport/nats-server.ts';
import { waitFor } from '../helpers/wait.ts';
import { freePort } from '../helpers/nats.ts';

test('natsServerBinary: $RECOVERY_GRPO_NATS_SERVER, else nats-server; spawnNatsServer starts that one', async () => {
  const saved = process.env['RECOVERY_GRPO_NATS_SERVER'];
  const dir = mkdtempSync(join(tmpdir(), 'nats-binary-'));
  try {
    delete process.env['RECOVERY_GRPO_NATS_SERVER'];
    assert.equal(natsServerBinary(), 'nats-server');
    process.env['RECOVERY_GRPO_NATS_SERVER'] = join(dir, 'no-such-nats-server');
    assert.equal(natsServerBinary(), join(dir, 'no-such-nats-server'));
    // named either way: spawned directly (spawn ENOENT) or through setpriv, which execs it (lib/transport/nats-server.ts)
    await assert.rejects(spawnNatsServer({ port: await freePort(), storeDir: join(dir, 'js') }), /could not be started: spawn .*no-such-nats-server ENOENT|failed to execute .*no-such-nats-server: No such file or directory/);
    // the local run and ensureNatsServer check it the same way: named, not replaced by PATH's install
    assert.throws(() => ensureNatsBinary(), /RECOVERY_GRPO_NATS_SERVER=.*no-such-nats-server does not run/);
    delete process.env['RECOVERY_GRPO_NATS_SERVER'];
    assert.equal(ensureNatsBinary(), 'nats-server');
  } finally {
    if (saved === undefined) delete process.env['RECOVERY_GRPO_NATS_SERVER'];
    else process.env['RECOVERY_GRPO_NATS_SERVER'] = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a nats-server spawned here dies with its parent, even one killed by SIGKILL (no exit hook runs)', { skip: process.platform !== 'linux' && 'the parent-death signal is Linux only' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nats-orphan-'));
  const port = await freePort();
  // a parent that starts a server, says its pid and waits to be killed
  const script = `import { spawnNatsServer } from ${JSON.stringify(new URL('../../lib/transport/nats-server.ts', import.meta.url).href)};
const s = await spawnNatsServer({ port: ${port}, storeDir: ${JSON.stringify(join(dir, 'js'))} });
console.log('pid ' + s.pid);
setInterval(() => {}, 1000);`;
  const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let pid = 0;
  try {
    pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      parent.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /pid (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      parent.once('exit', (code) => reject(new Error(`the parent exited (${code}) before its server was ready: ${out}`)));
    });
    assert.ok(alive(pid), 'the server runs');
    assert.ok(await isReachable('127.0.0.1', port), 'and listens');
    parent.kill('SIGKILL');
    await waitFor(() => !alive(pid), 'the server to die with its parent', undefined, 10_000);
  } finally {
    parent.kill('SIGKILL');
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/** True while a process with this pid exists (and is not a zombie of ours: the server's parent is the killed one). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // a zombie (reaped by init shortly) counts as gone
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
