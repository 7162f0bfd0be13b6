// A run's event log (`--events FILE`, events.jsonl): one JSON object per line, `{ t, type, ... }`, appended by the
// orchestrator (audit events, progress and evaluation lines) and read by the orchestrator at resume and by the
// sweep's report. One writer format and one reader, so all of them agree on what a line is.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';

/** Appends `e` as one line, stamped with the time: one synchronous write, so a kill loses at most that line. */
export function appendEventLine(file: string, e: object): void {
  appendFileSync(file, `${JSON.stringify({ t: Date.now(), ...e })}\n`);
}

/**
 * The events of `file` in order ([] when there is none). A line that is not a JSON object is skipped: the last
 * line without its newline (still being written, or cut by a kill) and a cut line that the next append ran on.
 */
export function readEvents(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.pop(); // '' after the last complete line, or the line still being written
  const out: Array<Record<string, unknown>> = [];
  for (const l of lines) {
    if (!l.trim()) continue;
    try {
      const e: unknown = JSON.parse(l);
      if (e && typeof e === 'object' && !Array.isArray(e)) out.push(e as Record<string, unknown>);
    } catch {
      // a line cut by a crash
    }
  }
  return out;
}
