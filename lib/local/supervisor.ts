// Runs a set of child processes the way a cluster would: each one is restarted when it dies (after a
// short back-off), until the supervisor is told to stop. Used by the local run and the fault tests. A child that
// exits with CONFIG_EXIT_CODE (a refused option or configuration, a device its machine lacks) is not restarted: no
// restart cures that, so the supervisor stops every child and whenDone rejects with the child's last error lines.
// Neither is a child that crash-loops: one that exits with a failure code (1-127) CrashLoop.exits times in a row,
// each time within CrashLoop.withinMs of its start. Kubernetes would keep restarting it (CrashLoopBackOff); a local
// run stops, naming it, its exit code and its last error lines, instead of restarting it silently for ever. A child
// killed by a signal (kill -9, an exit code of 128 + n) never counts, and one that ran longer starts the count again.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { stripVTControlCharacters } from 'node:util';
import { CONFIG_EXIT_CODE } from '../config/setup-error.ts';

/** Output lines kept per child, for the error that names why it could not run. */
const KEPT_LINES = 20;

/** When a child's failures stop the run (see the top of this file). */
export interface CrashLoop {
  /** Failures in a row, each within `withinMs` of the child's start, that stop the run. */
  exits: number;
  withinMs: number;
}

/**
 * 5 failures within 30 s of their starts: the back-off (0.5, 1, 2, 4, 4 s) puts the fifth about 12 s plus five
 * start-ups after the first. A role that joined its run and later crashes (a lost connection it cannot retry, the
 * run state's write given up after 60 s of NATS down) ran longer than 30 s, so it is restarted as before.
 */
export const DEFAULT_CRASH_LOOP: CrashLoop = { exits: 5, withinMs: 30_000 };

/**
 * `c` checked (round 25: the limits are the local run's options, `recovery-grpo demo --crash-loop-exits N
 * --crash-loop-seconds S`): `exits` a whole number >= 1, `withinMs` a finite number > 0. Throws naming the field
 * (`name`, e.g. the flag it came from) and the value.
 */
export function checkCrashLoop(c: CrashLoop, name: { exits: string; withinMs: string } = { exits: 'crashLoop.exits', withinMs: 'crashLoop.withinMs' }): CrashLoop {
  if (!Number.isInteger(c.exits) || c.exits < 1) throw new Error(`${name.exits} must be an integer >= 1 (failures in a row that stop the run), got ${String(c.exits)}`);
  if (typeof c.withinMs !== 'number' || !Number.isFinite(c.withinMs) || c.withinMs <= 0) throw new Error(`${name.withinMs} must be a number > 0 (how soon after its start a failure counts), got ${String(c.withinMs)}`);
  return c;
}

export interface ChildSpec {
  name: string;
  command: string;
  /** The arguments, or a function that makes them anew at every (re)start (e.g. a port that may have to move). */
  args: string[] | (() => Promise<string[]>);
  env?: Record<string, string>;
  /** Exit code that means "finished, do not restart" (e.g. the orchestrator at the end of the run). */
  doneOnExitCode?: number;
  /** Each output line; default: printed with a [name] prefix. */
  onLine?: (line: string) => void;
}

interface Child {
  spec: ChildSpec;
  proc?: ChildProcess;
  restarts: number;
  done: boolean;
  /** When its current process started (monotonic ms). */
  startedAt: number;
  /** Its failures in a row, each within CrashLoop.withinMs of its start. */
  quickFailures: number;
  /** Its current (or last) process's last KEPT_LINES output lines (stdout and stderr), terminal escape codes (colours) removed. */
  lastLines: string[];
}

export class Supervisor {
  private readonly children = new Map<string, Child>();
  private stopping = false;
  /** Why the run cannot go on: a child exited with CONFIG_EXIT_CODE, or crash-looped. */
  private failure: Error | undefined;
  /** Restarts performed, per child name. */
  readonly restarts: Record<string, number> = {};

  constructor(
    private readonly log: (line: string) => void = (l) => console.log(l),
    private readonly crashLoop: CrashLoop = DEFAULT_CRASH_LOOP,
  ) {
    checkCrashLoop(crashLoop);
  }

  start(spec: ChildSpec): void {
    const child: Child = { spec, restarts: 0, done: false, startedAt: 0, quickFailures: 0, lastLines: [] };
    this.children.set(spec.name, child);
    this.launch(child);
  }

  private launch(child: Child): void {
    const { spec } = child;
    if (typeof spec.args !== 'function') return this.spawn(child, spec.args);
    spec.args().then(
      (args) => {
        if (!this.stopping) this.spawn(child, args);
      },
      (e: unknown) => {
        this.log(`[${spec.name}] could not start: ${e instanceof Error ? e.message : String(e)}`);
        this.restartLater(child, 'could not start');
      },
    );
  }

  private spawn(child: Child, args: string[]): void {
    const { spec } = child;
    const proc = spawn(spec.command, args, { env: { ...process.env, ...spec.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.proc = proc;
    child.startedAt = performance.now();
    child.lastLines = []; // the error names the last run's lines, not the same line from each of a crash loop's runs
    const show = spec.onLine ?? ((l: string) => this.log(`[${spec.name}] ${l}`));
    const onLine = (line: string) => {
      child.lastLines.push(stripVTControlCharacters(line));
      if (child.lastLines.length > KEPT_LINES) child.lastLines.shift();
      show(line);
    };
    for (const stream of [proc.stdout!, proc.stderr!]) createInterface({ input: stream }).on('line', onLine);
    proc.on('error', (e) => this.log(`[${spec.name}] could not start: ${e.message}`));
    proc.on('exit', (code, signal) => {
      if (child.proc !== proc) return;
      child.proc = undefined;
      if (this.stopping) return;
      if (spec.doneOnExitCode !== undefined && code === spec.doneOnExitCode) {
        child.done = true;
        return;
      }
      // its readline interfaces may still hold the last lines: fail once the streams have ended
      const failAfterOutput = (why: string, logged: string) =>
        void Promise.all([proc.stdout, proc.stderr].map((st) => (st && !st.readableEnded ? new Promise((r) => st.once('close', r)) : undefined))).then(() => this.fail(child, why, logged));
      if (code === CONFIG_EXIT_CODE) {
        failAfterOutput(`cannot run as it is set up (exit code ${CONFIG_EXIT_CODE}, not restarted; see docs/roles.md)`, `exited with code ${CONFIG_EXIT_CODE} (a configuration or device error no restart cures)`);
        return;
      }
      // a failure code (not a signal's death, 128 + n): counted while each one comes soon after its start; a run of
      // withinMs or longer starts the count again however it ended (a long run killed by a signal included: review24e)
      const ranMs = performance.now() - child.startedAt;
      if (ranMs >= this.crashLoop.withinMs) child.quickFailures = 0;
      if (code !== null && code > 0 && code < 128) {
        if (ranMs < this.crashLoop.withinMs) child.quickFailures++;
        if (child.quickFailures >= this.crashLoop.exits) {
          const loop = `exited with code ${code} ${child.quickFailures} times in a row, each within ${this.crashLoop.withinMs / 1000} s of its start`;
          failAfterOutput(`crash-looped: ${loop} (not restarted again; see docs/roles.md)`, `${loop} (a crash loop)`);
          return;
        }
      }
      this.restartLater(child, `exited (${signal ?? `code ${code}`})`);
    });
  }

  /** Stops the run: `child` cannot run (`why`, for the error; `logged`, for the log: it exited with CONFIG_EXIT_CODE, or crash-looped). */
  private fail(child: Child, why: string, logged: string): void {
    if (this.stopping) return;
    const errors = child.lastLines.filter((l) => /error/i.test(l));
    const last = (errors.length > 0 ? errors : child.lastLines).slice(-3);
    this.failure = new Error(`${child.spec.name} ${why}: ${last.length > 0 ? last.join('\n') : 'it printed nothing'}`);
    this.log(`[supervisor] ${child.spec.name} ${logged}: stopping every process`);
    void this.stopAll();
  }

  private restartLater(child: Child, why: string): void {
    child.restarts++;
    this.restarts[child.spec.name] = child.restarts;
    const delay = Math.min(5000, 250 * 2 ** Math.min(child.restarts, 4));
    this.log(`[supervisor] ${child.spec.name} ${why}; restarting in ${delay} ms`);
    setTimeout(() => {
      if (!this.stopping) this.launch(child);
    }, delay);
  }

  /**
   * Resolves when the named child exits with its done code; rejects when the run stopped before, with the error
   * naming the child and its last error lines where one exited with CONFIG_EXIT_CODE or crash-looped.
   */
  async whenDone(name: string, pollMs = 200): Promise<void> {
    while (!this.children.get(name)?.done) {
      if (this.failure) throw this.failure;
      if (this.stopping) throw new Error(`stopped before ${name} finished`);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  /** Sends a signal to a running child (fault injection); the supervisor then restarts it. */
  kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): boolean {
    const p = this.children.get(name)?.proc;
    return p ? p.kill(signal) : false;
  }

  pid(name: string): number | undefined {
    return this.children.get(name)?.proc?.pid;
  }

  /** The running children's process ids, by name. */
  pids(): Record<string, number> {
    return Object.fromEntries([...this.children].flatMap(([name, c]) => (c.proc?.pid !== undefined && c.proc.exitCode === null ? [[name, c.proc.pid]] : [])));
  }

  /** SIGKILLs every running child at once, synchronously (a local run ending at a second signal). */
  killAll(): void {
    this.stopping = true;
    for (const c of this.children.values()) if (c.proc && c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  }

  /** Stops every child: SIGTERM, then SIGKILL after `graceMs`. */
  async stopAll(graceMs = 3000): Promise<void> {
    this.stopping = true;
    const running = [...this.children.values()].map((c) => c.proc).filter((p): p is ChildProcess => !!p && p.exitCode === null);
    await Promise.all(
      running.map(
        (p) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
            p.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
  }
}
