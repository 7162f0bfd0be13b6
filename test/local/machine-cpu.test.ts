// lib/local/machine-cpu.ts: the machine's busy CPU time that the pipeline benchmarks subtract their arm's own from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { busySecondsOf, machineBusySeconds } from '../../lib/local/machine-cpu.ts';

test('busySecondsOf: user, nice, system, irq, softirq and steal count; idle and iowait do not', () => {
  // user nice system idle iowait irq softirq steal guest guest_nice, in USER_HZ ticks
  assert.equal(busySecondsOf('cpu  100 200 300 40000 500 600 700 800 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n'), 27);
  assert.equal(busySecondsOf('cpu  1 0 0 999 0 0 0 0\n'), 0.01);
});

test('busySecondsOf: anything but the all-cores line is refused', () => {
  assert.equal(busySecondsOf(''), undefined);
  assert.equal(busySecondsOf('cpu0 1 2 3 4 5 6 7 8\n'), undefined); // one core's line
  assert.equal(busySecondsOf('cpu  1 2 3 4 5 6 7\n'), undefined); // no steal field
  assert.equal(busySecondsOf('cpu  1 2 x 4 5 6 7 8\n'), undefined);
  assert.equal(busySecondsOf('cpu  1 2 -3 4 5 6 7 8\n'), undefined);
});

test('machineBusySeconds counts this process\'s own CPU time', { skip: !existsSync('/proc/stat') }, () => {
  const m0 = machineBusySeconds()!;
  const c0 = process.cpuUsage();
  let x = 0;
  for (;;) {
    for (let i = 0; i < 1e5; i++) x += Math.sqrt(i);
    const c = process.cpuUsage(c0);
    if (c.user + c.system >= 300_000) break;
  }
  assert.ok(x > 0);
  const m1 = machineBusySeconds()!;
  // 0.3 s of this process's CPU are part of the machine's busy time (ticks of 10 ms: a little less may show)
  assert.ok(m1 - m0 >= 0.25, `machine busy grew ${(m1 - m0).toFixed(2)} s over 0.3 s of this process's CPU`);
});
