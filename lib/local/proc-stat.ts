// Linux's counters of a process or one of its threads (/proc/<pid>/stat, /proc/<pid>/task/<tid>/stat; proc(5)),
// read in one place: the local run's CPU per role, the benchmarks' CPU of nats-server and of threads, and the tests'
// wait for a stopped server all parse the same line.
import { readFileSync } from 'node:fs';

/** USER_HZ: 100 on every Linux architecture Node runs on (the unit of utime and stime). */
export const CLOCK_TICKS = 100;

/** The fields of a stat line the project reads. */
export interface ProcStat {
  /** One letter: R running, S sleeping, D disk wait, T stopped by a signal, t stopped by tracing, Z zombie, ... */
  state: string;
  /** Minor page faults so far (field 10). */
  minorFaults: number;
  /** CPU time in user and kernel mode so far, in clock ticks (fields 14, 15). */
  userTicks: number;
  systemTicks: number;
}

/**
 * Parses a stat line. The command name (field 2) is in parentheses and may hold spaces and ')' itself, so the
 * fields are counted from the *last* ')'. Throws, naming `source`, on a line that is not one.
 */
export function parseProcStat(text: string, source = 'stat line'): ProcStat {
  const close = text.lastIndexOf(')');
  const f = close < 0 ? [] : text.slice(close + 2).trim().split(' ');
  const num = (i: number) => (/^\d+$/.test(f[i] ?? '') ? Number(f[i]) : NaN);
  const stat = { state: f[0] ?? '', minorFaults: num(7), userTicks: num(11), systemTicks: num(12) };
  if (!/^[A-Za-z]$/.test(stat.state) || [stat.minorFaults, stat.userTicks, stat.systemTicks].some(Number.isNaN)) {
    throw new Error(`${source} is not a /proc stat line: ${JSON.stringify(text.slice(0, 80))}`);
  }
  return stat;
}

/**
 * The stat of process `pid`, or of its thread `tid`; undefined once it is gone (or where /proc cannot be read: not
 * Linux).
 */
export function readProcStat(pid: number, tid?: number): ProcStat | undefined {
  const path = tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return parseProcStat(text, path);
}

/** CPU time (seconds, user + system) in a stat: for a process, all its threads so far. */
export const cpuSecondsIn = (s: ProcStat): number => (s.userTicks + s.systemTicks) / CLOCK_TICKS;
