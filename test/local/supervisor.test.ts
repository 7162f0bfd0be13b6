// The supervisor restarts a child that crashes or is killed, but not one that exits with CONFIG_EXIT_CODE (a refused
// option or configuration, a device its machine lacks) nor one that crash-loops (exits 1 each time soon after its
// start): then it stops every child and whenDone rejects with the child's name and its last error lines. A child
// killed by a signal, or one that ran a while before it failed, is restarted however often. Real child processes
// (node -e).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CRASH_LOOP, Supervisor } from '../../lib/local/supervisor.ts';
import { CONFIG_EXIT_CODE } from '../../lib/config/setup-error.ts';
import { withTimeout } from '../../lib/async/with-timeout.ts';

/** Polls `done` every 25 ms for at most 40 s (a loaded machine starts node slowly). */
const until = async (done: () => boolean) => {
  for (let i = 0; i < 1600 && !done(); i++) await new Promise((r) => setTimeout(r, 25));
};

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test(`supervisor: a child that exits with ${CONFIG_EXIT_CODE} is not restarted; the run stops and whenDone names it and its last error lines`, { timeout: 60_000 }, async () => {
  const logged: string[] = [];
  const sup = new Supervisor((l) => logged.push(l));
  // the one whenDone waits for: runs until stopped
  sup.start({ name: 'main', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'], doneOnExitCode: 0 });
  const mainPid = sup.pid('main')!;
  // as a role that cannot use its device: its reason on stderr (with an ANSI colour), then CONFIG_EXIT_CODE
  const refuses = `console.log('starting'); console.error('\\x1b[31merror: device cuda: onnxruntime could not create the session\\x1b[0m'); console.log('bye'); process.exit(${CONFIG_EXIT_CODE})`;
  sup.start({ name: 'worker-0', command: process.execPath, args: ['-e', refuses], onLine: () => undefined });
  try {
    await assert.rejects(sup.whenDone('main', 20), (e: Error) => {
      assert.match(e.message, new RegExp(`^worker-0 cannot run as it is set up \\(exit code ${CONFIG_EXIT_CODE}, not restarted; see docs/roles\\.md\\): error: device cuda: onnxruntime could not create the session$`));
      return true;
    });
    assert.equal(sup.restarts['worker-0'], undefined, `not restarted:\n${logged.join('\n')}`);
    assert.ok(logged.some((l) => l.startsWith(`[supervisor] worker-0 exited with code ${CONFIG_EXIT_CODE}`)), logged.join('\n'));
    // every other child is stopped too
    for (let i = 0; i < 100 && alive(mainPid); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(mainPid), false, 'the other child was stopped');
  } finally {
    await sup.stopAll();
  }
});

test('supervisor: a child that crashes (exit 1) or is killed (SIGKILL) is restarted', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'supervisor-'));
  const marker = join(dir, 'crashed-once');
  const logged: string[] = [];
  const sup = new Supervisor((l) => logged.push(l));
  // the first start crashes, the second finishes (done code 0)
  const crashOnce = "const fs = require('fs'); const f = process.argv[1]; if (!fs.existsSync(f)) { fs.writeFileSync(f, ''); console.error('Error: boom'); process.exit(1); } process.exit(0)";
  sup.start({ name: 'crashy', command: process.execPath, args: ['-e', crashOnce, marker], doneOnExitCode: 0, onLine: () => undefined });
  sup.start({ name: 'killed', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] });
  try {
    await sup.whenDone('crashy', 20);
    assert.equal(existsSync(marker), true);
    assert.equal(sup.restarts.crashy, 1, logged.join('\n'));
    const first = sup.pid('killed')!;
    assert.equal(sup.kill('killed'), true);
    for (let i = 0; i < 200 && (sup.pid('killed') === undefined || sup.pid('killed') === first); i++) await new Promise((r) => setTimeout(r, 25));
    assert.notEqual(sup.pid('killed'), undefined, logged.join('\n'));
    assert.notEqual(sup.pid('killed'), first);
    assert.equal(sup.restarts.killed, 1);
  } finally {
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('supervisor: killAll SIGKILLs every child at once, one that ignores SIGTERM included, and restarts none (a local run\'s second signal)', { timeout: 60_000 }, async () => {
  const logged: string[] = [];
  const sup = new Supervisor((l) => logged.push(l));
  const deaf = "process.on('SIGTERM', () => console.log('ignored')); console.log('up'); setInterval(() => {}, 1000)";
  const up = (name: string) => new Promise<void>((resolve) => sup.start({ name, command: process.execPath, args: ['-e', deaf], onLine: (l) => void (l === 'up' && resolve()) }));
  await Promise.all([up('a'), up('b')]);
  const pids = Object.values(sup.pids());
  assert.equal(pids.length, 2);
  try {
    sup.killAll(); // alone: that it restarts none is killAll's own doing, not a stopAll's before it
    for (let i = 0; i < 100 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(pids.filter(alive), [], 'every child is gone');
    await new Promise((r) => setTimeout(r, 1500)); // past the supervisor's first restart delay (500 ms)
    assert.deepEqual(sup.pids(), {}, `none restarted:\n${logged.join('\n')}`);
    assert.equal(logged.some((l) => /restart/i.test(l)), false, logged.join('\n'));
  } finally {
    await sup.stopAll(500); // whatever killAll left (a restarted child ignores the SIGTERM: SIGKILL after 0.5 s)
  }
});

test('supervisor: a child that exits 1 soon after each start is restarted only until its crash loop is plain; the run stops naming it, its exit code and its last error lines', { timeout: 60_000 }, async () => {
  const logged: string[] = [];
  const sup = new Supervisor((l) => logged.push(l), { exits: 3, withinMs: 10_000 });
  sup.start({ name: 'main', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'], doneOnExitCode: 0 });
  const mainPid = sup.pid('main')!;
  // as a role whose NATS refuses its credentials, every time
  const fatal = "console.log('starting'); console.error('\\x1b[31merror: nats: Authorization Violation\\x1b[0m'); process.exit(1)";
  sup.start({ name: 'learner', command: process.execPath, args: ['-e', fatal], onLine: () => undefined });
  try {
    // bounded: before, the child was restarted for ever and whenDone never settled (a test hung 240 s)
    const outcome = await withTimeout(sup.whenDone('main', 20).then(() => 'done', (e: Error) => e), 30_000);
    assert.ok(outcome instanceof Error, `whenDone rejects (got ${String(outcome)}):\n${logged.join('\n')}`);
    assert.match(outcome.message, /^learner crash-looped: exited with code 1 3 times in a row, each within 10 s of its start \(not restarted again; see docs\/roles\.md\): error: nats: Authorization Violation$/);
    assert.equal(sup.restarts.learner, 2, `restarted twice, then stopped:\n${logged.join('\n')}`);
    assert.ok(logged.some((l) => l.startsWith('[supervisor] learner exited with code 1 3 times in a row')), logged.join('\n'));
    for (let i = 0; i < 100 && alive(mainPid); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(mainPid), false, 'the other child was stopped');
  } finally {
    await sup.stopAll();
  }
});

test('supervisor: a child killed by a signal soon after each start, or one that failed after running a while, is restarted however often', { timeout: 120_000 }, async () => {
  const logged: string[] = [];
  const sup = new Supervisor((l) => logged.push(l), { exits: 2, withinMs: 300 });
  // fails (exit 1) after running longer than withinMs: its failures never count
  sup.start({ name: 'slow-fail', command: process.execPath, args: ['-e', "setTimeout(() => { console.error('Error: late'); process.exit(1); }, 600)"], onLine: () => undefined });
  const started: number[] = [];
  sup.start({ name: 'killed', command: process.execPath, args: ['-e', "console.log('up'); setInterval(() => {}, 1000)"], onLine: (l) => void (l === 'up' && started.push(sup.pid('killed')!)) });
  try {
    // kill -9 three times (more than exits), each soon after its start
    for (let n = 1; n <= 3; n++) {
      await until(() => started.length >= n);
      assert.equal(started.length, n, `start ${n}:\n${logged.join('\n')}`);
      assert.equal(sup.kill('killed'), true);
    }
    await until(() => started.length >= 4);
    assert.equal(started.length, 4, `restarted after every kill:\n${logged.join('\n')}`);
    await until(() => (sup.restarts['slow-fail'] ?? 0) >= 3);
    assert.ok((sup.restarts['slow-fail'] ?? 0) >= 3, `a late failure is restarted each time:\n${logged.join('\n')}`);
    assert.equal(logged.some((l) => /crash loop|stopping every process/.test(l)), false, logged.join('\n'));
  } finally {
    await sup.stopAll();
  }
});

test('supervisor: a long run ended by a signal starts the crash-loop count again, as a long run that failed does', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sup-signal-reset-'));
  const logged: string[] = [];
  const sup = new Supervisor((l) => logged.push(l), { exits: 2, withinMs: 3000 });
  // start 1: exits 1 at once; 2: runs (until killed, after more than withinMs); 3: exits 1 at once; 4: runs. Two
  // quick failures stop the run, so start 3's is the second in a row unless the long run started the count again
  // (round 30: was 2 + 2 failures at exits 3, and the supervisor's growing restart delays made it 15 s; now ~7 s)
  const script = "const fs = require('fs'); const f = process.argv[1]; const n = (fs.existsSync(f) ? Number(fs.readFileSync(f, 'utf8')) : 0) + 1; fs.writeFileSync(f, String(n)); console.log('run ' + n); if (n === 2 || n >= 4) setInterval(() => {}, 1000); else { console.error('error: quick'); process.exit(1); }";
  const runs: number[] = [];
  sup.start({ name: 'c', command: process.execPath, args: ['-e', script, join(dir, 'count')], onLine: (l) => void (/^run \d+$/.test(l) && runs.push(Number(l.slice(4)))) });
  let stopped: Error | undefined;
  sup.whenDone('c').catch((e: Error) => (stopped = e));
  try {
    await until(() => runs.includes(2));
    await new Promise((r) => setTimeout(r, 3500)); // ran longer than withinMs
    assert.equal(sup.kill('c', 'SIGKILL'), true);
    // before the fix starts 1 and 3 made 2 quick failures in a row: the run stopped as a crash loop
    await until(() => runs.includes(4) || stopped !== undefined);
    assert.equal(stopped, undefined, `stopped as a crash loop:\n${logged.join('\n')}`);
    assert.ok(runs.includes(4), `not restarted after its third start:\n${logged.join('\n')}`);
  } finally {
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('supervisor: crash-loop limits it cannot use are refused, naming the field', () => {
  assert.throws(() => new Supervisor(() => undefined, { exits: 0, withinMs: 1000 }), /^Error: crashLoop\.exits must be an integer >= 1 .*got 0$/);
  assert.throws(() => new Supervisor(() => undefined, { exits: 3, withinMs: -1 }), /^Error: crashLoop\.withinMs must be a number > 0 .*got -1$/);
  assert.deepEqual(DEFAULT_CRASH_LOOP, { exits: 5, withinMs: 30_000 }, 'the defaults as documented (docs/roles.md)');
});
