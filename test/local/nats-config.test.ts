// The local run's nats.conf holds every role's NATS password: it is written anew at mode 0600, never through a file or
// a link already in its place, and the environment it gives each process connects as that role even when the
// caller's environment holds a NATS token (round 23's review of the merged round, findings 4 and 5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeLocalNatsUsers } from '../../lib/local/nats-config.ts';
import { NATS_ENV, resolveNatsAuth } from '../../lib/transport/nats-auth.ts';

test('nats.conf is made anew at 0600: a file left at 0644 and a link in its place never receive the passwords', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nats-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const conf = join(dir, 'nats.conf');
  writeFileSync(conf, 'old\n', { mode: 0o644 });
  writeLocalNatsUsers(dir);
  assert.equal(lstatSync(conf).mode & 0o777, 0o600);
  const target = join(dir, 'elsewhere');
  writeFileSync(target, '', { mode: 0o644 });
  rmSync(conf);
  symlinkSync(target, conf);
  const users = writeLocalNatsUsers(dir);
  assert.ok(!lstatSync(conf).isSymbolicLink(), 'nats.conf is a file of its own');
  assert.equal(lstatSync(conf).mode & 0o777, 0o600);
  assert.equal(readFileSync(target, 'utf8'), '', 'the link target received nothing');
  assert.ok(readFileSync(conf, 'utf8').includes(users.credentials('rollout').pass));
});

test("a role's environment connects as that role even with a NATS token in the caller's environment", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nats-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const users = writeLocalNatsUsers(dir);
  const env = { [NATS_ENV.token]: 'inherited-token-0123456789', ...users.env('rollout') };
  assert.deepEqual(resolveNatsAuth({}, env), { user: 'rollout', pass: users.credentials('rollout').pass });
});
