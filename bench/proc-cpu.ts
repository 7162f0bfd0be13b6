// Another process's CPU time and page faults, for the benchmarks that charge nats-server (or a child) its share.
import { readFileSync } from 'node:fs';

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
