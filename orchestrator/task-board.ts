// Leases for rollout and score tasks: which worker holds which task until when. A task whose holder
// disconnects, misses its lease or reports an error goes back to the queue and is handed to another worker
// (attempt + 1): one that has not failed it, while one is attached (Task.failedBy); the first result for a task id
// wins and later ones are counted and ignored.
// A task belongs to its holder: a result or error for it is accepted only from the session that holds its
// current lease, and its id carries a random token, so another worker can neither name nor finish it.
// Leases run on the monotonic clock (performance.now), renewed by heartbeats up to maxTaskMs in all.
// Dispatch runs once per turn of the event loop (setImmediate), after every add, result and error of that turn:
// a worker that asks for several tasks per message (capabilities.max_tasks_per_message) then gets them in one
// TaskBundle, also when its results arrived together in one ResultBundle. Which worker gets how many is the
// dispatch policy (TaskBoardOptions.dispatch): 'pack' fills the least-loaded worker's ask before the next one gets
// any (fewest messages: the orchestrator's CPU per task), 'spread' gives every worker with room its even share
// first (most workers busy at once), but at least as many tasks as a worker of that role has been seen to finish
// within bundleMs (cheap tasks bundle, slow ones spread). Workers that ask for one per message get one per message
// either way.

import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { tasksPerMessage, type OrchestratorMessage, type RolloutTask, type ScoreTask, type WorkerRole, type WorkerSession } from '../lib/transport/index.ts';
import { ThreadedList } from '../lib/transport/threaded-list.ts';
import { TaskQueue } from './task-queue.ts';
import { hashOf, TaskIndex } from './task-index.ts';
import { trace } from '../lib/log/trace.ts';
import { quoteForLog } from '../lib/log/quote.ts';
import type { Metrics } from '../lib/metrics/index.ts';

export interface Task {
  readonly id: string;
  readonly role: WorkerRole;
  attempt: number;
  /** The message to send for the current attempt. */
  message(attempt: number, leaseMs: number): OrchestratorMessage;
  holder?: WorkerSession;
  /** Monotonic ms (performance.now) when the lease runs out; never later than dispatchedAt + maxTaskMs. */
  deadline?: number;
  /** Monotonic ms of the current dispatch. */
  dispatchedAt?: number;
  /** Sent on its own from now on: a bundle holding it was over the message size limit. */
  alone?: boolean;
  /** How many tasks went in the message of its current dispatch (its result's time is shared among them). */
  sentWith?: number;
  /** The probe its current dispatch was part of (spread's bundle floor, see Probe), or undefined. */
  probe?: Probe;
  /** The board's hash of id (task-index.ts hashOf), set by the board; not for the task's maker. */
  idHash?: number;
  /**
   * The workers that answered it with a non-retryable error (NON_RETRYABLE_QUORUM): worker id -> its credential's
   * voter key (voterOf); set by the board.
   */
  refusedBy?: Map<string, string>;
  /**
   * The workers (voterOf: the role token, else the worker id) whose attempt at it failed: an error (retryable or not,
   * a refused result included), a lease that ran out, a disconnect while holding it; set by the board. Its retry goes
   * to a worker of the role not in it while one is attached (pump, handAside), so one worker's failures cannot take
   * every attempt (review26a F4), nor, since round 29, one role token's under several ids.
   */
  failedBy?: Set<string>;
}

/** Records that `s`'s attempt at `t` failed (Task.failedBy: its voterOf, so every id of one role token failed it). */
function failedAt(t: Task, s: WorkerSession): void {
  (t.failedBy ??= new Set()).add(voterOf(s));
}

/**
 * Whose vote a session's non-retryable error is (NON_RETRYABLE_QUORUM): its role token's credential id when a role
 * token authenticated it (one token presenting several worker ids is one voter, round 29), else its worker id (a
 * certificate, the shared token or none: the orchestrator cannot tell one holder from another, docs/security.md).
 */
export function voterOf(s: WorkerSession): string {
  return s.credential.kind === 'token' ? s.credential.id : `id:${s.workerId}`;
}

/**
 * How many distinct workers (`votes`: worker id -> voterOf, an id's first vote only) called a task non-retryable: the
 * distinct voters. Votes that differ in voter differ in worker id too (one vote per id), so this is the most votes that
 * differ pairwise in both: one token presenting two ids is one, as is one id presented by two tokens.
 */
function distinctVoters(votes: ReadonlyMap<string, string>): number {
  return new Set(votes.values()).size;
}

/**
 * How many distinct workers must call a task non-retryable before it is given up: one worker's word is not enough
 * (review25c: one rollout credential answering every task non-retryable emptied every GRPO batch). Until then, and
 * within maxAttempts, the task is retried like after a retryable error.
 */
export const NON_RETRYABLE_QUORUM = 2;

/**
 * A bundle sent to measure what one more task in a message costs (spread's floor under a slow consumer), paired
 * with the one-task message sent just before it in the same turn (its companion, the same waiting ahead of it):
 * the probe's size, its results still to come, its last result's round trip and the companion's (NaN until it
 * comes). Only probes allocate one.
 */
interface Probe {
  readonly n: number;
  left: number;
  lastMs: number;
  singleMs: number;
}

/** The error codes task_errors_total counts by name; any other code a worker sends is counted as `other`. */
export const TASK_ERROR_CODES = [
  'bad_input', 'bad_result', 'non_finite', 'internal', 'policy_unavailable', 'wrong_kind', 'wrong_role',
  'shutting_down', 'unsupported', 'gap', 'unverified_claim', 'unknown',
] as const;

/** A label for task_errors_total from a worker-chosen code: one of TASK_ERROR_CODES, else `other`. */
export function errorCodeLabel(code: string): string {
  if (!code) return 'unknown';
  return (TASK_ERROR_CODES as readonly string[]).includes(code) ? code : 'other';
}

/** A worker's error code for a log line: one of TASK_ERROR_CODES as it is, any other quoted and cut short. */
export function errorCodeText(code: string): string {
  return (TASK_ERROR_CODES as readonly string[]).includes(code) ? code : quoteForLog(code, 64);
}

// The ids' random bits come from one randomBytes call per 341 ids, each id its own bytes (a call per id cost
// ~1.5-6 us, most of it the call's fixed cost: round 10, disp10). The same CSPRNG; nothing is reused.
const ID_BYTES = 12;
const ID_POOL_BYTES = 4092;
let idPool = Buffer.alloc(0);
let idPoolAt = 0;

/**
 * A task id: readable prefix (run, kind, cursor) plus 96 random bits, the task's lease token. Ids are not
 * derived from the cursor alone, so a worker cannot address a task it was never sent.
 */
export function newTaskId(prefix: string): string {
  if (idPoolAt + ID_BYTES > idPool.length) {
    idPool = randomBytes(ID_POOL_BYTES);
    idPoolAt = 0;
  }
  const token = idPool.toString('hex', idPoolAt, idPoolAt + ID_BYTES);
  idPoolAt += ID_BYTES;
  return `${prefix}-${token}`;
}

interface BoundMetrics {
  dispatched: { inc(n?: number): void };
  completedOk: { inc(n?: number): void };
  completedError: { inc(): void };
  latency: { observe(v: number): void };
  redispatches: { inc(): void };
  leaseExpiries: { inc(): void };
  foreign: { inc(): void };
  duplicate: { inc(): void };
  /** Results accepted since the last pump, added to completedOk there (one counter update per turn, not per result). */
  okPending: number;
  /**
   * The role's pace for spread's bundle floor: the least dispatch-to-result time per task (a result's time over
   * the tasks of its message) seen in the current window of PACE_WINDOW_MS and in the one before. A minimum, not a
   * mean: the orchestrator's own queueing delays (GC, a busy turn) only ever add to a result's time.
   */
  paceMin: number;
  pacePrevMin: number;
  paceSince: number;
  /**
   * A slow consumer's round trip is mostly waiting (a workers' host behind on messages), and time per task = round
   * trip over tasks then says 'slow' whatever a task costs: the floor falls to one task per message, messages
   * multiply, the host falls further behind, and the state sustains itself. So the role's best floor is kept, and
   * while the floor is below half of it about every PROBE_EVERY-th message is a bundle of that size (a probe), sent
   * right after a one-task message of the same turn (its companion): the per-task cost is then what the probe's
   * round trip adds over its companion's, slope = median over the window's probes of (probe - companion) / (n - 1),
   * which waiting does not inflate (both wait alike; a minimum over a window would compare early and late waits
   * while a backlog grows; a median, as a descheduled host sometimes parts a pair by tens of ms). A slope of cheap
   * tasks lifts the floor (paceSlope, for the window after the one measured and the next); a slope of slow tasks
   * sets bestFloor to 0 and probing stops. A role whose first results already came back slow (a host behind from the start) and that has
   * no probe verdict yet gets probes of 2 until it has one (`judged`): slow tasks pay that once, 1 message in 8.
   */
  bestFloor: number;
  judged: boolean;
  /** The largest ask (tasks per message) of the role's workers so far: floors above it mean the same. */
  maxAsk: number;
  probeCount: number;
  probeDue: boolean;
  /** (probe - companion) / (n - 1) of the probes completed since the last verdict (the first MAX_PROBES). */
  probeCosts: number[];
  paceSlope: number;
  paceSlopePrev: number;
  /** The floor the last pump used, and whether it was probing (read by bundleFloor()). */
  floor: number;
  probing: boolean;
}

/** While probing, one message in this many is a probe (a slow role's probes add to at most 1/8 of its messages). */
const PROBE_EVERY = 8;
/** Completed probes a verdict takes (fewer are carried into the next window), and the most one verdict reads. */
const MIN_PROBES = 3;
const MAX_PROBES = 256;

/** How long one window of the pace minimum lasts (ms): the estimate follows a change of task cost within 1-2 s. */
const PACE_WINDOW_MS = 1000;

/** How the queued tasks of a role are shared out among its workers with room (see the top of this file). */
export const DISPATCH_POLICIES = ['pack', 'spread'] as const;
export type DispatchPolicy = (typeof DISPATCH_POLICIES)[number];

export interface TaskBoardOptions {
  leaseMs: number;
  /** A task's total time with one holder, heartbeats or not (orchestrator.maxTaskSeconds). Default 10 leases. */
  maxTaskMs?: number;
  /** Most tasks one worker holds at once, whatever its Hello asks (orchestrator.maxInFlightPerWorker). Default 1024. */
  maxInFlight?: number;
  /**
   * 'spread' (default): each worker with room gets its even share of the queue first (ceil(queued / workers with
   * room)), or bundleMs's floor if larger, so below capacity slow tasks go one per message and every idle worker
   * starts at once. 'pack': the
   * least-loaded worker with room gets as many queued tasks as its ask and its room allow, in one message, before
   * the next worker gets any: fewest messages, but a batch smaller than one worker's ask lands on one worker while
   * the others idle (a batch's 4 score tasks, two reward workers asking for 4), so it suits many cheap tasks.
   */
  dispatch?: DispatchPolicy;
  /**
   * With 'spread': a worker's share is at least as many tasks as a worker of that role finishes within bundleMs
   * (from the least time per task seen in the last 1-2 s; up to its ask and room). Tasks that take longer than
   * bundleMs are spread as before; cheap ones (thousands a second) go several per message. Default 5 ms; 0: the
   * even share only. The bound is the time one bundle may add to its last task against spreading it.
   */
  bundleMs?: number;
  /**
   * How long queued tasks may wait for more to fill a worker's message before they go in a smaller one (ms, measured
   * from the oldest queued task; default 0: every turn of the event loop dispatches what is queued). A full message
   * is the worker's ask and room with 'pack'; with 'spread' also capped at its share, so only tasks cheap enough for
   * a bundle floor above the even share are ever held (slow tasks never are). Tasks that fill a message, or find no
   * worker with room, are not held by it.
   */
  coalesceMs?: number;
  /** Monotonic clock in ms (default performance.now); a test may drive its own. */
  now?: () => number;
  /** A task that failed this many times is given up (its sample is dropped). */
  maxAttempts: number;
  metrics: Metrics;
  /** Called when a task is given up after maxAttempts, with the last reason. */
  onGiveUp: (task: Task, reason: string) => void;
  /** Where a non-retryable error that does not give its task up yet is logged. */
  log?: (line: string) => void;
}

/** A worker's place on the board, in one record (a dispatch and a result each touch it once, not several maps). */
interface Slot {
  readonly session: WorkerSession;
  /** Its role's free levels (TaskBoard.free). */
  readonly levels: Array<Level | undefined>;
  /** Its neighbours in the level it is filed under (a list threaded through the slots: no allocation per move). */
  prev: Slot | undefined;
  next: Slot | undefined;
  /** Most tasks it may hold: its max_in_flight, capped by maxInFlight. */
  readonly room: number;
  /** Most tasks per message: its max_tasks_per_message, capped by maxInFlight. */
  readonly ask: number;
  /** Active tasks it holds. */
  load: number;
  /** The free level it is filed under (its load, while attached, open and with room), or -1. */
  level: number;
  attached: boolean;
}

export class TaskBoard {
  /** Queued tasks per role, re-queued ones first. */
  private readonly queues = new Map<WorkerRole, TaskQueue<Task>>();
  private pumpQueued = false;
  private readonly pumpNow = () => this.pump();
  /** When each role's queue last became non-empty (monotonic ms): the age of its oldest task, or less. */
  private readonly queuedSince = new Map<WorkerRole, number>();
  /** The timer that dispatches tasks held for coalescing once their time is up. */
  private coalesceTimer: NodeJS.Timeout | undefined;
  /** Tasks held by workers, by id (not a Map: a Map's churn promoted every task it held; see task-index.ts). */
  private readonly active = new TaskIndex<Task>();
  /** Every worker the board knows (attached, or detached with tasks not yet taken back). */
  private readonly slots = new Map<WorkerSession, Slot>();
  /**
   * Attached workers that have room, per role, by their load: free[role][n] holds those with n active tasks
   * (n < room). pick() takes from the lowest level, so choosing the least-loaded worker costs
   * O(max_in_flight), not O(workers) (hundreds of workers at thousands of tasks per second).
   */
  private readonly free = new Map<WorkerRole, Array<Level | undefined>>();

  /** Metric children bound once per role label (a dispatch and a result then update them without label lookups). */
  private readonly bound = new Map<WorkerRole, BoundMetrics>();
  private readonly queueDepth: { rollout: { set(v: number): void }; score: { set(v: number): void } };
  /** The queue depths last written to queueDepth (NaN: never). */
  private readonly depthSet = { rollout: NaN, score: NaN };

  private readonly now: () => number;
  private readonly maxTaskMs: number;
  private readonly maxInFlight: number;
  private readonly spread: boolean;
  private readonly coalesceMs: number;
  private readonly bundleMs: number;
  /** Messages and tasks dispatched so far (the load bench reports tasks per message). */
  readonly sent = { messages: 0, tasks: 0 };

  constructor(private readonly o: TaskBoardOptions) {
    this.now = o.now ?? (() => performance.now());
    this.maxTaskMs = o.maxTaskMs ?? 10 * o.leaseMs;
    this.maxInFlight = o.maxInFlight ?? 1024;
    const policy = o.dispatch ?? 'spread';
    if (!(DISPATCH_POLICIES as readonly string[]).includes(policy)) throw new Error(`TaskBoard: dispatch must be one of ${DISPATCH_POLICIES.join(', ')}, got ${JSON.stringify(policy)}`);
    this.spread = policy === 'spread';
    const coalesceMs = o.coalesceMs ?? 0;
    if (!(coalesceMs >= 0 && coalesceMs <= 1000)) throw new Error(`TaskBoard: coalesceMs must be in [0, 1000] ms, got ${o.coalesceMs}`);
    this.coalesceMs = coalesceMs;
    const bundleMs = o.bundleMs ?? 5;
    if (!(bundleMs >= 0 && bundleMs <= 1000)) throw new Error(`TaskBoard: bundleMs must be in [0, 1000] ms, got ${o.bundleMs}`);
    this.bundleMs = this.spread ? bundleMs : 0;
    const depth = o.metrics.get('queue_depth');
    this.queueDepth = { rollout: depth.labels({ queue: 'rollout' }), score: depth.labels({ queue: 'score' }) };
  }

  private m(role: WorkerRole): BoundMetrics {
    let b = this.bound.get(role);
    if (!b) {
      const worker_role = role.toLowerCase();
      const mm = this.o.metrics;
      b = {
        dispatched: mm.get('tasks_dispatched_total').labels({ worker_role }),
        completedOk: mm.get('tasks_completed_total').labels({ worker_role, outcome: 'ok' }),
        completedError: mm.get('tasks_completed_total').labels({ worker_role, outcome: 'error' }),
        latency: mm.get('task_latency_seconds').labels({ worker_role }),
        redispatches: mm.get('redispatches_total').labels({ worker_role }),
        leaseExpiries: mm.get('lease_expiries_total').labels({ worker_role }),
        foreign: mm.get('foreign_results_total').labels({ worker_role }),
        duplicate: mm.get('duplicate_results_total').labels({ worker_role }),
        okPending: 0,
        paceMin: Infinity,
        pacePrevMin: Infinity,
        paceSince: this.now(),
        bestFloor: 0,
        judged: false,
        maxAsk: 1,
        probeCount: 0,
        probeDue: false,
        probeCosts: [],
        paceSlope: Infinity,
        paceSlopePrev: Infinity,
        floor: 0,
        probing: false,
      };
      this.bound.set(role, b);
    }
    return b;
  }

  private queueOf(role: WorkerRole): TaskQueue<Task> {
    let q = this.queues.get(role);
    if (!q) this.queues.set(role, (q = new TaskQueue<Task>()));
    return q;
  }

  private levelsOf(role: WorkerRole): Array<Level | undefined> {
    let l = this.free.get(role);
    if (!l) this.free.set(role, (l = []));
    return l;
  }

  /** Queues tasks; they are dispatched at the end of this turn of the event loop. */
  add(...tasks: Task[]): void {
    for (const t of tasks) {
      const q = this.queueOf(t.role);
      if (q.length === 0 && this.coalesceMs > 0) this.queuedSince.set(t.role, this.now());
      q.push(t);
    }
    this.schedulePump();
  }

  attach(session: WorkerSession): void {
    let slot = this.slots.get(session);
    if (!slot) {
      const caps = session.hello.capabilities;
      slot = {
        session,
        levels: this.levelsOf(session.role),
        room: Math.min(this.maxInFlight, Math.max(1, caps?.max_in_flight ?? 1)),
        ask: Math.min(this.maxInFlight, tasksPerMessage(caps ?? {})),
        load: 0,
        level: -1,
        prev: undefined,
        next: undefined,
        attached: true,
      };
      this.slots.set(session, slot);
      const bm = this.m(session.role);
      bm.maxAsk = Math.max(bm.maxAsk, slot.ask);
    }
    slot.attached = true;
    this.file(slot, slot.load);
    this.schedulePump();
  }

  /** Workers of `role` attached now, their streams open. */
  attachedCount(role: WorkerRole): number {
    let n = 0;
    for (const slot of this.slots.values()) if (slot.attached && slot.session.role === role && slot.session.isOpen) n++;
    return n;
  }

  /** A worker left: everything it held goes back to the queue. */
  detach(session: WorkerSession): void {
    const slot = this.slots.get(session);
    if (slot) slot.attached = false;
    for (const t of this.active.collect((t) => t.holder === session)) {
      // by worker id, not session: a worker that takes tasks and reconnects gets them back only when no other can take them
      failedAt(t, session);
      this.requeue(t, `worker ${session.workerId} disconnected`);
    }
    if (slot) {
      this.file(slot, 0);
      this.slots.delete(session);
    }
    this.schedulePump();
  }

  /** Records a worker's load and files it under its level (if attached, open and with room). */
  private file(slot: Slot, load: number): void {
    slot.load = load;
    const level = slot.attached && load < slot.room && slot.session.isOpen ? load : -1;
    if (level === slot.level) return;
    if (slot.level >= 0) slot.levels[slot.level]?.remove(slot);
    if (level >= 0) (slot.levels[level] ??= new ThreadedList<Slot>()).append(slot);
    slot.level = level;
  }

  /** The task `taskId` if `session` holds its current lease (nothing changes: a result is checked before complete()). */
  heldBy(session: WorkerSession, taskId: string): Task | undefined {
    const t = this.active.get(taskId);
    return t && t.holder === session ? t : undefined;
  }

  /**
   * The task for a result from `session`, or undefined when `session` does not hold its current lease: a
   * duplicate, an unknown id, or a result from another worker (each counted; the holder's lease stands).
   */
  complete(session: WorkerSession, taskId: string): Task | undefined {
    const t = this.active.get(taskId);
    if (!t || t.holder !== session) {
      let known = t !== undefined;
      for (const q of this.queues.values()) known ||= q.has(taskId);
      const sm = this.m(session.role);
      (known ? sm.foreign : sm.duplicate).inc();
      return undefined;
    }
    this.deactivate(t);
    const tm = this.m(t.role);
    if (t.dispatchedAt !== undefined) {
      const now = this.now();
      const ms = now - t.dispatchedAt;
      tm.latency.observe(ms / 1000);
      if (this.bundleMs > 0) {
        if (now - tm.paceSince >= PACE_WINDOW_MS) this.rollPace(tm, now);
        const n = t.sentWith ?? 1;
        tm.paceMin = Math.min(tm.paceMin, ms / n);
        const p = t.probe;
        if (p) {
          if (n === 1) p.singleMs = ms; // the companion
          else {
            p.lastMs = Math.max(p.lastMs, ms);
            p.left--;
          }
          if (p.left === 0 && !Number.isNaN(p.singleMs) && tm.probeCosts.length < MAX_PROBES) tm.probeCosts.push((p.lastMs - p.singleMs) / (p.n - 1));
        }
      }
    }
    tm.okPending++; // counted by the pump this result schedules, before any other I/O (a scrape) is handled
    this.schedulePump();
    return t;
  }

  /**
   * Spread's bundle floor of a role as the pump last used it: floor (tasks), the role's best floor so far, and
   * whether probes are being sent (the load bench prints it each second with LOAD_PER_SECOND=1).
   */
  bundleFloor(role: WorkerRole): { floor: number; best: number; probing: boolean } {
    const bm = this.bound.get(role);
    return { floor: bm?.floor ?? 0, best: bm?.bestFloor ?? 0, probing: bm?.probing ?? false };
  }

  /** Starts a new pace window; a probe window's slope (see BoundMetrics.bestFloor) is kept for two windows. */
  private rollPace(tm: BoundMetrics, now: number): void {
    tm.pacePrevMin = tm.paceMin;
    tm.paceMin = Infinity;
    tm.paceSince = now;
    let slope = Infinity;
    const costs = tm.probeCosts;
    if (costs.length >= MIN_PROBES) {
      costs.sort((a, b) => a - b);
      slope = Math.max(0, costs[costs.length >> 1]!);
      tm.judged = true;
      if (this.bundleMs / Math.max(slope, 1e-3) < 2) tm.bestFloor = 0; // slow tasks indeed: no more probes
      costs.length = 0;
    }
    tm.paceSlopePrev = tm.paceSlope;
    tm.paceSlope = slope;
  }

  /**
   * A worker could not do a task: retry elsewhere, or give up after maxAttempts, or once NON_RETRYABLE_QUORUM distinct
   * workers called it non-retryable.
   */
  fail(session: WorkerSession, taskId: string, code: string, message: string, retryable: boolean): void {
    const t = this.active.get(taskId);
    // Counted only for the holder of the task's lease, under a code from a fixed set: a worker cannot
    // grow the metric's series or report errors for tasks it does not hold.
    if (!t || t.holder !== session) {
      this.m(session.role).foreign.inc();
      return;
    }
    this.o.metrics.get('task_errors_total').inc({ worker_role: session.role.toLowerCase(), code: errorCodeLabel(code) });
    this.m(t.role).completedError.inc();
    // the worker's words, quoted and cut short: the reason is logged where the task is given up
    const reason = `${errorCodeText(code)}: ${quoteForLog(message)}`;
    failedAt(t, session);
    let giveUp = t.attempt >= this.o.maxAttempts;
    if (!retryable) {
      const by = (t.refusedBy ??= new Map());
      if (!by.has(session.workerId)) by.set(session.workerId, voterOf(session));
      if (distinctVoters(by) >= NON_RETRYABLE_QUORUM) giveUp = true;
      else if (!giveUp) this.o.log?.(`task ${t.id}: worker ${quoteForLog(session.workerId)} reports a non-retryable error (${reason}) at attempt ${t.attempt}; retried: it is given up once ${NON_RETRYABLE_QUORUM} workers report one, or after ${this.o.maxAttempts} attempts`);
    }
    if (giveUp) {
      this.deactivate(t);
      const voters = t.refusedBy ? distinctVoters(t.refusedBy) : 0;
      this.o.onGiveUp(t, voters >= NON_RETRYABLE_QUORUM ? `${reason} (non-retryable for ${voters} workers)` : reason);
      this.schedulePump();
      return;
    }
    this.requeue(t, reason);
    this.schedulePump();
  }

  /** Hands `tasks` to `slot`'s worker in one message (a TaskBundle when more than one); `probe`: see Probe. */
  private hand(role: WorkerRole, slot: Slot, tasks: Task[], probe: Probe | undefined, now: number, deadline: number): void {
    const worker = slot.session;
    const n = tasks.length;
    for (const t of tasks) {
      t.attempt += 1;
      t.holder = worker;
      t.dispatchedAt = now;
      t.deadline = deadline;
      this.active.set(t.id, t, hashOf(t));
      t.sentWith = n;
      t.probe = probe;
    }
    this.m(role).dispatched.inc(n);
    this.file(slot, slot.load + n);
    this.sent.messages++;
    this.sent.tasks += n;
    const msg = n === 1 ? tasks[0]!.message(tasks[0]!.attempt, this.o.leaseMs) : bundle(tasks, this.o.leaseMs);
    trace('osend', { kind: role === 'ROLLOUT' ? 'rollout_task' : 'score_task', n });
    worker.send(msg).catch((e: Error) => {
      // A bundle over the message size limit is no fault of its tasks: each goes again on its own, this
      // attempt not counted (one alone over the limit is refused as before, and given up after maxAttempts).
      const split = n > 1 && e instanceof RangeError;
      for (const t of tasks) {
        if (this.active.get(t.id) !== t || t.holder !== worker) continue;
        if (split) {
          t.alone = true;
          t.attempt -= 1;
        } else failedAt(t, worker);
        this.requeue(t, `send failed: ${e.message}`);
      }
      this.schedulePump();
    });
  }

  /**
   * Hands each task of `aside` (failed by the least-loaded worker, which pump() then skipped: Task.failedBy) alone to a
   * worker of `role` with room that has not failed it; returns the ones no such worker can take now (back to the
   * queue's front: the next pump tries again). Looks at every slot: only for failed tasks, which are rare.
   */
  private handAside(role: WorkerRole, aside: Task[], now: number, deadline: number): Task[] {
    const left: Task[] = [];
    for (const t of aside) {
      let to: Slot | undefined;
      for (const slot of this.slots.values()) {
        const w = slot.session;
        if (slot.level >= 0 && w.isOpen && w.role === role && !t.failedBy?.has(voterOf(w)) && (!to || slot.load < to.load)) to = slot;
      }
      if (to) this.hand(role, to, [t], undefined, now, deadline);
      else left.push(t);
    }
    return left;
  }

  /**
   * Whether a worker of `role` is attached that has not failed `t` (Task.failedBy): the task then waits for it (for its
   * room) rather than going back to one that failed it. Once every attached worker of the role has failed it, any may
   * take it again (bounded by maxAttempts). A rare path: only for failed tasks.
   */
  private untriedWorker(role: WorkerRole, t: Task): boolean {
    for (const s of this.slots.keys()) if (s.role === role && s.isOpen && !t.failedBy!.has(voterOf(s))) return true;
    return false;
  }

  /** A heartbeat from `session`: renews the leases of the listed tasks it holds, capped at maxTaskMs. */
  renew(session: WorkerSession, taskIds: readonly string[]): void {
    const now = this.now();
    for (const id of taskIds) {
      const t = this.active.get(id);
      if (t && t.holder === session) t.deadline = Math.min(now + this.o.leaseMs, (t.dispatchedAt ?? now) + this.maxTaskMs);
    }
  }

  /** Re-dispatches tasks whose lease ran out; call periodically. */
  expireLeases(now = this.now()): void {
    // Only the expired tasks are collected, in dispatch order (requeue changes `active`); the others are read in place.
    const expired = this.active.collect((t) => t.deadline !== undefined && t.deadline < now);
    for (const t of expired) {
      if (this.active.get(t.id) === t && t.deadline !== undefined && t.deadline < now) {
        const overTime = t.dispatchedAt !== undefined && now - t.dispatchedAt >= this.maxTaskMs;
        const reason = overTime ? 'task time limit reached' : 'lease expired';
        this.m(t.role).leaseExpiries.inc();
        const old = t.holder;
        if (old) failedAt(t, old);
        this.requeue(t, reason);
        old?.send({ cancel_task: { task_id: t.id, reason } }).catch(() => undefined);
      }
    }
    this.schedulePump();
  }

  private deactivate(t: Task): void {
    if (!this.active.deleteValue(t.id, t, hashOf(t))) return;
    const slot = t.holder && this.slots.get(t.holder);
    if (slot) this.file(slot, Math.max(0, slot.load - 1));
  }

  private requeue(t: Task, _reason: string): void {
    this.deactivate(t);
    this.m(t.role).redispatches.inc();
    t.holder = undefined;
    t.deadline = undefined;
    if (t.attempt >= this.o.maxAttempts) {
      this.o.onGiveUp(t, _reason);
      return;
    }
    const q = this.queueOf(t.role);
    if (q.length === 0 && this.coalesceMs > 0) this.queuedSince.set(t.role, this.now());
    q.unshift(t);
  }

  /** Dispatch at the end of this turn of the event loop (once, however many adds and results came in it). */
  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    setImmediate(this.pumpNow);
  }

  /**
   * Hands queued tasks to the least-loaded workers of their role that have room, each message up to the worker's
   * room and its max_tasks_per_message (a TaskBundle when more than one). With 'spread', each worker's message is
   * also capped at its even share, ceil(queued / workers with room), or at the bundle floor if that is larger (as many
   * as a worker of the role is seen to finish within bundleMs), so slow tasks are spread while workers are free and
   * bundled only when there are more tasks than free workers; with 'pack' the share is not capped.
   */
  pump(): void {
    this.pumpQueued = false;
    for (const bm of this.bound.values()) {
      if (bm.okPending > 0) {
        bm.completedOk.inc(bm.okPending);
        bm.okPending = 0;
      }
    }
    let holdUntil = Infinity;
    for (const [role, queue] of this.queues) {
      if (queue.length === 0) continue;
      const levels = this.free.get(role);
      if (!levels) continue;
      // Coalescing: a message that the queue cannot fill waits, until the oldest queued task is coalesceMs old.
      const fillBy = this.coalesceMs > 0 ? (this.queuedSince.get(role) ?? -Infinity) + this.coalesceMs : -Infinity;
      const bm = this.m(role);
      let share = Infinity;
      let probeSize = 0;
      if (this.spread) {
        let withRoom = 0;
        for (const level of levels) withRoom += level?.size ?? 0;
        share = Math.ceil(queue.length / Math.max(1, withRoom));
        // The bundle floor: as many as one worker of this role is seen to finish within bundleMs (1 if unknown),
        // from the least time per task or, under a slow consumer, from the probes' slope (BoundMetrics.bestFloor).
        const pace = Math.min(bm.paceMin, bm.pacePrevMin, bm.paceSlope, bm.paceSlopePrev);
        if (this.bundleMs > 0 && pace < Infinity) {
          const floor = Math.min(bm.maxAsk, Math.floor(this.bundleMs / Math.max(pace, 1e-3)));
          if (floor > bm.bestFloor && floor >= 2) bm.bestFloor = floor;
          share = Math.max(share, floor);
          if (2 * floor < bm.bestFloor && share < bm.bestFloor) probeSize = bm.bestFloor;
          else if (!bm.judged && share < 2 && bm.maxAsk >= 2) probeSize = 2;
          bm.floor = floor;
          bm.probing = probeSize > 0;
        }
      }
      const now = this.now();
      const deadline = now + Math.min(this.o.leaseMs, this.maxTaskMs);
      let companion: Task | undefined;
      // tasks a picked worker failed (Task.failedBy), kept for another worker of the role (put back after this role's turn)
      let aside: Task[] | undefined;
      while (queue.length > 0) {
        const slot = this.pick(levels);
        if (!slot) break; // no room left for this role: its other queued tasks wait
        const worker = slot.session;
        if (probeSize > 0 && ++bm.probeCount % PROBE_EVERY === 0) bm.probeDue = true;
        // a probe goes only right after a one-task message of this turn (its companion)
        const probing = probeSize > 0 && bm.probeDue && companion !== undefined;
        const cap = probing ? probeSize : share;
        const most = Math.min(queue.length, cap, slot.room - slot.load, slot.ask);
        if (most < Math.min(slot.room - slot.load, slot.ask, cap) && now < fillBy) {
          holdUntil = Math.min(holdUntil, fillBy);
          break;
        }
        const tasks: Task[] = [];
        while (tasks.length < most && queue.length > 0 && !(tasks.length > 0 && (queue.peek()!.alone || tasks[0]!.alone))) {
          const t = queue.shift()!;
          if (t.failedBy?.has(voterOf(worker)) && this.untriedWorker(role, t)) {
            (aside ??= []).push(t);
            continue;
          }
          tasks.push(t);
        }
        const n = tasks.length;
        if (n === 0) continue; // every task it was offered waits for another worker (aside)
        // A probe of one task says nothing about the next task's cost: not a probe (the next may be).
        let probe: Probe | undefined;
        if (probing && n > 1) {
          probe = { n, left: n, lastMs: 0, singleMs: NaN };
          companion!.probe = probe;
          bm.probeDue = false;
        }
        this.hand(role, slot, tasks, probe, now, deadline);
        companion = n === 1 && !probe ? tasks[0] : undefined;
      }
      if (aside) {
        const left = this.handAside(role, aside, now, deadline);
        for (let i = left.length - 1; i >= 0; i--) queue.unshift(left[i]!);
      }
    }
    if (holdUntil < Infinity && !this.coalesceTimer) {
      this.coalesceTimer = setTimeout(() => {
        this.coalesceTimer = undefined;
        this.pump();
      }, Math.max(0, holdUntil - this.now()));
      this.coalesceTimer.unref();
    }
    // Set only when changed: a gauge update hashes its labels (prom-client), and pumps run every turn.
    const rollout = this.queues.get('ROLLOUT')?.length ?? 0;
    const score = this.queues.get('REWARD')?.length ?? 0;
    if (rollout !== this.depthSet.rollout) this.queueDepth.rollout.set((this.depthSet.rollout = rollout));
    if (score !== this.depthSet.score) this.queueDepth.score.set((this.depthSet.score = score));
  }

  /** The least-loaded open worker of a role with room (ties: the one that waited longest at that load). */
  private pick(levels: Array<Level | undefined>): Slot | undefined {
    for (const level of levels) {
      if (!level) continue;
      for (let slot = level.head; slot; slot = level.head) {
        if (slot.session.isOpen) return slot;
        level.remove(slot); // closed, detach follows
        slot.level = -1;
      }
    }
    return undefined;
  }

  get pending(): number {
    let n = this.active.size;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /**
   * Drops every task matching `pred` (queued or active), e.g. when its batch is abandoned; the holder of an active
   * one is told (cancel_task, `reason`), so it stops waiting for or working on it.
   */
  cancelWhere(pred: (t: Task) => boolean, reason = 'cancelled'): void {
    for (const q of this.queues.values()) q.removeWhere(pred);
    for (const t of this.active.collect(pred)) {
      const holder = t.holder;
      this.deactivate(t);
      holder?.send({ cancel_task: { task_id: t.id, reason } }).catch(() => undefined);
    }
  }
}

/**
 * The workers filed under one load level, oldest first: a list threaded through the slots (Slot.prev/next), so that
 * moving a worker between levels on every dispatch and result allocates nothing (a Set per level shrank and grew).
 */
type Level = ThreadedList<Slot>;

/** Several tasks as one TaskBundle (rollout and score tasks; a board queue holds one role's tasks). */
function bundle(tasks: readonly Task[], leaseMs: number): OrchestratorMessage {
  const rollout_tasks: RolloutTask[] = [];
  const score_tasks: ScoreTask[] = [];
  for (const t of tasks) {
    const m = t.message(t.attempt, leaseMs);
    if (m.rollout_task) rollout_tasks.push(m.rollout_task);
    else if (m.score_task) score_tasks.push(m.score_task);
    else throw new Error(`task board: a task's message must be a rollout_task or score_task to be bundled, got ${Object.keys(m).join(', ')}`);
  }
  return { task_bundle: { rollout_tasks, score_tasks } };
}
