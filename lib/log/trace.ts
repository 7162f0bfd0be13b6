// Per-process event timeline for finding where the pipeline's time goes (bench/pipeline.bench.ts with
// BENCH_TRACE=DIR; docs/performance.md "Pipeline"). Off unless $RECOVERY_GRPO_TRACE names a file: then each call
// appends one JSON line {t (ms, comparable across processes on one machine), cpu (the process's CPU ms so far), pid, role, ev, ...fields}.
// The variable is read once, at the process's first trace or traceEnabled call (process.env is a slow lookup, ~1% of
// the orchestrator's CPU when read per call: issue #15), and kept: set it before the process traces anything, and
// not again for another file. The benches give it to the processes they start (bench/pipeline.bench.ts: runLocal's
// `env`, a file per run, never its own process.env; bench/learner-grpo.ts: the child's environment) or set it once
// before they import the roles (bench/learner-publish.ts: one child process per checkout).
import { appendFileSync, readFileSync } from 'node:fs';

export const TRACE_ENV = 'RECOVERY_GRPO_TRACE';
let role = '';
/** The trace file: null until the first trace or traceEnabled call reads $RECOVERY_GRPO_TRACE, then its value ('' when off). */
let file: string | null = null;

/** Names this process in its trace lines. */
export function traceRole(name: string): void {
  role = name;
}

/**
 * This process's CPU time so far (user + system, every thread), ms to 0.01: getrusage counts microseconds here, and a
 * follower's steps per checkpoint take 0.03-0.8 ms each (whole milliseconds hid them: round 28, bcast28).
 */
function cpuMs(): number {
  const u = process.cpuUsage();
  return Math.round((u.user + u.system) / 10) / 100;
}

/** The trace file, '' when off: $RECOVERY_GRPO_TRACE as read at the first call. */
function traceFile(): string {
  if (file === null) file = process.env[TRACE_ENV] ?? '';
  return file;
}

/** Whether this process traces: $RECOVERY_GRPO_TRACE as read once (at the first call of this or trace). */
export function traceEnabled(): boolean {
  return traceFile() !== '';
}

export function trace(ev: string, fields?: Record<string, string | number | boolean | undefined>): void {
  const f = traceFile();
  if (!f) return;
  appendFileSync(f, JSON.stringify({ t: +(performance.timeOrigin + performance.now()).toFixed(2), cpu: cpuMs(), pid: process.pid, role, ev, ...fields }) + '\n');
}

/** A trace file's lines as written by trace(), in file order (the benches' readers give E its fields). */
export function readTrace<E>(file: string): E[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as E);
}
