// The learner command against a nats-server whose grants name another run (round 25, fix25): a run id changed
// without regenerating nats.conf. Its store's open is refused by the server (it may create only the streams of the
// run its grants name), which no restart cures: the learner exits 78 (CONFIG_EXIT_CODE) with the message naming the
// run and the command that writes the grants (lib/transport/nats.ts grantsNameAnotherRun). Before, this was checked
// only at the store (test/transport/nats-run-grants.test.ts), not through the learner's start.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../lib/config/index.ts';
import { CONFIG_EXIT_CODE } from '../../lib/config/setup-error.ts';
import { spawnNatsServer } from '../../lib/transport/nats-server.ts';
import { natsAccountsBlock } from '../../lib/transport/nats-permissions.ts';
import { runOrchestrator } from '../../orchestrator/main.ts';
import { freePort } from '../helpers/nats.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

test('a learner whose NATS grants name another run exits 78, naming the run and how to regenerate the grants', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'learner-run-grants-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  // the orchestrator's grants name the run it serves; the learner's still name the run of before
  const PASS = 'learner-pass-0123456789';
  writeFileSync(join(dir, 'nats.conf'), natsAccountsBlock([
    { role: 'orchestrator', user: 'orchestrator', password: 'orchestrator-pass-0123456789', run: 'new-run' },
    { role: 'learner', user: 'learner', password: PASS, run: 'old-run' },
  ]));
  const nats = await spawnNatsServer({ port: await freePort(), storeDir: join(dir, 'js'), extraArgs: ['-c', join(dir, 'nats.conf')] });
  cleanups.push(() => nats.stop());
  const config = parseConfig({ run: { id: 'new-run', seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 64 } }, model: { width: 4, depth: 1 }, sft: { steps: 3, batchSize: 2 }, grpo: { steps: 0 } });
  const orch = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, natsAuth: { user: 'orchestrator', pass: 'orchestrator-pass-0123456789' }, metricsPort: 0, log: () => undefined });
  cleanups.push(() => orch.stop());
  writeFileSync(join(dir, 'learner.pass'), PASS, { mode: 0o600 });
  const bin = fileURLToPath(new URL('../../bin/recovery-grpo.mjs', import.meta.url));
  const child = spawn(process.execPath, [bin, 'learner', '--orchestrator', `127.0.0.1:${orch.port}`, '--nats', nats.url, '--nats-user', 'learner', '--nats-pass-file', join(dir, 'learner.pass'), '--metrics-port', '0', '--worker-id', 'learner-stale-grants'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RECOVERY_GRPO_LOG_FORMAT: 'text' } });
  const out: string[] = [];
  for (const s of [child.stdout, child.stderr]) s.on('data', (d: Buffer) => out.push(d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  cleanups.push(async () => { if (child.exitCode === null) { child.kill('SIGKILL'); await exited; } });
  const timer = setTimeout(() => child.kill('SIGTERM'), 60_000); // a learner that retries for ever instead
  const code = await exited;
  clearTimeout(timer);
  const text = out.join('');
  assert.equal(code, CONFIG_EXIT_CODE, `the learner exited ${code}:\n${text}`);
  assert.match(text, /the NATS grants of this connection's user do not name run new-run/);
  assert.match(text, /scripts\/gen-nats-conf\.ts --run=new-run/);
});
