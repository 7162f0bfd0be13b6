// Another process's CPU time and page faults, for the benchmarks that charge nats-server (or a child) its share.
import { readdirSync, readFileSync } from 'node:fs';

/**
 * /proc/<pid>/stat's fields after the command name (state is [0], minor faults [7], utime [11], stime [12]); undefined
 * once the process is gone. The name is cut at the last ')': a command name may hold ') ' itself.
 */
export function procStat(pid: number): string[] | undefined {
  let f: string;
  try {
    f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return f.slice(f.lastIndexOf(')') + 2).split(' ');
}

/** CPU time (ms, user + system) in procStat's fields: clock ticks of 10 ms (USER_HZ 100). */
export const statCpuMs = (f: readonly string[]): number => ((Number(f[11]) + Number(f[12])) * 1000) / 100;

/** CPU time (ms, user + system) of process `pid` so far. Throws once it is gone. */
export function procCpuMs(pid: number): number {
  const f = procStat(pid);
  if (!f) throw new Error(`process ${pid}: no /proc/${pid}/stat (it has ended)`);
  return statCpuMs(f);
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
