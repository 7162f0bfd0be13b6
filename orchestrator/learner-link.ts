// The orchestrator's side of the learner protocol: TrainBatches go out in seq order and stay until
// acknowledged, are re-sent to a reconnecting learner and after a 'gap' or retryable error; a learner that
// holds batches newer than the stored state (acknowledged while the orchestrator was down) is caught up as far
// as its published checkpoint confirms (the coordinator checks the claim); acknowledgements are applied one at a time, because each persists with compare-and-set.
import { MessageTooLargeError, trainBatchDigest, type TrainBatch, type WorkerIdRecord, type WorkerSession } from '../lib/transport/index.ts';
import type { Metrics } from '../lib/metrics/index.ts';
import { trace } from '../lib/log/trace.ts';
import { quoteForLog } from '../lib/log/quote.ts';
import { errorCodeText } from './task-board.ts';
import { EXCLUSION_REPORTS_LABEL } from '../lib/grpo/exclusion-reports.ts';

export interface LearnerLinkOptions {
  metrics: Metrics;
  log: (line: string) => void;
  /** The run cannot go on. */
  fail: (e: Error) => void;
  /** A TrainBatch was handed to the connected learner (the coordinator may open the next batch early). */
  onSent?: (seq: number) => void;
  /** The last batch seq acknowledged (the run state). */
  ackedSeq: () => number;
  /**
   * The quarantine and worker-id bindings as they stand, sent with every TrainBatch (worker_ids): the learner records
   * them in its checkpoints, whence an orchestrator that lost its run state takes them back (round 33).
   */
  workerIds?: () => WorkerIdRecord;
}

/** A retryable learner error re-sends the unacknowledged batches after this pause. */
const RETRY_MS = 1000;

export class LearnerLink {
  private learner?: WorkerSession;
  /**
   * The learner session let through refuseSecond and not yet attached: its Welcome is being written (an await), and a
   * second learner connecting meanwhile must be refused too, or it gets a Welcome and initialises (review24g).
   */
  private admitted?: WorkerSession;
  /** The session attached last: its results count until another attaches, even if they are read after it closed. */
  private lastAttached?: WorkerSession;
  /** TrainBatches sent and not yet acknowledged, by seq. */
  private readonly unacked = new Map<number, TrainBatch>();
  /**
   * Each held batch's content digest, computed once: on the turn after the batch is first sent (while the learner
   * trains it), or when a TrainResult asks for it first (review26c finding 5: computed on the result's path it held
   * the event loop for the hash of the batch's tensors as every acknowledgement arrived).
   */
  private readonly digests = new WeakMap<TrainBatch, string>();
  /** The held batches this process handed to a learner (a catch-up to one of them is this run state's own progress). */
  private readonly sentBatches = new WeakSet<TrainBatch>();
  private sending = Promise.resolve();
  private acking: Promise<void> = Promise.resolve();
  /**
   * The one pending re-send, if any. Every error asks for a re-send of all unacknowledged batches, and the learner
   * answers `gap` for each batch queued behind a failed one: re-sending on every answer doubled the batches in flight
   * each round (review23b: 1,800 batches a second queued at a learner whose first batch kept failing).
   */
  private resendTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: LearnerLinkOptions) {}

  /**
   * A learner connected. Refused if one is already connected; otherwise `catchUp(seq, version)` runs when its
   * Hello says it holds a batch newer than `ackedSeq`, and everything unacknowledged is re-sent in order.
   *
   * The refusal is ABORTED, which a worker retries: the connected session may be a dead one not yet noticed (a cut
   * link: its heartbeats stop, and it ends after the heartbeat timeout), and the learner reconnecting in its place must
   * keep trying until then (review24d: FAILED_PRECONDITION, which no worker retries, stopped it for good). The old
   * session is never ended for the new one: if it is a live learner, two would then train and publish side by side.
   */
  attach(s: WorkerSession, ackedSeq: number, catchUp: (seq: number) => Promise<void>): boolean {
    if (this.refuseSecond(s)) return false;
    this.learner = s;
    this.admitted = undefined;
    this.lastAttached = s;
    const held = s.hello.last_batch_seq;
    if (held !== undefined && held > ackedSeq) {
      this.o.log(`learner says it holds batch ${held}, newer than the stored ${ackedSeq}: checking its published checkpoint`);
      this.acknowledge(() => catchUp(held)).catch((e: Error) => this.o.fail(e));
    }
    this.resend();
    return true;
  }

  /**
   * Refuses `s` (ABORTED, retried by the worker) when another learner session is open, and says why (undefined: not refused). The
   * orchestrator asks before it sends the Welcome (orchestrator/main.ts): a learner initialises on its first Welcome,
   * and one refused after it would keep the state it loaded then, train from it once the other learner leaves, and
   * answer `gap` to batches acknowledged meanwhile (review24e).
   */
  refuseSecond(s: WorkerSession): string | undefined {
    const other = [this.learner, this.admitted].find((l) => l !== undefined && l !== s && l.isOpen);
    if (!other) {
      this.admitted = s;
      return undefined;
    }
    const why = `a learner (${other.workerId}) is already connected`;
    s.fail(10 /* ABORTED */, `${why}: try again once its session ends (a dead one ends after the heartbeat timeout)`);
    return why;
  }

  detach(s: WorkerSession): boolean {
    if (s !== this.learner) return false;
    this.learner = undefined;
    return true;
  }

  /** Builds and sends the next batch after every earlier one was sent (null: nothing to send). */
  enqueue(build: () => Promise<TrainBatch | null> | TrainBatch | null): void {
    this.sending = this.sending.then(async () => {
      const batch = await build();
      if (!batch) return;
      // acknowledged while it was built (a Hello's catch-up): nothing to send, and kept it would stay unacknowledged
      // for good (the queue_depth gauge never back to 0)
      if (batch.batch_seq! <= this.o.ackedSeq()) return;
      this.unacked.set(batch.batch_seq!, batch);
      this.o.metrics.get('queue_depth').set({ queue: 'train' }, this.unacked.size);
      trace('osend', { kind: 'train_batch' });
      if (this.learner?.isOpen) {
        await this.send(this.learner, batch);
        this.o.onSent?.(batch.batch_seq!);
      }
      // its digest, for the TrainResult that answers it (matchesBatch), off that result's path; skipped if the batch
      // was acknowledged meanwhile (a Hello's catch-up)
      setImmediate(() => {
        if (this.unacked.get(batch.batch_seq!) === batch && !this.digests.has(batch)) this.digests.set(batch, trainBatchDigest(batch));
      });
    }).catch((e: Error) => this.o.fail(e));
  }

  /**
   * Sends one batch. A closed session is no loss (the batch stays unacknowledged and is re-sent to the next
   * learner); a batch over the message limit never gets through, so the run fails naming it rather than stalling.
   */
  private send(learner: WorkerSession, batch: TrainBatch): Promise<void> {
    // the record as of this send, not as of the build (a batch re-sent later carries the newer one); a shallow copy:
    // the held batch (its digest) stays as built
    const sent = this.o.workerIds ? { ...batch, worker_ids: this.o.workerIds() } : batch;
    this.sentBatches.add(batch);
    return learner.send({ train_batch: sent }).catch((e: unknown) => {
      if (e instanceof MessageTooLargeError) {
        this.o.fail(new Error(`cannot send train batch ${batch.batch_seq} (${batch.batch_id}) to the learner: ${e.message}; raise orchestrator.maxMessageBytes (and the workers' --max-message-bytes) or make the run's batches smaller`));
      }
    });
  }

  /**
   * Whether this process sent batch `seq` (held, unacknowledged) with the id `batchId` to a learner: a checkpoint
   * recording that batch was trained from this run state, not from a lost one (round 33, review33 F3).
   */
  sentBatch(seq: number, batchId: unknown): boolean {
    const b = this.unacked.get(seq);
    return !!b && this.sentBatches.has(b) && b.batch_id === batchId;
  }

  /**
   * Whether `s` is the learner session whose answers count: the one attached last. A session refused at attach (another
   * was open) or replaced since may still have messages buffered; its TrainResults and TaskErrors are not this
   * learner's answers.
   */
  isCurrent(s: WorkerSession): boolean {
    return s === this.lastAttached;
  }

  /**
   * Whether the learner attached last says it keeps its exclusion reports (its Capabilities label, round 32: an older
   * learner does not); false before any attached.
   */
  get learnerKeepsReports(): boolean {
    return this.lastAttached?.hello.capabilities?.labels?.[EXCLUSION_REPORTS_LABEL] === '1';
  }

  /** A learner is connected now. */
  get connected(): boolean {
    return this.learner?.isOpen === true;
  }

  /** How many batches were handed out and not yet acknowledged (each one applied makes the learner one version newer). */
  get unackedCount(): number {
    return this.unacked.size;
  }

  sent(seq: number): TrainBatch | undefined {
    return this.unacked.get(seq);
  }

  /** The content digest of unacknowledged batch `seq` (lib/transport/batch-digest.ts); undefined if none is held. */
  sentDigest(seq: number): string | undefined {
    const b = this.unacked.get(seq);
    if (!b) return undefined;
    let d = this.digests.get(b);
    if (d === undefined) this.digests.set(b, (d = trainBatchDigest(b)));
    return d;
  }

  /** Whether the digest of unacknowledged batch `seq` is already computed (sentDigest then does no hashing). */
  hasDigest(seq: number): boolean {
    const b = this.unacked.get(seq);
    return b !== undefined && this.digests.has(b);
  }

  /** Re-sends every unacknowledged batch now (unless a re-send is pending already). */
  resendSoon(): void {
    this.resendAfter(0);
  }

  /** Applies acknowledgements one at a time, in arrival order. */
  acknowledge(apply: () => Promise<void>): Promise<void> {
    const p = this.acking.then(apply);
    this.acking = p.catch(() => undefined);
    return p;
  }

  /** Batches up to `seq` are acknowledged: forget them. */
  acknowledged(seq: number): void {
    for (const s of [...this.unacked.keys()]) if (s <= seq) this.unacked.delete(s);
    this.o.metrics.get('queue_depth').set({ queue: 'train' }, this.unacked.size);
  }

  /**
   * A TaskError from the learner: re-send on 'gap' (now) or a retryable error (after a pause); otherwise the run fails.
   * A `gap` for the first batch after the acknowledged one says the learner has not handled a batch it acknowledged
   * (it expects that one or an older one: it resumed from an older checkpoint, or its store was rolled back): trained
   * work is lost, and no re-send cures it (review24d: 6,300 re-sends in 8 s, the run stalled for good). The run fails,
   * naming both batches.
   */
  onError(taskId: string, code: string, message: string, retryable: boolean): void {
    // the learner's words, quoted and cut short (lib/log/quote.ts): they go to the log, and a fatal one ends the run
    const said = `${errorCodeText(code)}: ${quoteForLog(message)}`;
    const batch = [...this.unacked.values()].find((b) => b.batch_id === taskId);
    if (!batch) {
      this.o.log(`ignoring a learner error for ${quoteForLog(taskId)}, which is not an unacknowledged batch: ${said}`);
      return;
    }
    this.o.log(`learner error on ${taskId}: ${said}`);
    const acked = this.o.ackedSeq();
    if (code === 'gap' && batch.batch_seq === acked + 1) {
      this.o.fail(new Error(`the learner answered gap to batch ${batch.batch_seq} (${said}): it has not handled batch ${acked}, which it acknowledged; it lost trained work (resumed from an older checkpoint, or its checkpoint store was rolled back) and re-sending cannot cure that: restore the learner's newest checkpoint and restart it`));
      return;
    }
    if (code === 'gap') this.resendAfter(0);
    else if (retryable) this.resendAfter(RETRY_MS);
    else this.o.fail(new Error(`learner cannot train batch ${taskId}: ${said}`));
  }

  /**
   * Re-sends every unacknowledged batch after `ms`, unless a re-send is pending already: errors that arrive together
   * (a failed batch's, then `gap` for each batch behind it) make one re-send, and a `gap` never hastens the pause a
   * failed batch waits before its retry.
   */
  private resendAfter(ms: number): void {
    if (this.resendTimer) return;
    this.resendTimer = setTimeout(() => {
      this.resendTimer = undefined;
      this.resend();
    }, ms).unref();
  }

  private resend(): void {
    const learner = this.learner;
    if (!learner?.isOpen) return;
    for (const seq of [...this.unacked.keys()].sort((a, b) => a - b)) void this.send(learner, this.unacked.get(seq)!);
  }
}
