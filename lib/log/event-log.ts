// A run's event log (`--events FILE`, events.jsonl): one JSON object per line, `{ t, type, ... }`, appended by the
// orchestrator (audit events, progress and evaluation lines) and read by the orchestrator at resume and by the
// sweep's report. One writer format and one reader, so all of them agree on what a line is.
import { appendFileSync, closeSync, existsSync, openSync, readSync, writeSync } from 'node:fs';
import { SetupError } from '../config/setup-error.ts';

const line = (e: object) => `${JSON.stringify({ t: Date.now(), ...e })}\n`;

/** Appends `e` as one line, stamped with the time: one synchronous write, so a kill loses at most that line. */
export function appendEventLine(file: string, e: object): void {
  appendFileSync(file, line(e));
}

/**
 * Opens `file` for appending, creating it, and closes it: a run's event log that cannot be written is refused at
 * start (a SetupError naming `name`, the flag or option), not after the first trained batch was persisted.
 */
export function checkEventLogWritable(file: string, name: string): void {
  try {
    if (file.trim() === '') throw new Error('the file name is empty');
    closeSync(openSync(file, 'a'));
  } catch (e) {
    throw new SetupError(`${name} ${file}: cannot open it for appending (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
}

/** A run's event log held open by its one writer (the orchestrator). */
export interface EventLog {
  /** As appendEventLine: one line, written synchronously before it returns. */
  append(e: object): void;
  /** Closes the file; a later append still writes its line (appendEventLine's way: opened, written, closed). */
  close(): void;
}

/**
 * The event log `file`, opened for appending once instead of once per line: appendFileSync opens, writes and
 * closes the file per event, and the open and close were most of its cost (~0.2 ms an event, nine events per
 * GRPO batch; docs/performance-history/pipeline.md, "Round 13: orch13"). Each line is still one synchronous write (O_APPEND)
 * that is in the file when append returns, so what a reader sees and what a kill loses are unchanged.
 */
export function openEventLog(file: string): EventLog {
  let fd: number | undefined;
  let closed = false;
  return {
    append(e) {
      if (closed) return appendEventLine(file, e);
      fd ??= openSync(file, 'a');
      const b = Buffer.from(line(e));
      // a regular file takes the whole write; the loop is for the odd short write all the same
      for (let off = 0; off < b.length;) off += writeSync(fd, b, off, b.length - off);
    },
    close() {
      closed = true;
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/**
 * The events of `file` in order ([] when there is none). A line that is not a JSON object is skipped: the last
 * line without its newline (still being written, or cut by a kill) and a cut line that the next append ran on.
 */
export function readEvents(file: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  forEachEvent(file, (e) => out.push(e));
  return out;
}

/** Bytes read at a time by forEachEvent. */
const BLOCK = 1 << 20;

/**
 * Calls `fn` with each event of `file` in order, as readEvents returns them, reading a block at a time: a long
 * run's log (gigabytes) is never held whole, so scanning it at resume costs time, not memory (a string that large
 * cannot even be made).
 */
export function forEachEvent(file: string, fn: (e: Record<string, unknown>) => void): void {
  if (!existsSync(file)) return;
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(BLOCK);
    let carry = Buffer.alloc(0); // the start of a line whose newline is in a later block
    for (;;) {
      const n = readSync(fd, buf, 0, BLOCK, null);
      if (n === 0) break; // what is left in carry has no newline: still being written, or cut
      const chunk = carry.length ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      let start = 0;
      for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
        parseLine(chunk.toString('utf8', start, nl), fn);
        start = nl + 1;
      }
      carry = Buffer.from(chunk.subarray(start));
    }
  } finally {
    closeSync(fd);
  }
}

function parseLine(l: string, fn: (e: Record<string, unknown>) => void): void {
  if (!l.trim()) return;
  try {
    const e: unknown = JSON.parse(l);
    if (e && typeof e === 'object' && !Array.isArray(e)) fn(e as Record<string, unknown>);
  } catch {
    // a line cut by a crash
  }
}
