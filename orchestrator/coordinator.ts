// The run's controller: admission and acknowledgement. SFT batches for the warm start, then GRPO groups
// (rollout task -> score task -> rewardsOf/advantagesOf -> assembleGrpoBatch -> TrainBatch), dispatched
// within the staleness bound (lib/grpo/staleness.ts). Everything a batch contains is a pure function of its
// number (lib/grpo/sampling.ts), so after a restart the controller only needs the last batch the learner
// acknowledged, which lives in the run-state store. The rest is delegated: the GRPO groups from rollout to
// TrainBatch to grpo-groups.ts (which calls lib/grpo/algorithm.ts), outgoing messages to messages.ts, result
// decoding to results.ts, the learner protocol to learner-link.ts, worker sessions and the lease timer to
// sessions.ts, leases and retries to task-board.ts, progress and reward metrics to progress.ts.

import type { RunConfig } from '../lib/config/index.ts';
import type { Dataset } from '../lib/data/dataset.ts';
import { compileAlgorithm } from '../lib/grpo/algorithm.ts';
import { grpoCursors, groupSampleId, sftCursors } from '../lib/grpo/sampling.ts';
import { mayDispatch } from '../lib/grpo/staleness.ts';
import type { TrainResult__Output, WorkerMessage__Output, WorkerSession } from '../lib/transport/index.ts';
import { workerIdRecord, type WorkerIds } from '../lib/transport/worker-id-record.ts';
import type { Metrics } from '../lib/metrics/index.ts';
import { errorCodeText, TaskBoard } from './task-board.ts';
import { LearnerLink } from './learner-link.ts';
import { sftTrainBatch } from './messages.ts';
import { GroupPipeline } from './grpo-groups.ts';
import { missingWorkers, type AwaitWorkers } from './await-workers.ts';
import { SampleCache } from './sample-cache.ts';
import { WorkerSessions } from './sessions.ts';
import { ProgressMeter } from './progress.ts';
import { cursorOfSample, type Progress, type RunEvent, type RunState } from './run-state.ts';
import { trace } from '../lib/log/trace.ts';
import { quoteForLog } from '../lib/log/quote.ts';
import { inferOutcomes, type CheckpointRecord } from './inferred-trained.ts';
import { IdBindings } from './id-bindings.ts';
import { Quarantine, type CheckedResult, type ExcludedAction, type StoredWindows } from './quarantine.ts';
import { EXCLUSION_REPORTS_KEPT, readDroppedReports, readExclusionReports } from '../lib/grpo/exclusion-reports.ts';

/** gRPC PERMISSION_DENIED: a quarantined worker's session is closed, and its reconnect refused, with it (not retried). */
const PERMISSION_DENIED = 7;

/** The reasons a learner gives for a batch it did not apply (learner/index.ts): the train_batches_total outcomes besides applied and skipped. */
const SKIPPED_REASONS: ReadonlySet<string> = new Set(['duplicate', 'non_finite', 'empty']);
/** A learner's skipped_reason for a log line: one of SKIPPED_REASONS as it is, any other quoted and cut short (as errorCodeText). */
const skippedReasonText = (reason: string): string => (SKIPPED_REASONS.has(reason) ? reason : quoteForLog(reason, 64));
const SFT_WINDOW = 2;
/**
 * How long a batch opened early may wait for the acknowledgement it was opened for before it is withdrawn (its
 * rollout tasks wait at a worker for the version they name; a worker gives up on a task after its versionWaitMs,
 * 30 s by default, and the board gives the group up after 5 such attempts): at least this, and at least
 * EARLY_STEPS of the learner's last GRPO step, so a slow step (large images) does not withdraw every early batch.
 */
const EARLY_LIMIT_MS = 5000;
const EARLY_STEPS = 3;
export const earlyLimitMs = (lastGrpoComputeMs: number): number => Math.max(EARLY_LIMIT_MS, EARLY_STEPS * lastGrpoComputeMs);

/** The one result kind each role may send. */
const RESULT_OF: Record<string, string> = { ROLLOUT: 'rollout_result', REWARD: 'score_result', LEARNER: 'train_result' };

export interface CoordinatorOptions {
  config: RunConfig;
  dataset: Dataset;
  metrics: Metrics;
  state: RunState;
  /** Persists the state (compare-and-set); throws if another orchestrator wrote in between. */
  persist: (s: RunState) => Promise<void>;
  onProgress?: (p: Progress) => void;
  onEvent?: (e: RunEvent) => void;
  log?: (line: string) => void;
  /**
   * The progress the learner's newest published checkpoint records (its announcement in the checkpoint
   * store), or null if none. A reconnecting learner's Hello claim is checked against it, never believed;
   * without it no catch-up happens (the batches are re-sent, and the learner answers those it holds).
   */
  publishedProgress?: () => Promise<PublishedProgress | null>;
  /**
   * What checkpoint `version` records (the batch that produced it, the step), or null when the store no longer holds
   * it: the outcome of each batch acknowledged without a TrainResult is read from these (inferred-trained.ts).
   * Without it those outcomes are known only where the count of versions settles them.
   */
  checkpointRecord?: (version: number) => Promise<CheckpointRecord | null>;
  /** The run's first GRPO batch waits for this many workers per role, at most `ms` (await-workers.ts). */
  awaitWorkers?: AwaitWorkers;
  /**
   * The credential ids (lib/transport/role-tokens.ts tokenCredentialId) of the role tokens the server accepts: a worker
   * id is bound to the first of them granting any id that used it (id-bindings.ts). Absent: no role tokens, no binding.
   */
  roleTokenCredentials?: ReadonlySet<string>;
  /**
   * The newest version announced in the checkpoint store (backed by its object), or null: a rollout result claiming a
   * version newer than the learner can hold as far as this process knows is accepted only if the store announced it
   * (grpo-groups.ts). Without it such a result is refused.
   */
  announcedVersion?: () => Promise<number | null>;
  /**
   * The learner's kept exclusion reports as its run-state record holds them (its `exclusion_reports` field, unchecked:
   * lib/grpo/exclusion-reports.ts reads it), or undefined when none: a batch acknowledged without a TrainResult that
   * reports it is counted in the quarantine windows from its report (round 32). Without it such a batch's counts are
   * lost, as before.
   */
  exclusionReports?: () => Promise<unknown>;
  /**
   * Called at a Hello's catch-up of a state that acknowledged nothing yet (a new run, or a run state lost with the NATS
   * store and created afresh) to checkpoint `published`: the quarantine and worker-id bindings to take back from it
   * (its announcement meta worker_ids, validated: orchestrator/main.ts), or undefined. Round 33.
   */
  recoverWorkerIds?: (published: PublishedProgress) => WorkerIds | undefined;
}

/** What the newest announced checkpoint says the learner holds. */
export interface PublishedProgress {
  version: number;
  lastBatchSeq: number;
  /** Its announcement's meta (extra.* among it), where read. */
  meta?: Record<string, unknown>;
}

/**
 * `s` with `quarantined`, `quarantineWindows` and `boundIds` when there is any (a run without a quarantine keeps the state it
 * always had).
 */
function withQuarantined(s: RunState, quarantined: string[], windows: StoredWindows | undefined, boundIds: Record<string, string> | undefined): RunState {
  return { ...s, ...(quarantined.length ? { quarantined } : {}), ...(windows ? { quarantineWindows: windows } : {}), ...(boundIds ? { boundIds } : {}) };
}

export class Coordinator {
  readonly board: TaskBoard;
  private readonly cfg: RunConfig;
  private readonly sftSteps: number;
  private readonly totalSeq: number;
  /** GRPO groups from rollout to TrainBatch. */
  private readonly groups: GroupPipeline;
  private readonly link: LearnerLink;
  private readonly sessions: WorkerSessions;
  private readonly samples: SampleCache;
  private nextSftSeq: number;
  private nextK: number;
  private readonly progress: ProgressMeter;
  /** Rollout workers whose rows the learner excluded (grpo.quarantineAfter). */
  private readonly quarantine: Quarantine;
  /** Worker ids bound to the role token that first used them (id-bindings.ts). */
  private readonly bindings: IdBindings;
  /**
   * A TrainResult's acknowledgement while it is being written to the run-state store: GRPO admission already
   * counts it (the next batch's rollouts start during the write; they carry the new version as their minimum).
   * Nothing else moves until the write succeeded; a failed write fails the run.
   */
  private persisting: RunState | undefined;
  /**
   * At maxStaleness 0, GRPO batch `k` (seq) opened while batch seq - 1 is at the learner, its rollouts asking for
   * `minVersion`, the version that batch will produce: the rollout worker holds them and starts as soon as that
   * checkpoint is announced, instead of after the acknowledgement reaches this process and the tasks reach the worker.
   * It stands if the acknowledgement of seq - 1 names that version; otherwise (a skipped batch, a catch-up), or if the
   * learner leaves or takes longer than EARLY_LIMIT_MS, it is withdrawn and opened again by the rule of staleness.ts.
   */
  private early: { k: number; seq: number; minVersion: number; timer: NodeJS.Timeout } | undefined;
  /** A seq not to open early again (its early opening was withdrawn without an acknowledgement). */
  private earlyRefused = 0;
  /**
   * While GRPO's first batch waits for the awaited workers (CoordinatorOptions.awaitWorkers): the deadline's timer,
   * set when the batch could first have opened. Undefined before then; null once GRPO may start.
   */
  private fleetTimer: NodeJS.Timeout | undefined | null;
  /** The learner's compute time for its last GRPO batch (TrainResult.compute_ms). */
  private lastGrpoComputeMs = 0;
  /** The missing-check_coverage warning was logged (once per process). */
  private coverageWarned = false;
  /** The missing-batch_digest warning was logged (once per process). */
  private warnedNoDigest = false;
  /** The older-learner warning of countKeptReports was logged (once per process). */
  private warnedNoReports = false;
  /**
   * The samples the event log records dropped in batches it does not yet record trained (this process's drops, and
   * the log's from before a restart: loggedDrops): a batch acknowledged without a TrainResult lists its cursors'
   * samples less these (inferTrained), so the log never says a sample was both dropped and trained (review26a F3).
   */
  private readonly droppedSamples = new Set<string>();
  private finished!: () => void;
  private failed!: (e: Error) => void;
  readonly done: Promise<void>;

  constructor(private readonly o: CoordinatorOptions) {
    this.cfg = o.config;
    this.sftSteps = o.config.sft.steps;
    this.totalSeq = this.sftSteps + o.config.grpo.steps;
    this.nextSftSeq = o.state.ackedSeq + 1;
    this.nextK = Math.max(0, o.state.ackedSeq - this.sftSteps);
    // only the run's first GRPO batch waits (an orchestrator resumed later in GRPO does not hold the run again)
    this.fleetTimer = o.awaitWorkers && this.nextK === 0 ? undefined : null;
    this.done = new Promise((resolve, reject) => {
      this.finished = resolve;
      this.failed = reject;
    });
    this.done.catch(() => undefined);
    this.board = new TaskBoard({
      leaseMs: o.config.orchestrator.leaseSeconds * 1000,
      maxTaskMs: o.config.orchestrator.maxTaskSeconds * 1000,
      maxInFlight: o.config.orchestrator.maxInFlightPerWorker,
      dispatch: o.config.orchestrator.dispatch,
      coalesceMs: o.config.orchestrator.coalesceMs,
      bundleMs: o.config.orchestrator.bundleMs,
      maxAttempts: 5,
      metrics: o.metrics,
      onGiveUp: (task, reason) => this.groups.dropTask(task, reason),
      log: (l) => this.log(l),
    });
    this.samples = new SampleCache(o.dataset);
    this.link = new LearnerLink({ metrics: o.metrics, log: (l) => this.log(l), fail: (e) => this.fail(e), onSent: () => this.openEarly(), ackedSeq: () => this.o.state.ackedSeq,
      workerIds: () => workerIdRecord({ quarantined: this.quarantine.oldestFirst(), boundIds: this.bindings.stored() ?? {} }) });
    this.sessions = new WorkerSessions(o.metrics, this.board);
    this.quarantine = new Quarantine({
      after: o.config.grpo.quarantineAfter, window: o.config.grpo.quarantineWindow, metrics: o.metrics, log: (l) => this.log(l), restored: o.state.quarantined ?? [],
      ...(o.state.quarantineWindows ? { restoredWindows: o.state.quarantineWindows } : {}),
      close: (workerId, reason) => {
        // a rollout worker's id: a learner or reward worker that happens to use the same id is not touched (review25g)
        this.sessions.failWorker('ROLLOUT', workerId, PERMISSION_DENIED, reason);
        const n = this.groups.redoRolloutsOf(workerId);
        if (n) this.log(`rolling out again ${n} groups of batches not yet trained whose rollout came from quarantined worker ${workerId}`);
      },
    });
    this.bindings = new IdBindings({ ...(o.state.boundIds ? { restored: o.state.boundIds } : {}), live: o.roleTokenCredentials, log: (l) => this.log(l) });
    this.progress = new ProgressMeter(o.metrics, o.config.sft.batchSize, this.totalSeq);
    this.groups = new GroupPipeline({
      config: o.config, algo: compileAlgorithm(o.config), board: this.board, samples: this.samples, metrics: o.metrics, progress: this.progress,
      learnerVersion: () => this.learnerVersion(),
      newestKnownVersion: () => this.learnerVersion() + this.link.unackedCount,
      ...(o.announcedVersion ? { announcedVersion: o.announcedVersion } : {}),
      refuse: (s, taskId, message) => this.refuse(s, taskId, message),
      send: (build) => this.link.enqueue(build),
      onEvent: (e) => {
        if (e.type === 'dropped') this.droppedSamples.add(e.sample);
        o.onEvent?.(e);
      },
      log: (l) => this.log(l),
    }, this.nextK);
    o.metrics.get('policy_version').set(o.state.learnerVersion);
  }

  /** The learner's version: the acknowledged one, or the one being stored. */
  private learnerVersion(): number {
    return Math.max(this.o.state.learnerVersion, this.persisting?.learnerVersion ?? 0);
  }

  /**
   * The run state as known now: the stored acknowledgement, every id quarantined so far (stored or not yet), the
   * quarantine windows as of the acknowledged batch, and the worker ids bound to role tokens so far.
   */
  get state(): RunState {
    return withQuarantined({ ackedSeq: this.o.state.ackedSeq, learnerVersion: this.o.state.learnerVersion }, this.quarantine.ids(), this.quarantine.ackedWindows(), this.bindings.stored());
  }

  get phase(): Progress['phase'] {
    if (this.o.state.ackedSeq >= this.totalSeq) return 'done';
    return this.o.state.ackedSeq < this.sftSteps ? 'sft' : 'grpo';
  }

  get workers(): Array<{ role: string; workerId: string; device: string }> {
    return this.sessions.workers;
  }

  private log(line: string): void {
    (this.o.log ?? console.log)(line);
  }

  start(): void {
    if (this.phase === 'done') {
      this.finished();
      return;
    }
    this.advance();
  }

  /** Stops the lease timer; sessions and the server are closed by their owner (orchestrator/main.ts). */
  close(): void {
    if (this.fleetTimer) clearTimeout(this.fleetTimer);
    this.sessions.close();
  }

  /**
   * Whether GRPO's first batch may open: every awaited worker is connected, or the wait is over. The first call that
   * finds one missing starts the deadline; each worker that attaches meanwhile calls advance(), so this again.
   */
  private fleetReady(): boolean {
    if (this.fleetTimer === null) return true;
    const a = this.o.awaitWorkers!;
    const missing = missingWorkers(a, (role) => this.board.attachedCount(role));
    if (missing.length > 0 && a.ms > 0) {
      if (this.fleetTimer === undefined) {
        this.log(`GRPO waits for its workers (${missing.join(', ')} connected), at most ${a.ms / 1000} s`);
        this.fleetTimer = setTimeout(() => {
          const still = missingWorkers(a, (role) => this.board.attachedCount(role));
          this.log(`GRPO starts after ${a.ms / 1000} s without every awaited worker (${still.join(', ')} connected)`);
          this.fleetTimer = null;
          this.advance();
        }, a.ms);
        this.fleetTimer.unref();
      }
      return false;
    }
    if (this.fleetTimer) {
      clearTimeout(this.fleetTimer);
      this.log('GRPO starts: every awaited worker is connected');
    }
    this.fleetTimer = null;
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Sessions

  /** A worker connected: registered (and detached when its stream ends), then given work. */
  track(s: WorkerSession): void {
    this.sessions.track(s, (closed) => this.detach(closed));
  }

  /** Why learner `s` was refused (failed with ABORTED: another learner session is open); undefined: not refused. */
  refuseSecondLearner(s: WorkerSession): string | undefined {
    return s.role === 'LEARNER' ? this.link.refuseSecond(s) : undefined;
  }

  /**
   * Why worker `s` is refused because its (role, worker id) is bound to another role token (id-bindings.ts; undefined:
   * it is not, and the id is now bound to its token if it grants any id); the session is then failed with
   * PERMISSION_DENIED. The orchestrator asks first, before the Welcome (main.ts).
   */
  refuseBound(s: WorkerSession): string | undefined {
    const why = this.bindings.claim(s);
    if (why) s.fail(PERMISSION_DENIED, why);
    return why;
  }

  /**
   * Why worker `s` is refused because its worker id is quarantined (undefined: it is not); the session is then failed
   * with PERMISSION_DENIED, which a worker does not retry. The orchestrator asks before the Welcome (main.ts).
   */
  refuseQuarantined(s: WorkerSession): string | undefined {
    if (s.role !== 'ROLLOUT') return undefined; // the quarantine is of a rollout worker id (review25g)
    const why = this.quarantine.refusal(s.workerId);
    if (why) s.fail(PERMISSION_DENIED, why);
    return why;
  }

  attach(s: WorkerSession): void {
    if (s.role === 'LEARNER') {
      const catchUp = (held: number) => this.catchUp(s, held);
      if (!this.link.attach(s, this.o.state.ackedSeq, catchUp)) return;
    } else {
      this.board.attach(s);
    }
    this.sessions.updateGauge();
    this.advance();
  }

  detach(s: WorkerSession): void {
    if (this.link.detach(s)) this.withdrawEarly('the learner disconnected', true);
    else this.board.detach(s);
    this.sessions.updateGauge();
  }

  shutdownAll(reason: string): void {
    this.sessions.shutdownAll(reason);
  }

  // ---------------------------------------------------------------------------------------------
  // Messages from workers

  handle(s: WorkerSession, msg: WorkerMessage__Output): void {
    const result = msg.rollout_result ? 'rollout_result' : msg.score_result ? 'score_result' : msg.train_result ? 'train_result' : undefined;
    if (result && result !== RESULT_OF[s.role]) {
      // A result of another role's kind (e.g. a rollout worker sending a train_result) is refused outright.
      this.log(`refused a ${result} from ${s.role.toLowerCase()} ${s.workerId}: that role sends only ${RESULT_OF[s.role]}`);
      this.o.metrics.get('task_errors_total').inc({ worker_role: s.role.toLowerCase(), code: 'wrong_kind' });
      return;
    }
    if (s.role === 'LEARNER' && (msg.train_result || msg.task_error) && !this.link.isCurrent(s)) {
      // a learner session refused at attach (another was connected) or replaced since: its answers are not the
      // learner's (review24d); the batches stay unacknowledged and go to the current learner
      this.log(`ignoring a ${msg.train_result ? 'train_result' : 'task_error'} from learner ${s.workerId}: not the current learner session`);
      this.o.metrics.get('task_errors_total').inc({ worker_role: 'learner', code: 'not_current_session' });
      return;
    }
    if (s.role === 'ROLLOUT' && this.quarantine.isQuarantined(s.workerId)) {
      // nothing it still sends is taken; its session is closed (its tasks go back to the queue then), also one that
      // was attached while the quarantine began, between its Hello's check and its attach (review25g)
      if (result || msg.task_error) this.o.metrics.get('task_errors_total').inc({ worker_role: 'rollout', code: 'quarantined' });
      if (s.isOpen) s.fail(PERMISSION_DENIED, this.quarantine.refusal(s.workerId)!);
      return;
    }
    if (result) trace('orecv', { kind: result });
    try {
      if (msg.heartbeat) this.board.renew(s, msg.heartbeat.active_task_ids);
      else if (msg.rollout_result) this.groups.onRollout(s, msg.rollout_result);
      else if (msg.score_result) this.groups.onScore(s, msg.score_result);
      else if (msg.train_result) void this.onTrain(msg.train_result).catch((e: Error) => this.fail(e));
      else if (msg.task_error) {
        const e = msg.task_error;
        // a batch opened early whose rollout task failed (e.g. the worker gave up waiting for the version) is opened
        // again after the acknowledgement, with the version it brings, not retried on a prediction
        // (only from the task's holder: any other worker's error names a task it does not hold, refused below)
        if (this.early && this.groups.isRolloutOf(this.early.k, e.task_id) && this.board.heldBy(s, e.task_id) && this.withdrawEarly(`its rollout task failed: ${errorCodeText(e.code)}`, true)) return;
        if (s.role === 'LEARNER') this.link.onError(e.task_id, e.code, e.message, e.retryable);
        else this.board.fail(s, e.task_id, e.code, e.message, e.retryable);
      }
    } catch (e) {
      // A malformed result is the worker's fault: refuse it and retry the task elsewhere.
      this.refuse(s, msg.rollout_result?.task_id ?? msg.score_result?.task_id ?? '', (e as Error).message);
    }
  }

  /** Refuses a bad result (or message) of `s`'s: logged, and its task (if it names one) retried elsewhere. */
  private refuse(s: WorkerSession, taskId: string, message: string): void {
    // one about a task it does not hold is only counted (foreign_results_total, by board.fail): not logged (review26a)
    if (taskId && !this.board.heldBy(s, taskId)) return this.board.fail(s, taskId, 'bad_result', message, true);
    this.log(`rejected a message from ${s.workerId}: ${message}`);
    if (taskId) this.board.fail(s, taskId, 'bad_result', message, true);
  }

  private fail(e: Error): void {
    this.log(`run failed: ${e.message}`);
    this.failed(e);
  }

  // ---------------------------------------------------------------------------------------------
  // Admission

  /** Opens, builds and sends whatever the current state allows. */
  private advance(): void {
    if (this.phase === 'done') return;
    if (this.nextSftSeq <= this.sftSteps) {
      while (this.nextSftSeq <= this.sftSteps && this.nextSftSeq - this.o.state.ackedSeq <= SFT_WINDOW) {
        const seq = this.nextSftSeq++;
        this.progress.started('sft');
        this.link.enqueue(async () => sftTrainBatch(this.cfg, seq, await Promise.all(sftCursors(this.cfg, seq).map((c) => this.samples.load(c)))));
      }
      return;
    }
    const acked = Math.max(this.o.state.ackedSeq, this.persisting?.ackedSeq ?? 0);
    if (acked < this.sftSteps) return; // GRPO starts from the finished warm start
    if (!this.fleetReady()) return;
    while (this.nextK < this.cfg.grpo.steps && mayDispatch(this.seqOf(this.nextK), acked, this.cfg.grpo.maxStaleness)) {
      const k = this.nextK++;
      trace('open_batch', { k, seq: this.seqOf(k) });
      this.progress.started('grpo');
      void this.groups.openBatch(k).catch((e: Error) => this.fail(e));
    }
    if (this.nextK < this.cfg.grpo.steps) this.samples.preload(grpoCursors(this.cfg, this.nextK));
  }

  /**
   * maxStaleness 0: opens the next GRPO batch as soon as the previous one is at the learner (see `early`). Called
   * when a TrainBatch was handed to the learner. Results are those of the rule: at maxStaleness 0 the version the
   * previous batch produces is the newest there will be until this batch is trained, and the rollouts use exactly it.
   */
  private openEarly(): void {
    if (this.cfg.grpo.maxStaleness !== 0 || this.early || this.phase !== 'grpo' || this.nextK >= this.cfg.grpo.steps) return;
    const acked = Math.max(this.o.state.ackedSeq, this.persisting?.ackedSeq ?? 0);
    const seq = this.seqOf(this.nextK);
    if (acked < this.sftSteps || seq !== acked + 2 || seq <= this.earlyRefused || !this.link.sent(seq - 1) || !this.link.connected) return;
    const k = this.nextK++;
    const minVersion = this.learnerVersion() + 1;
    const limitMs = earlyLimitMs(this.lastGrpoComputeMs);
    const timer = setTimeout(() => this.withdrawEarly(`no acknowledgement of batch ${seq - 1} within ${limitMs} ms`, true), limitMs);
    timer.unref();
    this.early = { k, seq, minVersion, timer };
    trace('open_batch', { k, seq, early: true });
    this.progress.started('grpo');
    void this.groups.openBatch(k, minVersion).catch((e: Error) => this.fail(e));
    if (this.nextK < this.cfg.grpo.steps) this.samples.preload(grpoCursors(this.cfg, this.nextK));
  }

  /**
   * Withdraws the batch opened early, so that `advance` opens it again by the rule; `refuse`: not early again. False
   * if its TrainBatch was already handed out (every rollout then ran on the version it asked for): it stands.
   */
  private withdrawEarly(reason: string, refuse: boolean): boolean {
    const e = this.early;
    if (!e) return false;
    clearTimeout(e.timer);
    this.early = undefined;
    if (!this.groups.withdraw(e.k, `batch ${e.seq} withdrawn: ${reason}`)) return false;
    if (this.nextK > e.k) this.nextK = e.k;
    if (refuse) this.earlyRefused = Math.max(this.earlyRefused, e.seq);
    this.log(`GRPO batch ${e.seq}, opened before batch ${e.seq - 1} was acknowledged, withdrawn (${reason}); it opens again after the acknowledgement`);
    return true;
  }

  private seqOf(k: number): number {
    return this.sftSteps + k + 1;
  }

  // ---------------------------------------------------------------------------------------------
  // Acknowledgement

  private async onTrain(r: TrainResult__Output): Promise<void> {
    const seq = r.batch_seq;
    if (seq <= this.o.state.ackedSeq) return;
    if (!this.link.sent(seq)) {
      // Only a batch this orchestrator sent can be acknowledged (a result for any other seq would skip batches).
      this.log(`ignoring a train_result for batch ${seq}: no such batch was sent`);
      this.o.metrics.get('duplicate_results_total').inc({ worker_role: 'learner' });
      return;
    }
    const duplicate = !r.applied && r.skipped_reason === 'duplicate';
    // a 'duplicate' says only that the learner handled seq already (whatever it held): it is checked against the
    // published checkpoint below, not matched by content; any other answer must be the batch held under seq
    if (!duplicate && !this.matchesBatch(seq, r)) return;
    // counted in the quarantine windows inside the acknowledgement chain, in the order the acknowledgements apply: a
    // batch acknowledged before (a 'duplicate' or a catch-up still reading NATS, which counts the learner's kept
    // report of it) is counted first, whatever order the messages arrived in (review32 F1); one acknowledged
    // meanwhile (a catch-up counted it from its report) is not counted again
    await this.link.acknowledge(async () => {
      if (seq <= this.o.state.ackedSeq) return;
      this.recordChecked(seq, r);
      if (duplicate) return this.acknowledgeDuplicate(seq, r);
      if (!r.applied) this.log(`batch ${seq} not applied: ${skippedReasonText(r.skipped_reason)}`);
      return this.applyAck(seq, r.version, r);
    });
  }

  /**
   * Whether TrainResult `r` answers the batch this process holds under `seq` (TrainResult.batch_digest, computed by the
   * learner over the batch it answered, against the digest of ours). Not when the learner trained another batch under
   * that seq: one an earlier orchestrator process built and sent before it stopped, its rollouts other than the
   * rebuilt one's. Then the result is neither taken as our batch's acknowledgement nor are its excluded actions
   * attributed to our batch's rollout workers; our batch is sent again, and the learner, which handled seq already,
   * answers it 'duplicate', acknowledged as far as its published checkpoint confirms (acknowledgeDuplicate). So seq is
   * trained once (the old batch) and acknowledged once, and the rebuilt batch is never trained. A result without a
   * digest (an older learner) is matched by seq alone, as before this field, and counted as such.
   */
  private matchesBatch(seq: number, r: TrainResult__Output): boolean {
    const digests = this.o.metrics.get('train_result_digests_total');
    if (!r.batch_digest) {
      digests.inc({ outcome: 'absent' });
      if (!this.warnedNoDigest) {
        this.warnedNoDigest = true;
        this.log(`the learner's train_results carry no batch_digest (an older learner): each is taken for the batch of its seq, unchecked; after an orchestrator restart a result of the earlier process's batch could be taken for the rebuilt one (docs/reliability.md)`);
      }
      return true;
    }
    const ours = this.link.sentDigest(seq);
    if (r.batch_digest === ours) {
      digests.inc({ outcome: 'match' });
      return true;
    }
    digests.inc({ outcome: 'mismatch' });
    const excluded = r.excluded_actions?.length ? `, its ${r.excluded_actions.length} excluded actions not attributed` : '';
    this.log(`ignoring a train_result for batch ${seq} (${r.applied ? 'applied' : skippedReasonText(r.skipped_reason)}, version ${r.version}) of another batch than the one held under that seq (digest ${quoteForLog(r.batch_digest, 80)}, ours ${ours}): the result of an earlier orchestrator process's batch${excluded}; sending batch ${seq} again, which the learner answers 'duplicate' if it handled that seq`);
    this.link.resendSoon();
    return false;
  }

  /**
   * What the learner's checks made of batch `seq`, for the quarantine: the actions it excluded
   * (TrainResult.excluded_actions: indices into the batch's sample_ids), each attributed to the rollout worker whose
   * accepted result carried its group, and the groups it examined (counted in their worker's window,
   * grpo.quarantineWindow): in an applied batch, every group with no action the learner reports unchecked
   * (TrainResult.check_coverage: a stale row its stale-row check left out, review26c F1), and every group with an
   * excluded row. A learner that does not report its coverage (older): a group with a row at the learner's version
   * before the step (every row at maxStaleness 0), as before; a stale group then counts only when excluded (said once).
   * Called in the acknowledgement chain (after the acknowledgements before it, while the batch's groups are still
   * open), only for a result that answers the batch held (matchesBatch) and a batch not yet acknowledged.
   */
  private recordChecked(seq: number, r: TrainResult__Output): void {
    const actions = r.excluded_actions ?? [];
    const counting = this.cfg.grpo.quarantineAfter > 0 && this.cfg.grpo.quarantineWindow > 0;
    if (!actions.length && !(counting && r.applied)) return;
    const batch = this.link.sent(seq);
    const workers = this.groups.rolloutWorkers(seq);
    if (!actions.length && workers.size === 0) return; // an SFT batch, or groups forgotten: nothing to count
    const ids = batch?.sample_ids ?? [];
    const versions = batch?.behaviour_versions ?? [];
    const checkedVersion = r.applied && r.version > 0 ? r.version - 1 : undefined;
    const coverage = r.check_coverage ? new Set(r.check_coverage.unchecked_actions ?? []) : undefined;
    if (!coverage && counting && r.applied && this.cfg.grpo.maxStaleness > 0 && !this.coverageWarned) {
      this.coverageWarned = true;
      this.log(`the learner's train_results carry no check_coverage (an older learner): a stale group counts in its rollout worker's quarantine window only when a row of it was excluded, so at grpo.maxStaleness > 0 the window (grpo.quarantineWindow) holds few passed results (docs/security.md)`);
    }
    /** Groups with an action the learner did not examine. */
    const uncheckedGroups = new Set<string>();
    if (coverage) for (const i of coverage) if (ids[i] !== undefined) uncheckedGroups.add(ids[i]!);
    const excludedSet = new Set(actions);
    const excluded: ExcludedAction[] = [];
    const unknown: number[] = [];
    for (const i of excludedSet) {
      const sampleId = ids[i];
      const worker = sampleId === undefined ? undefined : workers.get(sampleId);
      if (worker === undefined) unknown.push(i);
      else excluded.push({ worker, sampleId: sampleId!, groupIndex: batch?.group_indices?.[i] ?? i });
    }
    // the groups examined, in batch order, each once
    const groups = new Map<string, CheckedResult>();
    ids.forEach((sampleId, i) => {
      const worker = workers.get(sampleId);
      if (worker === undefined) return;
      const hit = excludedSet.has(i);
      const examined = hit || (checkedVersion !== undefined && (coverage ? !uncheckedGroups.has(sampleId) : versions[i] === undefined || versions[i] === checkedVersion));
      if (!examined) return;
      const g = groups.get(sampleId);
      if (g) g.excluded ||= hit;
      else groups.set(sampleId, { worker, sampleId, excluded: hit });
    });
    this.quarantine.record(seq, [...groups.values()], excluded, unknown);
  }

  /**
   * The learner says it already holds batch `seq`, which was never acknowledged: a restarted learner resumed past it
   * from its published checkpoint (the batch was applied and the learner killed before its TrainResult arrived; a new
   * learner process says nothing of its progress in its Hello, so the Hello's catch-up cannot run). Recorded as that
   * catch-up records it, as far as the newest published checkpoint confirms, so the audit trail shows the batch
   * applied once; otherwise (e.g. a batch skipped as non-finite, then the learner restarted) as the learner answered.
   */
  private async acknowledgeDuplicate(seq: number, r: TrainResult__Output): Promise<void> {
    if (seq <= this.o.state.ackedSeq) return;
    const published = this.o.publishedProgress ? await this.o.publishedProgress() : null;
    if (published && published.lastBatchSeq >= seq) {
      const upTo = Math.min(published.lastBatchSeq, this.totalSeq);
      this.log(`batch ${seq}: the learner already holds it (its published checkpoint v${published.version} records batch ${published.lastBatchSeq}): acknowledged up to batch ${upTo}`);
      return this.applyAck(upTo, published.version);
    }
    this.log(`batch ${seq} not applied: duplicate`);
    return this.applyAck(seq, r.version, r);
  }

  private async applyAck(seq: number, version: number, r?: TrainResult__Output): Promise<void> {
    if (seq <= this.o.state.ackedSeq) return;
    if (r) {
      const why = await this.unbelievableVersion(seq, version);
      if (seq <= this.o.state.ackedSeq) return;
      if (why) {
        this.o.metrics.get('task_errors_total').inc({ worker_role: 'learner', code: 'unverified_claim' });
        if (r.applied) {
          this.log(`refused the train_result for batch ${seq}: ${why}; the batch stays unacknowledged (it is sent again at the learner's next error or reconnect)`);
          return;
        }
        // a batch the learner does not apply (duplicate, non_finite) is answered so again at every re-send: acknowledged
        // (refusing it would stall the run), the run's version left as it is
        this.log(`batch ${seq} (not applied: ${skippedReasonText(r.skipped_reason)}): ${why}; acknowledged at the stored version ${this.o.state.learnerVersion}`);
        version = this.o.state.learnerVersion;
      }
    }
    const e = this.early;
    if (e) {
      // the batch opened early stands if this acknowledgement is the one it was opened for, with the version it asked for
      if (seq === e.seq - 1 && version === e.minVersion) {
        clearTimeout(e.timer);
        this.early = undefined;
      } else this.withdrawEarly(`batch ${seq} was acknowledged at version ${version}; it asked for ${e.minVersion}`, false);
    }
    const batch = this.link.sent(seq);
    // acknowledged without a TrainResult that reports the batches' checks (a Hello's catch-up, a 'duplicate' answer):
    // their excluded results are counted from the learner's kept reports, as their TrainResults would have been
    if (!r || (!r.applied && r.skipped_reason === 'duplicate')) await this.countKeptReports(this.o.state.ackedSeq + 1, seq);
    // the quarantine as it stands goes with the acknowledgement: an id quarantined by this batch's TrainResult is
    // stored with it, so a restarted orchestrator refuses it too (it cannot be stored without the batch it came from);
    // and the windows as this batch's TrainResult left them, so a restarted orchestrator goes on counting from them
    const next = withQuarantined({ ackedSeq: seq, learnerVersion: Math.max(version, this.o.state.learnerVersion) }, this.quarantine.ids(), this.quarantine.windowsAt(seq), this.bindings.stored());
    // Without a TrainResult, the learner's Hello says it holds batches we never saw acknowledged (we
    // restarted in between): record them in the audit trail, as its checkpoints record them.
    const caughtUp = r ? [] : await this.inferTrained(this.o.state.ackedSeq + 1, seq, version, 'held by the learner at reconnect', this.o.state.learnerVersion);
    if (r && this.nextSftSeq > this.sftSteps) {
      // open what this acknowledgement admits while it is written (the store round trip is off the critical path)
      this.persisting = next;
      this.advance();
    }
    trace('persist_start', { seq });
    try {
      await this.o.persist(next);
      trace('persist_end', { seq });
    } finally {
      this.persisting = undefined;
    }
    for (const e of caughtUp) this.o.onEvent?.(e);
    this.forgetDropsUpTo(seq);
    this.o.state.ackedSeq = next.ackedSeq;
    this.o.state.learnerVersion = next.learnerVersion;
    if (next.quarantined) this.o.state.quarantined = next.quarantined;
    this.quarantine.acknowledged(seq);
    this.link.acknowledged(seq);
    this.groups.acknowledged(seq);
    // a batch opened early that this acknowledgement passed is over with it (its groups forgotten just above). One is
    // open only if it was opened during this acknowledgement's write: a Hello's catch-up (admission does not count it
    // as written) while batches of the old frontier are sent to the learner. Withdrawn later, it moved the next batch
    // to open back to its own, below the acknowledged one, and the orchestrator threw (round 35)
    if (this.early && this.early.seq <= seq) {
      clearTimeout(this.early.timer);
      this.early = undefined;
    }
    if (this.nextSftSeq <= seq) this.nextSftSeq = Math.min(seq + 1, this.sftSteps + 1);
    if (seq > this.sftSteps) {
      const k = seq - this.sftSteps; // batches 0..k-1 are done
      if (this.nextK < k) this.nextK = k;
    }
    this.o.metrics.get('policy_version').set(next.learnerVersion);
    const kind = batch?.kind === 'GRPO' || seq > this.sftSteps ? 'grpo' : 'sft';
    // the learner's reason names the label only where it is one of the learner's own (a label per string it chose would be a series each)
    if (r) this.o.metrics.get('train_batches_total').inc({ kind, outcome: r.applied ? 'applied' : SKIPPED_REASONS.has(r.skipped_reason) ? r.skipped_reason : 'skipped' });
    // a TrainResult without a finite compute time (absent, NaN) keeps the previous one: NaN made the early limit NaN,
    // which setTimeout takes as 1 ms, withdrawing every early batch at once
    if (r && kind === 'grpo' && r.applied && Number.isFinite(r.compute_ms) && r.compute_ms >= 0) this.lastGrpoComputeMs = r.compute_ms;
    if (r && batch) {
      const samples = kind === 'grpo' ? [...new Set(batch.sample_ids ?? [])] : (batch.sample_ids ?? []);
      this.o.onEvent?.({ type: 'trained', seq, kind, applied: r.applied, reason: r.skipped_reason || undefined, version: r.version, samples, compute_ms: r.compute_ms });
    }
    const actions = kind === 'grpo' && batch ? (batch.sample_ids?.length ?? 0) : 0;
    this.o.onProgress?.(this.progress.acknowledged(this.phase, seq, kind, next.learnerVersion, actions, r));
    if (this.phase === 'done') {
      this.finished();
      return;
    }
    this.advance();
  }

  /**
   * Batches first..last are being acknowledged without a TrainResult that reports their checks: the orchestrator that
   * received their TrainResults was killed before it wrote their acknowledgements (or a learner killed before its
   * TrainResult went out answers 'duplicate' after its restart). Each of them with an excluded result is counted from
   * the learner's kept report of it (lib/grpo/exclusion-reports.ts: the learner wrote it, with the rollout worker of
   * each group that this process or the earlier one sent it in TrainBatch.rollout_workers, before it published the
   * batch's version) as its TrainResult would have been (Quarantine.recordReported: the windows, the excluded actions
   * in rollout_rows_excluded_total), once: not a batch this process counted already (needsReport). A batch whose
   * report the learner dropped to its bound (more than EXCLUSION_REPORTS_KEPT such batches unacknowledged) is named in
   * one line per catch-up and counted in quarantine_reports_missing_total (round 33; before, nothing said so). Only
   * the learner writes its record (NATS grants: the orchestrator's names its own key `state` only, review32 F3), so
   * only the learner's word counts, as with a TrainResult.
   */
  private async countKeptReports(first: number, last: number): Promise<void> {
    if (last <= this.sftSteps || !this.o.exclusionReports) return;
    const from = Math.max(first, this.sftSteps + 1);
    if (!this.link.learnerKeepsReports && !this.warnedNoReports) {
      this.warnedNoReports = true;
      this.log(`the learner does not keep exclusion reports (an older learner): the excluded results of GRPO batches acknowledged without their TrainResult (here ${from}..${last}) are not counted in the quarantine windows (docs/security.md)`);
    }
    const kept = await this.o.exclusionReports();
    // the dropped ones first: every dropped report is older than every kept one, and counting a kept one makes the
    // batches before it counted (needsReport)
    const missing = readDroppedReports(kept).filter((seq) => seq >= from && seq <= last && this.quarantine.needsReport(seq));
    if (missing.length) {
      this.o.metrics.get('quarantine_reports_missing_total').inc(missing.length);
      this.log(`the learner dropped its kept exclusion reports of ${missing.length} GRPO batch(es) acknowledged without their TrainResult (it keeps those of the newest ${EXCLUSION_REPORTS_KEPT} batches with an excluded result): batch(es) ${missing.slice(0, 16).join(', ')}${missing.length > 16 ? ', ...' : ''}; their excluded and passed rollout results are not counted in the quarantine windows, nor their excluded actions in rollout_rows_excluded_total (quarantine_reports_missing_total; docs/security.md)`);
    }
    for (const report of readExclusionReports(kept)) {
      if (report.seq < from || report.seq > last) continue;
      if (!this.quarantine.needsReport(report.seq)) {
        this.log(`GRPO batch ${report.seq}: the learner's kept exclusion report of it not counted: this process counted its TrainResult, or a later batch's`);
        continue;
      }
      this.quarantine.recordReported(report.seq, report);
    }
  }

  /**
   * Why a TrainResult's `version` for batch `seq` is not believed (undefined: it is). Each batch applied makes one
   * version (learner/index.ts), so after batch `seq` the learner holds at most the stored version plus one per batch
   * since the stored acknowledgement; a version above that is believed only if the newest published checkpoint is at
   * least as new (as a Hello's claim is checked: `catchUp`). Stored on trust, one result naming 424242 became the run's
   * version for good: every rollout task asked for it and it never came (review26a F5).
   */
  private async unbelievableVersion(seq: number, version: number): Promise<string | undefined> {
    const bound = this.o.state.learnerVersion + (seq - this.o.state.ackedSeq);
    if (version <= bound) return undefined;
    const published = this.o.publishedProgress ? await this.o.publishedProgress() : null;
    if (published && published.version >= version) return undefined;
    return `version ${version} is above what batches ${this.o.state.ackedSeq + 1}..${seq} can make from the acknowledged version ${this.o.state.learnerVersion} (at most ${bound}, one per batch) and above the newest published checkpoint (${published ? `v${published.version}` : 'none'})`;
  }

  /**
   * A learner's Hello says it holds batch `claimed`, newer than the stored state (acknowledged while this
   * orchestrator was down). Believed only as far as its newest published checkpoint records: a client
   * claiming `last_batch_seq=3, policy_version=424242` with nothing published moves nothing, and catch-up
   * never runs past the run's last batch.
   */
  private async catchUp(s: WorkerSession, claimed: number): Promise<void> {
    const published = this.o.publishedProgress ? await this.o.publishedProgress() : null;
    const seq = Math.min(claimed, published?.lastBatchSeq ?? 0, this.totalSeq);
    if (seq < claimed) {
      this.log(`learner ${s.workerId} claims batch ${claimed}, but its newest published checkpoint ${published ? `(v${published.version}) records batch ${published.lastBatchSeq}` : 'does not exist'}: ${seq > this.o.state.ackedSeq ? `catching up to batch ${seq} only` : 'not caught up'}`);
      this.o.metrics.get('task_errors_total').inc({ worker_role: 'learner', code: 'unverified_claim' });
    }
    if (seq <= this.o.state.ackedSeq || !published) return;
    // a fresh state caught up: the quarantine and bindings the lost one held, as the learner recorded them (stored
    // with this acknowledgement); not when the checkpoint's batch is one this process sent (a learner restarted
    // before its TrainResult: nothing was lost)
    const ownBatch = this.link.sentBatch(published.lastBatchSeq, published.meta?.['last_batch_id']);
    const ids = this.o.state.ackedSeq === 0 && !ownBatch ? this.o.recoverWorkerIds?.(published) : undefined;
    if (ids) {
      this.quarantine.restore(ids.quarantined);
      this.bindings.restore(ids.boundIds);
    }
    await this.applyAck(seq, published.version);
  }

  /** The first GRPO cursor of the batches after `seq` (SFT batches use the cursors below the first GRPO one). */
  firstCursorAfter(seq: number): number {
    return this.sftSteps * this.cfg.sft.batchSize + Math.max(0, seq - this.sftSteps) * this.cfg.grpo.samplesPerBatch;
  }

  /**
   * Samples the event log records dropped in batches after the last one it records trained (run-state.ts
   * lastLoggedTrained): an inferred 'trained' event does not list them. Call before recordUnlogged() and start().
   */
  loggedDrops(samples: Iterable<string>): void {
    for (const s of samples) this.droppedSamples.add(s);
  }

  /** Lets go of the drops of batches up to `seq`, now logged trained (or acknowledged). */
  private forgetDropsUpTo(seq: number): void {
    const from = this.firstCursorAfter(seq);
    for (const s of this.droppedSamples) if ((cursorOfSample(s) ?? Infinity) < from) this.droppedSamples.delete(s);
  }

  /**
   * Batches the stored state records as acknowledged that the event log `lastLogged` does not: this orchestrator
   * was killed after persisting an acknowledgement and before logging it (applyAck persists first). Their
   * 'trained' events, inferred, so the audit trail holds every acknowledged batch once. Call before start().
   * `appliedVersion`: the version the log's batch `lastLogged` produced, where the log records it applied.
   */
  async recordUnlogged(lastLogged: number, appliedVersion?: number): Promise<number> {
    const { ackedSeq, learnerVersion } = this.o.state;
    if (lastLogged >= ackedSeq) return 0;
    // the version before batch lastLogged + 1: v0 before the first batch (the learner's initial version)
    const before = lastLogged === 0 ? 0 : appliedVersion;
    const events = await this.inferTrained(lastLogged + 1, ackedSeq, learnerVersion, 'acknowledged before the orchestrator restarted, not logged', before);
    for (const e of events) this.o.onEvent?.(e);
    this.forgetDropsUpTo(ackedSeq);
    return events.length;
  }

  /**
   * The 'trained' events of batches first..last, acknowledged without a TrainResult at hand: each one's outcome and
   * version as the learner's checkpoints record them (inferred-trained.ts); where they do not, applied and version
   * are null and the reason starts with 'unknown'. `versionBefore`: the stored version after batch first - 1. A GRPO
   * batch's samples are its cursors' less those the log records dropped (droppedSamples): a dropped group was not in
   * the batch the learner applied (before, every cursor was listed: review26a F3).
   */
  private async inferTrained(first: number, last: number, lastVersion: number, context: string, versionBefore?: number): Promise<RunEvent[]> {
    const record = this.o.checkpointRecord ?? (async () => null);
    const outcomes = await inferOutcomes({ first, last, lastVersion, sftSteps: this.sftSteps, record, ...(versionBefore !== undefined ? { versionBefore } : {}) });
    const events: RunEvent[] = [];
    for (const o of outcomes) {
      const grpo = o.seq > this.sftSteps;
      const all = grpo ? await Promise.all(grpoCursors(this.cfg, o.seq - this.sftSteps - 1).map(async (c) => groupSampleId(c, (await this.samples.load(c)).id))) : [];
      const samples = all.filter((id) => !this.droppedSamples.has(id));
      // an applied batch's reason starts with how it was learnt (as before); any other with its outcome
      const reason = o.kind === 'applied' ? `${context} (${o.evidence})` : `${o.kind}: ${context} (${o.evidence})`;
      events.push({ type: 'trained', seq: o.seq, kind: grpo ? 'grpo' : 'sft', applied: o.applied, reason, version: o.version, samples, compute_ms: 0 });
    }
    return events;
  }
}
