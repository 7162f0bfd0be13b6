// `npm run demo -- --device rollout=cuda` on a machine without CUDA: the rollout worker cannot start its graphs there,
// exits with CONFIG_EXIT_CODE, and the local run stops with its message and a non-zero status, instead of the
// supervisor restarting it for ever while the orchestrator waits (round 17). The test's own timeout bounds it: before,
// it never ended.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../helpers/cli.ts';
import { checkDevice } from '../../lib/graph/device-check.ts';

const cudaHere = await checkDevice('cuda').then(() => true, () => false);

test('demo --device rollout=cuda on a machine without CUDA: the run stops, naming the worker and the device error', { timeout: 240_000, skip: cudaHere && 'this machine has CUDA' }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'refused-device-'));
  try {
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
      // the child's own limit (SIGTERM: the demo then stops every process it started) below the test's
      const child = execFile(process.execPath, [BIN, 'demo', '--device', 'rollout=cuda', '--steps', '2', '--sft-steps', '2', '--out', out], { encoding: 'utf8', timeout: 200_000, maxBuffer: 1 << 24 }, (_e, stdout, stderr) =>
        done({ code: child.exitCode, stdout, stderr }));
    });
    const log = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.code, 1, `the demo fails (not killed by the timeout):\n${log}`);
    assert.match(r.stderr, /^demo: rollout-0 cannot run as it is set up \(exit code 78, not restarted; see docs\/roles\.md\): /m, log);
    assert.match(r.stderr, /device cuda: onnxruntime could not create the session on its cuda execution provider/, log);
    assert.doesNotMatch(log, /\[supervisor\] rollout-0 .*restarting/, 'the worker was not restarted');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
