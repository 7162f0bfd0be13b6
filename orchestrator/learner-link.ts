// The orchestrator's side of the learner protocol: TrainBatches go out in seq order and stay until
// acknowledged, are re-sent to a reconnecting learner and after a 'gap' or retryable error; a learner that
// holds batches newer than the stored state (acknowledged while the orchestrator was down) is caught up as far
// as its published checkpoint confirms (the coordinator checks the claim); acknowledgements are applied one at a time, because each persists with compare-and-set.
import type { TrainBatch, WorkerSession } from '../lib/transport/index.ts';
import type { Metrics } from '../lib/metrics/index.ts';
import { trace } from '../lib/log/trace.ts';
import { quoteForLog } from '../lib/log/quote.ts';
import { errorCodeText } from './task-board.ts';

export interface LearnerLinkOptions {
  metrics: Metrics;
  log: (line: string) => void;
  /** The run cannot go on. */
  fail: (e: Error) => void;
  /** A TrainBatch was handed to the connected learner (the coordinator may open the next batch early). */
  onSent?: (seq: number) => void;
}

export class LearnerLink {
  private learner?: WorkerSession;
  /** TrainBatches sent and not yet acknowledged, by seq. */
  private readonly unacked = new Map<number, TrainBatch>();
  private sending = Promise.resolve();
  private acking: Promise<void> = Promise.resolve();

  constructor(private readonly o: LearnerLinkOptions) {}

  /**
   * A learner connected. Refused if one is already connected; otherwise `catchUp(seq, version)` runs when its
   * Hello says it holds a batch newer than `ackedSeq`, and everything unacknowledged is re-sent in order.
   */
  attach(s: WorkerSession, ackedSeq: number, catchUp: (seq: number) => Promise<void>): boolean {
    if (this.learner?.isOpen) {
      s.fail(9 /* FAILED_PRECONDITION */, `a learner (${this.learner.workerId}) is already connected`);
      return false;
    }
    this.learner = s;
    const held = s.hello.last_batch_seq;
    if (held !== undefined && held > ackedSeq) {
      this.o.log(`learner says it holds batch ${held}, newer than the stored ${ackedSeq}: checking its published checkpoint`);
      this.acknowledge(() => catchUp(held)).catch((e: Error) => this.o.fail(e));
    }
    this.resend();
    return true;
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
      this.unacked.set(batch.batch_seq!, batch);
      this.o.metrics.get('queue_depth').set({ queue: 'train' }, this.unacked.size);
      trace('osend', { kind: 'train_batch' });
      if (this.learner?.isOpen) {
        await this.learner.send({ train_batch: batch }).catch(() => undefined);
        this.o.onSent?.(batch.batch_seq!);
      }
    }).catch((e: Error) => this.o.fail(e));
  }

  /** A learner is connected now. */
  get connected(): boolean {
    return this.learner?.isOpen === true;
  }

  sent(seq: number): TrainBatch | undefined {
    return this.unacked.get(seq);
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

  /** A TaskError from the learner: re-send on 'gap' (now) or a retryable error (after a pause); otherwise the run fails. */
  onError(taskId: string, code: string, message: string, retryable: boolean): void {
    // the learner's words, quoted and cut short (lib/log/quote.ts): they go to the log, and a fatal one ends the run
    const said = `${errorCodeText(code)}: ${quoteForLog(message)}`;
    if (![...this.unacked.values()].some((b) => b.batch_id === taskId)) {
      this.o.log(`ignoring a learner error for ${quoteForLog(taskId)}, which is not an unacknowledged batch: ${said}`);
      return;
    }
    this.o.log(`learner error on ${taskId}: ${said}`);
    if (code === 'gap') this.resend();
    else if (retryable) setTimeout(() => this.resend(), 1000).unref();
    else this.o.fail(new Error(`learner cannot train batch ${taskId}: ${said}`));
  }

  private resend(): void {
    for (const seq of [...this.unacked.keys()].sort((a, b) => a - b)) void this.learner?.send({ train_batch: this.unacked.get(seq)! }).catch(() => undefined);
  }
}
