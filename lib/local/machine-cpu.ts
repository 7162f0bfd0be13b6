// The machine's busy CPU time, all cores and processes together (/proc/stat), so that a benchmark can tell how much
// of the cores other work took while an arm ran: the pipeline's figure on a shared machine follows that share
// (docs/performance-history/pipeline.md, "Round 11: pipe11").
import { readFileSync } from 'node:fs';
import { CLOCK_TICKS } from './proc-stat.ts';

/**
 * Busy CPU seconds of all cores since boot (user, nice, system, irq, softirq, steal: everything but idle and
 * iowait); undefined where /proc/stat cannot be read.
 */
export function machineBusySeconds(): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'utf8');
  } catch {
    return undefined;
  }
  return busySecondsOf(text);
}

/** The busy seconds in /proc/stat's text (its first line, all cores); undefined when that line is not one. */
export function busySecondsOf(stat: string): number | undefined {
  const line = stat.split('\n', 1)[0]!;
  if (!line.startsWith('cpu ')) return undefined;
  const f = line.trim().split(/\s+/).slice(1).map(Number); // user nice system idle iowait irq softirq steal ...
  if (f.length < 8 || f.some((x) => !Number.isInteger(x) || x < 0)) return undefined;
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / CLOCK_TICKS;
}
