// The network faults of issue #16 on namespaced hosts (test/faults/cluster.ts), injected one after the other
// into one run, each once the previous one was recovered from (a batch acknowledged after it ended) and a few
// more batches went through:
//
//   a  a rollout worker cut off for three times its lease
//   b  200 ms latency (each way) and 5% loss between the learner and NATS, for 15 s
//   c  NATS cut off from everyone for 20 s
//   d  the orchestrator killed (-9) and restarted while a rollout worker is cut off
//   e  the NATS store directory lost: nats-server killed, its store removed, restarted empty
//
// Each fault records when it began and ended; its recovery is the time from its end to the next batch the
// learner acknowledged, and its stall the longest time without an acknowledged batch from its start to that
// batch. Both are measured from the orchestrator's event log (`--events`), which the audit also reads.
import { rmSync } from 'node:fs';
import { lastTrainedSeq, events } from '../reliability/helpers.ts';
import type { Cluster } from './cluster.ts';

export const FAULT_IDS = ['a', 'b', 'c', 'd', 'e'] as const;
export type FaultId = (typeof FAULT_IDS)[number];

export const FAULT_TITLES: Record<FaultId, string> = {
  a: 'rollout worker cut off for 3x its lease',
  b: '200 ms latency + 5% loss, learner <-> NATS, 15 s',
  c: 'NATS cut off from everyone for 20 s',
  d: 'orchestrator restarted while a rollout worker is cut off',
  e: 'NATS store lost, server restarted empty',
};

export interface FaultRecord {
  id: FaultId;
  title: string;
  /** Batch seq last acknowledged when the fault began. */
  seqAtStart: number;
  startedAt: number;
  endedAt: number;
  /** Batches acknowledged while the fault lasted. */
  batchesDuring: number;
  /** End of the fault -> next acknowledged batch (ms); undefined if the run ended first. */
  recoveryMs?: number;
  /** Longest time without an acknowledged batch, from the fault's start to its recovery (ms). */
  stallMs?: number;
  /** The worker the fault cut off (a, d), and the time from the end of the fault to its next rollout result. */
  cutWorker?: string;
  rejoinMs?: number;
  /** Where the cut worker had not rolled out again when the run ended: the end of the fault -> the run's last batch (ms). */
  endedBeforeRejoinMs?: number;
  /** What happened, in words (e.g. how the lab injected the latency). */
  note: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the event log shows a batch after `seq`, or `timeoutMs` passes; the seq now. */
async function waitForBatchAfter(c: Cluster, seq: number, timeoutMs: number, done: () => boolean): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const now = lastTrainedSeq(c.eventsDir);
    if (now > seq || done() || Date.now() > until) return now;
    await sleep(50);
  }
}

/** The rollout worker each fault cuts off. */
const CUT_WORKER: Partial<Record<FaultId, string>> = { a: 'rollout-1', d: 'rollout-0' };

/** Time from `since` to the worker's first rollout result after it (undefined if none within `timeoutMs` or the run ended). */
async function rejoined(c: Cluster, worker: string, since: number, timeoutMs: number): Promise<number | undefined> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const t = events(c.eventsDir).find((e) => e.type === 'rollout' && e.worker === worker && e.t >= since)?.t;
    if (t !== undefined) return t - since;
    if (c.finished || Date.now() > until) return undefined;
    await sleep(200);
  }
}

async function inject(c: Cluster, id: FaultId, log: (l: string) => void): Promise<string> {
  const lease = c.config.orchestrator.leaseSeconds * 1000;
  switch (id) {
    case 'a': {
      const seq = lastTrainedSeq(c.eventsDir);
      const t0 = Date.now();
      c.lab.cut('rollout-1');
      await sleep(3 * lease);
      // and until the run has trained a batch without the worker (its tasks re-dispatched after the lease): on a
      // loaded machine 3 leases may pass before one is, and the test asserts the run went on during the cut
      const after = await waitForBatchAfter(c, seq, 60_000, () => c.finished);
      c.lab.heal('rollout-1');
      const down = (Date.now() - t0) / 1000;
      return `link down ${down.toFixed(1)} s (lease ${lease / 1000} s; 3 leases, then until a batch was trained without it${after > seq ? '' : ': none in 60 s'})`;
    }
    case 'b': {
      c.lab.impair('learner', { delayMs: 200, lossPercent: 5, peer: c.addr('nats') });
      if (!c.lab.netem) c.setLearnerDelay(200);
      await sleep(15_000);
      if (!c.lab.netem) c.setLearnerDelay(0);
      c.lab.clearImpairment('learner');
      return c.lab.netem ? 'tc netem on both ends of the learner\'s link' : 'loss: nftables in the learner\'s namespace; latency: TCP relay (no sch_netem in this kernel)';
    }
    case 'c': {
      c.lab.cut('nats');
      await sleep(20_000);
      c.lab.heal('nats');
      return 'link down 20 s';
    }
    case 'd': {
      c.lab.cut('rollout-0');
      await sleep(1000);
      const pid = c.sup.pid('orchestrator');
      c.sup.kill('orchestrator', 'SIGKILL');
      log(`[fault d] kill -9 orchestrator (pid ${pid}) while rollout-0 is cut off`);
      // Keep the worker cut off until the restarted orchestrator has trained a batch without it (or 60 s).
      const seq = lastTrainedSeq(c.eventsDir);
      await waitForBatchAfter(c, seq, 60_000, () => c.finished);
      c.lab.heal('rollout-0');
      return 'rollout-0 link down; orchestrator kill -9, restarted by the supervisor; link up after its next batch';
    }
    case 'e': {
      const pid = c.sup.pid('nats');
      c.sup.kill('nats', 'SIGKILL');
      // The supervisor restarts it after >= 500 ms: remove the store as soon as the process is gone.
      while (c.sup.pid('nats') === pid) await sleep(5);
      rmSync(c.storeDir, { recursive: true, force: true });
      log(`[fault e] kill -9 nats-server (pid ${pid}), store ${c.storeDir} removed`);
      return 'kill -9, store directory removed before the supervisor restarted it';
    }
  }
}

export interface DriveOptions {
  faults: FaultId[];
  /** Batches to let through after the previous fault recovered (and after the SFT warm start). */
  gap: number;
  log: (l: string) => void;
  /** Each fault's record, as soon as it is known (kept when a later fault fails the run). */
  onRecord?: (r: FaultRecord) => void;
  /** A fault not recovered from within this long after its end fails the run (default 120 s). */
  recoveryTimeoutMs?: number;
}

/**
 * Injects `faults` in order into the running cluster; resolves with their records when the last one has been
 * recovered from (or the run ended). Throws if the run ends before every fault was injected.
 */
export async function driveFaults(c: Cluster, o: DriveOptions): Promise<FaultRecord[]> {
  const records: FaultRecord[] = [];
  const done = () => c.finished;
  let base = c.config.sft.steps;
  for (const id of o.faults) {
    const until = Date.now() + 300_000;
    while (lastTrainedSeq(c.eventsDir) < base + o.gap) {
      if (done()) throw new Error(`the run ended before fault ${id} (${FAULT_TITLES[id]}) was injected: give it more steps`);
      if (Date.now() > until) throw new Error(`no progress to batch ${base + o.gap} within 300 s: fault ${id} was never injected`);
      await sleep(50);
    }
    const seqAtStart = lastTrainedSeq(c.eventsDir);
    const startedAt = Date.now();
    o.log(`[fault ${id}] ${FAULT_TITLES[id]}: begins after batch ${seqAtStart}`);
    const note = await inject(c, id, o.log);
    const endedAt = Date.now();
    const seqAtEnd = lastTrainedSeq(c.eventsDir);
    o.log(`[fault ${id}] ends after batch ${seqAtEnd}`);
    const limit = o.recoveryTimeoutMs ?? 120_000;
    const after = await waitForBatchAfter(c, seqAtEnd, limit, done);
    const acks = events(c.eventsDir).filter((e) => e.type === 'trained').map((e) => e.t);
    const next = after > seqAtEnd ? acks.find((t) => t >= endedAt) : undefined;
    const rec: FaultRecord = { id, title: FAULT_TITLES[id], seqAtStart, startedAt, endedAt, batchesDuring: seqAtEnd - seqAtStart, note, cutWorker: CUT_WORKER[id] };
    if (next !== undefined) {
      rec.recoveryMs = next - endedAt;
      const around = [startedAt, ...acks.filter((t) => t > startedAt && t <= next)];
      rec.stallMs = Math.max(...around.slice(1).map((t, i) => t - around[i]));
    }
    if (rec.cutWorker) {
      rec.rejoinMs = await rejoined(c, rec.cutWorker, endedAt, limit);
      const last = events(c.eventsDir).filter((e) => e.type === 'trained').at(-1)?.t;
      if (rec.rejoinMs === undefined && c.finished && last !== undefined) rec.endedBeforeRejoinMs = last - endedAt;
    }
    records.push(rec);
    o.onRecord?.(rec);
    if (rec.recoveryMs === undefined && !done()) throw new Error(`fault ${id} (${FAULT_TITLES[id]}): no batch acknowledged within ${limit / 1000} s of its end`);
    o.log(`[fault ${id}] recovered: next batch ${rec.recoveryMs !== undefined ? `${(rec.recoveryMs / 1000).toFixed(1)} s` : '(run ended)'} after the fault ended`);
    base = after;
  }
  return records;
}
