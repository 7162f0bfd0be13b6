// Every nats-server the project configures PINGs its clients as SERVER_PING_CONF says (a client gone without a word
// is dropped within 20-30 s, not nats-server's 4-6 min): k8s, the local run, and the servers spawnNatsServer starts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVER_PING_CONF, spawnNatsServer } from '../../lib/transport/nats-server.ts';
import { writeLocalNatsUsers } from '../../lib/local/nats-config.ts';
import { freePort } from '../helpers/nats.ts';

const lines = SERVER_PING_CONF.split('\n');

test('SERVER_PING_CONF sets ping_interval and ping_max', () => {
  assert.deepEqual(lines.map((l) => l.split(':')[0]), ['ping_interval', 'ping_max']);
});

test('k8s/base/nats.conf and the local run\'s nats.conf PING clients as SERVER_PING_CONF says', () => {
  const k8s = readFileSync(new URL('../../k8s/base/nats.conf', import.meta.url), 'utf8').split('\n');
  for (const l of lines) assert.ok(k8s.includes(l), `k8s/base/nats.conf has ${l}`);
  const dir = mkdtempSync(join(tmpdir(), 'nats-ping-conf-'));
  try {
    const local = readFileSync(writeLocalNatsUsers(dir).configFile, 'utf8').split('\n');
    for (const l of lines) assert.ok(local.includes(l), `the local run's nats.conf has ${l}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a server spawnNatsServer starts gets SERVER_PING_CONF in its configuration (and nats-server accepts it)', async () => {
  const storeDir = mkdtempSync(join(tmpdir(), 'nats-ping-spawn-'));
  const server = await spawnNatsServer({ port: await freePort(), storeDir });
  try {
    const conf = readFileSync(join(storeDir, 'server.conf'), 'utf8').split('\n');
    for (const l of lines) assert.ok(conf.includes(l), `server.conf has ${l}`);
  } finally {
    await server.stop();
    rmSync(storeDir, { recursive: true, force: true });
  }
});
