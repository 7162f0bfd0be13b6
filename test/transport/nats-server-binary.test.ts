// RECOVERY_GRPO_NATS_SERVER picks the nats-server binary that spawnNatsServer (tests, the demo), the local run and
// the fault suite start (e.g. the 2.10 the image runs, fetched by scripts/fetch-nats-server-2.10.sh); unset, PATH's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureNatsBinary, natsServerBinary, spawnNatsServer } from '../../lib/transport/nats-server.ts';
import { freePort } from '../helpers/nats.ts';

test('natsServerBinary: $RECOVERY_GRPO_NATS_SERVER, else nats-server; spawnNatsServer starts that one', async () => {
  const saved = process.env['RECOVERY_GRPO_NATS_SERVER'];
  const dir = mkdtempSync(join(tmpdir(), 'nats-binary-'));
  try {
    delete process.env['RECOVERY_GRPO_NATS_SERVER'];
    assert.equal(natsServerBinary(), 'nats-server');
    process.env['RECOVERY_GRPO_NATS_SERVER'] = join(dir, 'no-such-nats-server');
    assert.equal(natsServerBinary(), join(dir, 'no-such-nats-server'));
    await assert.rejects(spawnNatsServer({ port: await freePort(), storeDir: join(dir, 'js') }), /could not be started: spawn .*no-such-nats-server ENOENT/);
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
