// SIGINT / SIGTERM for a process that stops gracefully: the first signal starts the stop (a worker role's drain, the
// orchestrator's stop, a local run stopping its children); a second one of either ends the process at once. "At once"
// must not mean process.exit while a graph thread is inside a run: that aborts the process (Napi::Error, exit code
// 134) instead of ending it, so the second signal goes through exitNow (lib/graph/graph-thread.ts).
import { constants } from 'node:os';
import { exitNow } from '../graph/graph-thread.ts';

/** 128 + the signal's number: the exit code a shell gives a process that `signal` ended (130 for SIGINT). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal];
}

export interface StopSignalOptions {
  /** Told before a second signal ends the process. */
  warn?: (line: string) => void;
  /** Runs (synchronously) before a second signal ends the process: e.g. a local run kills its children. */
  again?: (signal: NodeJS.Signals) => void;
}

/**
 * Calls `first` at the first SIGINT or SIGTERM; a later one ends the process at once with 128 + its number (130 for
 * SIGINT, 143 for SIGTERM), by that signal itself while a graph thread is inside a run. Returns the function that
 * removes the handlers (a signal after it has the default action).
 */
export function onStopSignals(first: (signal: NodeJS.Signals) => void, o: StopSignalOptions = {}): () => void {
  let seen = false;
  const handler = (signal: NodeJS.Signals) => {
    if (seen) {
      o.warn?.(`${signal} again: exiting now`);
      o.again?.(signal);
      exitNow(signalExitCode(signal), signal);
    }
    seen = true;
    first(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
