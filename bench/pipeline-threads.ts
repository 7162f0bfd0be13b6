// Where each pipeline process's CPU goes by kind, per GRPO action (docs/performance-history/pipeline.md, "Round 14: roles14"): user
// and system time, the main thread against every other thread (V8's GC and compiler threads, onnxruntime's pool,
// libuv's), minor page faults and context switches, over the GRPO phase (the last SFT batch's acknowledgement to the
// last GRPO batch's). The arms run this checkout's runLocal with different node flags for every role (`;`-separated
// lists of space-separated flags, `default` for none), alternating round by round (the order flips each round), so
// that a role setting can be compared with its neighbours under the same load.
//
//   THREADS_ARMS='default;--max-semi-space-size=4' THREADS_REPS=2 THREADS_STALENESS=1 node --import tsx bench/pipeline-threads.ts
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg, tmpdir } from 'node:os';
import { runLocal } from '../lib/local/local-run.ts';
import { CLOCK_TICKS, readProcStat } from '../lib/local/proc-stat.ts';
import type { Supervisor } from '../lib/local/supervisor.ts';
import { benchOverrides } from './pipeline-single.ts';

const SFT = Number(process.env.THREADS_SFT ?? 30);
const GRPO = Number(process.env.THREADS_GRPO ?? 40);
const REPS = Number(process.env.THREADS_REPS ?? 2);
const STALENESS = (process.env.THREADS_STALENESS ?? '1').split(',').map(Number);
const ARMS = (process.env.THREADS_ARMS ?? 'default').split(';').map((a) => a.trim());
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const TICK_MS = 1000 / CLOCK_TICKS;

interface ProcSnap { mainUser: number; mainSys: number; otherUser: number; otherSys: number; minflt: number; vcsw: number; ivcsw: number; threads: number }

/** One process's counters now (all threads); undefined when it is gone. */
function snap(pid: number): ProcSnap | undefined {
  try {
    const whole = readProcStat(pid);
    if (!whole) return undefined;
    const out: ProcSnap = { mainUser: 0, mainSys: 0, otherUser: 0, otherSys: 0, minflt: whole.minorFaults, vcsw: 0, ivcsw: 0, threads: 0 };
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      let status: string;
      const f = readProcStat(pid, Number(tid));
      try {
        status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      } catch {
        continue; // a thread that ended meanwhile
      }
      if (!f) continue;
      const [u, s] = [f.userTicks * TICK_MS, f.systemTicks * TICK_MS];
      if (Number(tid) === pid) [out.mainUser, out.mainSys] = [u, s];
      else [out.otherUser, out.otherSys] = [out.otherUser + u, out.otherSys + s];
      out.vcsw += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
      out.ivcsw += Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
      out.threads++;
    }
    return out;
  } catch {
    return undefined;
  }
}

const snapAll = (pids: Record<string, number>) => Object.fromEntries(Object.entries(pids).flatMap(([n, p]) => { const s = snap(p); return s ? [[n, s]] : []; }));

async function runArm(flags: string[], staleness: number): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), 'pipeline-threads-'));
  let sup: Supervisor | undefined;
  let start: { at: number; s: Record<string, ProcSnap> } | undefined;
  let end: { at: number; s: Record<string, ProcSnap> } | undefined;
  try {
    const summary = await runLocal({
      out, seed: 0, sftSteps: SFT, steps: GRPO, nodeArgs: flags, overrides: benchOverrides(staleness),
      onStarted: (s) => (sup = s),
      log: (line) => {
        const m = /^\[(?:sft|grpo)\] batch (\d+)\/(\d+) /.exec(line);
        if (!m || !sup) return;
        if (Number(m[1]) === SFT) start = { at: Date.now(), s: snapAll(sup.pids()) };
        if (Number(m[1]) === Number(m[2])) end = { at: Date.now(), s: snapAll(sup.pids()) };
      },
    });
    if (!start || !end) return 'no GRPO phase seen';
    const actions = summary.samples_per_second * summary.grpo_seconds;
    const per = (x: number) => (x / actions).toFixed(3);
    const lines = [`${summary.samples_per_second.toFixed(1)} actions/s`];
    let total = 0;
    for (const name of Object.keys(end.s)) {
      const [a, b] = [start.s[name], end.s[name]];
      if (!a || !b) continue;
      const d = (k: keyof ProcSnap) => b[k] - a[k];
      const cpu = d('mainUser') + d('mainSys') + d('otherUser') + d('otherSys');
      total += cpu;
      lines.push(`    ${name.padEnd(13)} ${per(cpu)} ms/action: main ${per(d('mainUser'))} user + ${per(d('mainSys'))} sys, other threads ${per(d('otherUser'))} + ${per(d('otherSys'))} (${b.threads}); ` +
        `faults ${(d('minflt') / actions).toFixed(1)}, switches ${(d('vcsw') / actions).toFixed(2)} + ${(d('ivcsw') / actions).toFixed(2)} per action`);
    }
    lines[0] += `, CPU ${per(total)} ms per action`;
    return lines.join('\n');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

console.log(`pipeline threads: ${GRPO} GRPO steps after ${SFT}, arms ${ARMS.map((a) => `[${a}]`).join(' ')}, ${REPS} round(s); load ${load()}`);
for (const staleness of STALENESS) {
  for (let round = 0; round < REPS; round++) {
    for (const arm of round % 2 ? [...ARMS].reverse() : ARMS) {
      const flags = arm === 'default' ? [] : arm.split(/\s+/).filter(Boolean);
      const r = await runArm(flags, staleness);
      console.log(`  staleness ${staleness}, round ${round + 1}, [${arm}]: ${r}\n    load ${load()}`);
    }
  }
}
