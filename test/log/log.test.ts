// lib/log: JSON lines with the process context when not at a terminal, readable lines at one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createProcessLogger, logFormat, parseLogLine } from '../../lib/log/index.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function capture(): { lines: string[]; write(s: string): void } {
  const lines: string[] = [];
  return { lines, write: (s: string) => void lines.push(...s.split('\n').filter(Boolean)) };
}

test('JSON: one object per line with level, time, role, worker id, run id and the policy version at the time of the line', () => {
  const out = capture();
  let version: number | undefined;
  let runId: string | undefined;
  const log = createProcessLogger({ role: 'rollout', workerId: 'rollout-7', runId: () => runId, policyVersion: () => version }, { format: 'json', stream: out });
  log.info('dialling');
  runId = 'run-a';
  version = 12;
  log.warn('task t1: timeout', { task_id: 't1' });
  version = 13;
  log.error('stopped');
  assert.equal(out.lines.length, 3);
  const [a, b, c] = out.lines.map(parseLogLine);
  assert.deepEqual({ ...a, time: undefined }, { level: 'info', time: undefined, role: 'rollout', worker_id: 'rollout-7', msg: 'dialling' }, 'no run id or version before they are known');
  assert.ok(!Number.isNaN(Date.parse(a!.time)), 'an ISO time');
  assert.equal(b!.level, 'warn');
  assert.equal(b!.run_id, 'run-a');
  assert.equal(b!.policy_version, 12);
  assert.equal(b!.task_id, 't1');
  assert.equal(c!.level, 'error');
  assert.equal(c!.policy_version, 13, 'read when the line is written');
});

test('JSON: setContext adds the run id later (the orchestrator knows it once its configuration is read)', () => {
  const out = capture();
  const log = createProcessLogger({ role: 'orchestrator' }, { format: 'json', stream: out });
  log.info('starting');
  log.setContext({ runId: 'r1', policyVersion: () => 4 });
  log.info('listening');
  const [a, b] = out.lines.map(parseLogLine);
  assert.equal(a!.run_id, undefined);
  assert.equal(b!.run_id, 'r1');
  assert.equal(b!.policy_version, 4);
});

test('text: today\'s readable line, `time level [role worker-id] message {fields}`', () => {
  const out = capture();
  const log = createProcessLogger({ role: 'reward', workerId: 'reward-1', policyVersion: () => 3 }, { format: 'text', stream: out });
  log.info('joined run r', { policy_version: 3 });
  log.warn('plain');
  assert.match(out.lines[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info \[reward reward-1\] joined run r \{"policy_version":3\}$/);
  assert.match(out.lines[1]!, / warn \[reward reward-1\] plain$/);
  assert.throws(() => JSON.parse(out.lines[1]!));
});

test('the format: JSON unless the output is a terminal; RECOVERY_GRPO_LOG_FORMAT overrides; a bad value is refused by name', () => {
  assert.equal(logFormat(2, {}, () => false), 'json');
  assert.equal(logFormat(2, {}, () => true), 'text');
  assert.equal(logFormat(2, { RECOVERY_GRPO_LOG_FORMAT: 'json' }, () => true), 'json');
  assert.equal(logFormat(1, { RECOVERY_GRPO_LOG_FORMAT: 'text' }, () => false), 'text');
  assert.throws(() => logFormat(2, { RECOVERY_GRPO_LOG_FORMAT: 'yaml' }), /RECOVERY_GRPO_LOG_FORMAT must be json or text, not "yaml"/);
});

test('parseLogLine names what is wrong', () => {
  assert.throws(() => parseLogLine('2026 info [x] hi'), /log line is not JSON/);
  assert.throws(() => parseLogLine('[1]'), /not a JSON object/);
  assert.throws(() => parseLogLine('{"level":"info","time":"t","msg":"m"}'), /no string "role"/);
  assert.throws(() => parseLogLine('{"level":"loud","time":"t","role":"r","msg":"m"}'), /unknown level "loud"/);
});

test('a process writing to a pipe logs JSON to its file descriptor, synchronously (nothing lost on exit)', () => {
  const script = `
    import { createProcessLogger } from './lib/log/index.ts';
    const log = createProcessLogger({ role: 'learner', workerId: 'l1' }, { fd: 2 });
    for (let i = 0; i < 200; i++) log.info('line ' + i, { i });
    process.exit(0);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, RECOVERY_GRPO_LOG_FORMAT: '' } });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stderr.split('\n').filter(Boolean).map(parseLogLine);
  assert.equal(lines.length, 200);
  assert.deepEqual(lines.map((l) => l.i), [...Array(200).keys()]);
  assert.ok(lines.every((l) => l.role === 'learner' && l.worker_id === 'l1' && l.level === 'info'));
});
