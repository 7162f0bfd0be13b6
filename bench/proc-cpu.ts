// Another process's CPU time, for the benchmarks that charge nats-server (or a child) its share.
import { readdirSync, readFileSync } from 'node:fs';
import { cpuSecondsIn, readProcStat } from '../lib/local/proc-stat.ts';

/** CPU time (ms, user + system) of process `pid` so far, in clock ticks of 10 ms. Throws once it is gone. */
export function procCpuMs(pid: number): number {
  const s = readProcStat(pid);
  if (!s) throw new Error(`process ${pid}: no /proc/${pid}/stat (it has ended)`);
  return cpuSecondsIn(s) * 1000;
}

/**
 * CPU time (ms) of process `pid`'s live threads so far, to the nanosecond: the sum of /proc/<pid>/task/<tid>/schedstat's
 * first field (time on a CPU). /proc/<pid>/stat counts 10 ms ticks, too coarse for one 1.2 MB put (round 28); a thread
 * that has ended is not counted (nats-server's Go threads live as long as it does). Throws once the process is gone.
 */
export function procRunMs(pid: number): number {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    throw new Error(`process ${pid}: no /proc/${pid}/task (it has ended)`);
  }
  let ns = 0;
  for (const t of tids) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* the thread ended meanwhile */
    }
  }
  return ns / 1e6;
}
