// Another process's CPU time, for the benchmarks that charge nats-server (or a child) its share.
import { readFileSync } from 'node:fs';

/** CPU time (ms, user + system) of process `pid` so far, from /proc/<pid>/stat: clock ticks of 10 ms (USER_HZ 100). */
export function procCpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100;
}
