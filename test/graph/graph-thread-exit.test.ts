// How a process with graph threads ends, in child processes (a process.exit while a thread is inside an onnxruntime
// run aborts the process with 134: test/graph/graph-thread.test.ts shows it): a second SIGINT / SIGTERM ends a role
// at once without aborting (lib/worker/stop-signals.ts), and a graph thread that ends unasked ends the process with
// an error that names the graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

interface Ended {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a child of this folder; `onLine` sees each stdout line (to signal it). Resolves when it has ended. */
function runChild(file: string, args: string[], onLine: (line: string, kill: (s: NodeJS.Signals) => void) => void = () => {}): Promise<Ended> {
  // killed after 100 s should it never end (a regression): a child left running graphs would stall the suite
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(file, import.meta.url)), ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 100_000, killSignal: 'SIGKILL' });
  let stdout = '';
  let stderr = '';
  createInterface({ input: child.stdout }).on('line', (line) => {
    stdout += `${line}\n`;
    if (line) onLine(line, (s) => child.kill(s));
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.on('exit', (status, signal) => resolve({ status, signal, stdout, stderr })));
}

/** The first signal on 'running', the second once the child says it is stopping. */
const twoSignals = (first: NodeJS.Signals, second: NodeJS.Signals) => (line: string, kill: (s: NodeJS.Signals) => void) => {
  if (line === 'running') kill(first);
  if (line.startsWith('stopping')) kill(second);
};

const aborted = (e: Ended) => e.status === 134 || e.signal === 'SIGABRT';

// The children start together (each loads onnxruntime and builds its graph); each test awaits its own.
const busyTwice = (['SIGINT', 'SIGTERM'] as const).map((signal) => ({ signal, ended: runChild('./graph-signal-child.ts', ['busy'], twoSignals(signal, signal)) }));
const idleTwice = runChild('./graph-signal-child.ts', ['idle'], twoSignals('SIGTERM', 'SIGINT'));
const death = runChild('./graph-death-child.ts', []);

test('a second signal while a graph thread is inside a run ends the process by that signal, not by an abort (134)', { timeout: 120_000 }, async () => {
  for (const { signal, ended } of busyTwice) {
    const e = await ended;
    assert.ok(!aborted(e), `${signal} twice mid-run aborted the process: status ${e.status}, signal ${e.signal}, stderr ${e.stderr.slice(-300)}`);
    assert.equal(e.signal, signal, `${signal} twice mid-run: ended by the signal (a shell reports 128 + its number); status ${e.status}, stderr ${e.stderr.slice(-300)}`);
    assert.match(e.stdout, new RegExp(`stopping \\(${signal}\\)`), 'the first signal started the stop');
  }
});

test('a second signal with the graph threads idle exits with 128 + its number (130 for SIGINT)', { timeout: 120_000 }, async () => {
  const e = await idleTwice;
  assert.equal(e.status, 130, `status ${e.status}, signal ${e.signal}, stderr ${e.stderr.slice(-300)}`);
});

test('a graph thread that ends unasked ends the process (1) with an error naming the graph; its calls fail, the main thread\'s session keeps its values', { timeout: 120_000 }, async () => {
  const e = await death;
  assert.ok(!aborted(e), `aborted (another thread was inside a run): status ${e.status}, signal ${e.signal}, stderr ${e.stderr.slice(-300)}`);
  assert.equal(e.status, 1, `status ${e.status}, signal ${e.signal}, stderr ${e.stderr.slice(-300)}`);
  assert.match(e.stderr, /graph thread of doomed graph exited unexpectedly \(code 1\)/, `stderr: ${e.stderr.slice(-300)}`);
  assert.match(e.stdout, /doomed call: graph thread of doomed graph exited unexpectedly/, 'the dead thread\'s next call fails with the reason');
  assert.match(e.stdout, /main thread: same values/);
});
