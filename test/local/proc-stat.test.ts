import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpuSecondsIn, parseProcStat, readProcStat } from '../../lib/local/proc-stat.ts';
import { waitFor } from '../helpers/wait.ts';

// A stat line as proc(5) gives it (fields 1-20 here; the file has more), with a command name that holds ') ' and
// spaces, which the fields must be counted past.
const line = (name: string, state: string) =>
  `4242 (${name}) ${state} 1 4242 4242 0 -1 4194560 1234 0 5 0 317 29 0 0 20 0 7 0\n`;

test('parseProcStat counts the fields from the last ")": a command name may hold ") " and spaces', () => {
  for (const name of ['node', 'a) b', 'x) S 1 2 3 (y', ') )']) {
    assert.deepEqual(parseProcStat(line(name, 'T')), { state: 'T', minorFaults: 1234, userTicks: 317, systemTicks: 29 }, name);
  }
  assert.equal(cpuSecondsIn(parseProcStat(line('node', 'R'))), 3.46);
});

test('parseProcStat refuses a line that is not a stat line, naming its source', () => {
  assert.throws(() => parseProcStat('', '/proc/1/stat'), /\/proc\/1\/stat is not a \/proc stat line/);
  assert.throws(() => parseProcStat('4242 node R 1 2', 'x'), /x is not a \/proc stat line/); // no parentheses
  assert.throws(() => parseProcStat('4242 (node) R 1 2 3', 'x'), /not a \/proc stat line/); // too short
  assert.throws(() => parseProcStat(line('node', 'R').replace(' 317 ', ' -3 '), 'x'), /not a \/proc stat line/);
});

test('readProcStat reads a live process and its threads, sees a stopped one, and gives undefined once it is gone', { skip: !existsSync('/proc/self/stat') && 'no /proc' }, async () => {
  const own = readProcStat(process.pid)!;
  assert.equal(own.state, 'R'); // this thread is running while it reads its own stat
  assert.equal(readProcStat(process.pid, process.pid)?.state, 'R');
  // the process's CPU time covers the CPU this process reports of itself, to within a tick per thread
  const usage = process.cpuUsage();
  const mine = cpuSecondsIn(readProcStat(process.pid)!);
  assert.ok(mine >= (usage.user + usage.system) / 1e6 - 0.5, `${mine} s in /proc against cpuUsage ${(usage.user + usage.system) / 1e6} s`);

  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    const pid = child.pid!;
    await waitFor(() => readProcStat(pid)?.state === 'S', 'sleep asleep', undefined, 10_000);
    child.kill('SIGSTOP');
    await waitFor(() => readProcStat(pid)?.state === 'T', 'sleep stopped', undefined, 10_000);
  } finally {
    child.kill('SIGKILL');
  }
  await new Promise((r) => child.once('exit', r)); // reaped by Node: its /proc entry is gone
  assert.equal(readProcStat(child.pid!), undefined);
});
