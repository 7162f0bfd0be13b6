// Which run scripts/gen-nats-conf.ts writes k8s/base/nats.conf's grants for (lib/deploy/k8s-nats-conf.ts
// natsConfRun): an overlay whose run.yaml names another run than the base's is refused unless named (--overlay,
// --run), since its pods would otherwise get grants for the base's run and be refused every stream (exit 78).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { natsConfRun, runYamlOf } from '../../lib/deploy/k8s-nats-conf.ts';

const dir = mkdtempSync(join(tmpdir(), 'gen-nats-conf-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function tree(overlayRun: string): string {
  const k8s = mkdtempSync(join(dir, 'k8s-'));
  mkdirSync(join(k8s, 'base'));
  cpSync('k8s/base/run.yaml', join(k8s, 'base', 'run.yaml'));
  mkdirSync(join(k8s, 'overlays', 'own'), { recursive: true });
  writeFileSync(join(k8s, 'overlays', 'own', 'run.yaml'), readFileSync('k8s/overlays/cpu-dev/run.yaml', 'utf8').replace(/^  id: recovery-grpo$/m, `  id: ${overlayRun}`));
  mkdirSync(join(k8s, 'overlays', 'on-own'));
  writeFileSync(join(k8s, 'overlays', 'on-own', 'kustomization.yaml'), 'resources:\n  - ../own\n');
  mkdirSync(join(k8s, 'overlays', 'on-base'));
  writeFileSync(join(k8s, 'overlays', 'on-base', 'kustomization.yaml'), 'resources:\n  - ../../base\n');
  return k8s;
}

test('the base\'s run while every overlay keeps it', () => {
  const k8s = tree('recovery-grpo');
  assert.deepEqual(natsConfRun(k8s, {}), { run: 'recovery-grpo', from: join(k8s, 'base', 'run.yaml') });
});

test('an overlay naming another run: refused until named, then its run (or the one it builds on)', () => {
  const k8s = tree('run-b');
  assert.throws(() => natsConfRun(k8s, {}), /overlays\/own\/run\.yaml names run run-b, .*base\/run\.yaml run recovery-grpo.*--overlay .*overlays\/on-own/);
  assert.equal(natsConfRun(k8s, { overlay: join(k8s, 'overlays', 'own') }).run, 'run-b');
  assert.equal(natsConfRun(k8s, { overlay: join(k8s, 'overlays', 'on-own') }).run, 'run-b', 'gpu-all reads gpu\'s run.yaml');
  assert.equal(natsConfRun(k8s, { overlay: join(k8s, 'overlays', 'on-base') }).run, 'recovery-grpo');
  assert.equal(natsConfRun(k8s, { run: 'run-c' }).run, 'run-c');
  assert.equal(natsConfRun(k8s, { anyRun: true }).run, undefined);
  assert.throws(() => natsConfRun(k8s, { run: 'run-c', overlay: join(k8s, 'overlays', 'own') }), /exclude each other/);
  assert.throws(() => natsConfRun(k8s, { overlay: dir }), /--overlay .*: no run\.yaml there/);
});

test('the repository\'s overlays: gpu-all mounts gpu\'s run.yaml', () => {
  assert.equal(runYamlOf('k8s/overlays/gpu-all'), join('k8s/overlays/gpu', 'run.yaml'));
});

test('--print says on stderr which run it named', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/gen-nats-conf.ts', '--print', '--overlay', 'k8s/overlays/gpu-all'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /the grants name run recovery-grpo \(from k8s\/overlays\/gpu\/run\.yaml\)/);
  assert.match(r.stdout, /^accounts \{/m);
});
