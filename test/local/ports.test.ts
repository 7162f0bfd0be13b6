// lib/local/ports.ts and the supervisor's per-start arguments: a role keeps its metrics port across restarts,
// and moves to a new one (said in the log) when another process took the port while the role was down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { canListen, RunPorts } from '../../lib/local/ports.ts';
import { Supervisor } from '../../lib/local/supervisor.ts';

const hold = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('RunPorts: distinct ports; keep() returns the same port while it is free and a new one once another process holds it', async () => {
  const logged: string[] = [];
  const ports = new RunPorts((l) => logged.push(l));
  const got = await Promise.all(Array.from({ length: 20 }, () => ports.distinct()));
  assert.equal(new Set(got).size, 20);
  const p = got[0]!;
  assert.equal(await ports.keep('x metrics port', p), p);
  assert.deepEqual(logged, []);
  const other = await hold(p);
  try {
    assert.equal(await canListen(p), false);
    const q = await ports.keep('x metrics port', p);
    assert.notEqual(q, p);
    assert.ok(!got.includes(q), 'the new port is distinct from the run\'s others');
    assert.deepEqual(logged, [`[local] x metrics port ${p} is taken by another process; moved to ${q}`]);
  } finally {
    await close(other);
  }
});

test('a restarted child whose port was taken meanwhile starts on a new one instead of failing to bind forever', { timeout: 30_000 }, async () => {
  const logged: string[] = [];
  const ports = new RunPorts((l) => logged.push(l));
  let port = await ports.distinct();
  const listening: number[] = [];
  const sup = new Supervisor((l) => logged.push(l));
  // exits 1 when it cannot bind, as a role does
  const child = "const s=require('net').createServer();s.once('error',()=>process.exit(1));s.listen(+process.argv[1],'127.0.0.1',()=>console.log('listening '+process.argv[1]))";
  sup.start({
    name: 'role', command: process.execPath,
    args: async () => ['-e', child, String((port = await ports.keep("role's metrics port", port)))],
    onLine: (l) => listening.push(Number(/^listening (\d+)$/.exec(l)?.[1] ?? NaN)),
  });
  let other: Server | undefined;
  try {
    const first = await until('the first start', () => listening[0]);
    assert.equal(first, port);
    sup.kill('role');
    // the supervisor restarts it after 500 ms: take its port before that
    await until('the port to be free', async () => ((await canListen(first)) ? true : undefined));
    other = await hold(first);
    const second = await until('the restart', () => listening[1]);
    assert.notEqual(second, first);
    assert.equal(second, port);
    assert.ok(logged.some((l) => l === `[local] role's metrics port ${first} is taken by another process; moved to ${second}`), logged.join('\n'));
    assert.equal(sup.restarts.role, 1);
  } finally {
    await sup.stopAll(1000);
    if (other) await close(other);
  }
});
