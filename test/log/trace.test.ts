// lib/log/trace.ts reads $RECOVERY_GRPO_TRACE once, at the first trace or traceEnabled call (issue #15: not per call).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type TraceModule = typeof import('../../lib/log/trace.ts');
/** A fresh instance of the module (its own once-read state). */
const fresh = (tag: string) => import(`../../lib/log/trace.ts?${tag}`) as Promise<TraceModule>;

test('trace: set before the first call, it writes there, for every later call whatever the environment says then', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trace-test-'));
  const saved = process.env.RECOVERY_GRPO_TRACE;
  try {
    const a = join(dir, 'a.jsonl');
    const b = join(dir, 'b.jsonl');
    process.env.RECOVERY_GRPO_TRACE = a;
    const t = await fresh('on');
    t.traceRole('tester');
    t.trace('first', { n: 1 });
    process.env.RECOVERY_GRPO_TRACE = b;
    t.trace('second');
    delete process.env.RECOVERY_GRPO_TRACE;
    assert.equal(t.traceEnabled(), true);
    t.trace('third');
    const lines = t.readTrace<Record<string, unknown>>(a); // the reader the benches use
    assert.deepEqual(lines.map((l) => l.ev), ['first', 'second', 'third']);
    assert.equal(lines[0]!.role, 'tester');
    assert.equal(lines[0]!.n, 1);
    assert.equal(lines[0]!.pid, process.pid);
    assert.equal(existsSync(b), false);
  } finally {
    if (saved === undefined) delete process.env.RECOVERY_GRPO_TRACE;
    else process.env.RECOVERY_GRPO_TRACE = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('trace: unset at the first call, it stays off', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trace-test-'));
  const saved = process.env.RECOVERY_GRPO_TRACE;
  try {
    delete process.env.RECOVERY_GRPO_TRACE;
    const t = await fresh('off');
    t.trace('first');
    const late = join(dir, 'late.jsonl');
    process.env.RECOVERY_GRPO_TRACE = late;
    t.trace('second');
    assert.equal(t.traceEnabled(), false);
    assert.equal(existsSync(late), false);
  } finally {
    if (saved === undefined) delete process.env.RECOVERY_GRPO_TRACE;
    else process.env.RECOVERY_GRPO_TRACE = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('traceEnabled: its first call reads the variable for trace too (checkpoint-push gates on it)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trace-test-'));
  const saved = process.env.RECOVERY_GRPO_TRACE;
  try {
    const a = join(dir, 'a.jsonl');
    process.env.RECOVERY_GRPO_TRACE = a;
    const t = await fresh('enabled-first');
    assert.equal(t.traceEnabled(), true);
    delete process.env.RECOVERY_GRPO_TRACE;
    assert.equal(t.traceEnabled(), true);
    t.trace('after');
    assert.deepEqual(readFileSync(a, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { ev: string }).ev), ['after']);
    delete process.env.RECOVERY_GRPO_TRACE;
    const off = await fresh('enabled-off');
    assert.equal(off.traceEnabled(), false);
    process.env.RECOVERY_GRPO_TRACE = a;
    assert.equal(off.traceEnabled(), false);
  } finally {
    if (saved === undefined) delete process.env.RECOVERY_GRPO_TRACE;
    else process.env.RECOVERY_GRPO_TRACE = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});
