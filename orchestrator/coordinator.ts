// The run's controller: SFT batches for the warm start, then GRPO groups (rollout -> score -> reward ->
// group-relative advantages -> TrainBatch), with admission bounded by maxStaleness. Everything a batch
// contains is a pure function of its index (dataset cursors, noise seeds), so after a restart the
// controller only needs the last batch the learner acknowledged, which lives in the run-state store.

import type { RunConfig } from '../lib/config/index.ts';
import type { Dataset, Sample } from '../lib/data/dataset.ts';
import { clamp01, stackPairs, toCHWFloat } from '../lib/data/image.ts';
import type { Components } from '../lib/grpo/reward-expression.ts';
import { meanStd, ZERO_VARIANCE_STD } from '../lib/grpo/advantages.ts';
import { advantagesOf, compileAlgorithm, rewardsOf, type GrpoAlgorithm } from '../lib/grpo/algorithm.ts';
import { assembleGrpoBatch, type TrainableGroup } from '../lib/grpo/batch.ts';
import { grpoCursors, groupSampleId, rolloutNoiseSeed, sftCursors } from '../lib/grpo/sampling.ts';
import { mayDispatch } from '../lib/grpo/staleness.ts';
import { ssimMapSize } from '../lib/models/ssim.ts';
import {
  encodeTensor,
  type OrchestratorMessage,
  type RolloutResult__Output,
  type ScoreResult__Output,
  type TrainBatch,
  type TrainResult__Output,
  type WorkerSession,
  decodeTensor,
} from '../lib/transport/index.ts';
import type { Metrics } from '../lib/metrics/index.ts';
import { TaskBoard, type Task } from './task-board.ts';

/** What survives a restart (stored in the JetStream key-value bucket). */
export interface RunState {
  /** batch_seq of the last TrainBatch the learner acknowledged (0: none). */
  ackedSeq: number;
  /** Learner policy version after that batch. */
  learnerVersion: number;
}

export interface Progress {
  phase: 'sft' | 'grpo' | 'done';
  seq: number;
  totalSeq: number;
  version: number;
  loss: number;
  kl?: number;
  clipFraction?: number;
  reward?: number;
  components?: Record<string, number>;
  samplesPerSecond: number;
}

interface Group {
  k: number;
  sampleId: string;
  cursor: number;
  image: Float32Array;
  clean: Float32Array;
  actions: Float32Array[];
  logps: number[];
  versions: number[];
  rewards?: number[];
  components?: Components[];
  advantages?: Float32Array;
  /** Dense mode: per action, the per-element behaviour log-density and the centred SSIM advantage map. */
  logpMaps?: Float32Array[];
  advantageMaps?: Float32Array[];
  state: 'rollout' | 'score' | 'done' | 'dropped';
}

interface OpenBatch {
  k: number;
  seq: number;
  groups: Group[];
}

const SFT_WINDOW = 2;

/** The one result kind each role may send. */
const RESULT_OF: Record<string, string> = { ROLLOUT: 'rollout_result', REWARD: 'score_result', LEARNER: 'train_result' };

/** What happened to the run's work, for audits and tests (written as JSON lines by --events). */
export type RunEvent =
  | { type: 'rollout'; sample: string; worker: string; version: number; attempt: number; compute_ms: number }
  | { type: 'scored'; sample: string; worker: string; reward: number; compute_ms: number }
  | { type: 'trained'; seq: number; kind: 'sft' | 'grpo'; applied: boolean; reason?: string; version: number; samples: string[]; compute_ms: number }
  | { type: 'dropped'; sample: string; reason: string };

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
}

export class Coordinator {
  readonly board: TaskBoard;
  private readonly cfg: RunConfig;
  private readonly H: number;
  private readonly sftSteps: number;
  private readonly totalSeq: number;
  /** The reward and advantage variant of the run (lib/grpo/algorithm.ts). */
  private readonly algo: GrpoAlgorithm;
  private readonly dense: boolean;
  private learner?: WorkerSession;
  /** TrainBatches sent and not yet acknowledged, by seq (re-sent to a reconnecting learner). */
  private readonly unacked = new Map<number, TrainBatch>();
  private readonly open = new Map<number, OpenBatch>();
  private nextSftSeq: number;
  private nextK: number;
  private nextSendK: number;
  private sending = Promise.resolve();
  private grpoStart = 0;
  private grpoActions = 0;
  private sftStart = 0;
  private lastReward?: { reward: number; components: Record<string, number> };
  private finished!: () => void;
  private failed!: (e: Error) => void;
  readonly done: Promise<void>;

  constructor(private readonly o: CoordinatorOptions) {
    this.cfg = o.config;
    this.H = o.config.data.size;
    this.sftSteps = o.config.sft.steps;
    this.totalSeq = this.sftSteps + o.config.grpo.steps;
    this.algo = compileAlgorithm(o.config);
    this.dense = this.algo.variant === 'dense';
    this.nextSftSeq = o.state.ackedSeq + 1;
    this.nextK = Math.max(0, o.state.ackedSeq - this.sftSteps);
    this.nextSendK = this.nextK;
    this.done = new Promise((resolve, reject) => {
      this.finished = resolve;
      this.failed = reject;
    });
    this.done.catch(() => undefined);
    this.board = new TaskBoard({
      leaseMs: o.config.orchestrator.leaseSeconds * 1000,
      maxAttempts: 5,
      metrics: o.metrics,
      onGiveUp: (task, reason) => this.dropTask(task, reason),
    });
    o.metrics.get('policy_version').set(o.state.learnerVersion);
    this.updateWorkerGauge(); // zero for every role until one connects, so "no workers" alerts can fire
  }

  get state(): RunState {
    return { ...this.o.state };
  }

  get phase(): Progress['phase'] {
    if (this.o.state.ackedSeq >= this.totalSeq) return 'done';
    return this.o.state.ackedSeq < this.sftSteps ? 'sft' : 'grpo';
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

  // ---------------------------------------------------------------------------------------------
  // Sessions

  attach(s: WorkerSession): void {
    if (s.role === 'LEARNER') {
      if (this.learner?.isOpen) {
        s.fail(9 /* FAILED_PRECONDITION */, `a learner (${this.learner.workerId}) is already connected`);
        return;
      }
      this.learner = s;
      const held = s.hello.last_batch_seq;
      if (held !== undefined && held > this.o.state.ackedSeq) {
        // The learner applied batches whose acknowledgement we never stored: take its word for them.
        this.log(`learner holds batch ${held}, newer than the stored ${this.o.state.ackedSeq}: catching up`);
        this.acknowledge(held, s.hello.policy_version ?? this.o.state.learnerVersion).catch((e: Error) => this.fail(e));
      }
      for (const seq of [...this.unacked.keys()].sort((a, b) => a - b)) {
        void s.send({ train_batch: this.unacked.get(seq)! }).catch(() => undefined);
      }
    } else {
      this.board.attach(s);
    }
    this.updateWorkerGauge();
    this.advance();
  }

  detach(s: WorkerSession): void {
    if (s === this.learner) this.learner = undefined;
    else this.board.detach(s);
    this.updateWorkerGauge();
  }

  private sessions = new Set<WorkerSession>();
  track(s: WorkerSession): void {
    this.sessions.add(s);
    void s.closed.then(() => {
      this.sessions.delete(s);
      this.detach(s);
    });
  }

  get workers(): Array<{ role: string; workerId: string; device: string }> {
    return [...this.sessions].map((s) => ({ role: s.role, workerId: s.workerId, device: s.hello.capabilities.device }));
  }

  private updateWorkerGauge(): void {
    for (const role of ['ROLLOUT', 'REWARD', 'LEARNER'] as const) {
      const n = [...this.sessions].filter((s) => s.role === role && s.isOpen).length;
      this.o.metrics.get('workers_connected').set({ worker_role: role.toLowerCase() }, n);
    }
  }

  shutdownAll(reason: string): void {
    for (const s of this.sessions) void s.send({ shutdown: { reason, grace_ms: 2000 } }).catch(() => undefined);
  }

  // ---------------------------------------------------------------------------------------------
  // Messages from workers

  handle(s: WorkerSession, msg: import('../lib/transport/index.ts').WorkerMessage__Output): void {
    const result = msg.rollout_result ? 'rollout_result' : msg.score_result ? 'score_result' : msg.train_result ? 'train_result' : undefined;
    if (result && result !== RESULT_OF[s.role]) {
      // A result of another role's kind (e.g. a rollout worker sending a train_result) is refused outright.
      this.log(`refused a ${result} from ${s.role.toLowerCase()} ${s.workerId}: that role sends only ${RESULT_OF[s.role]}`);
      this.o.metrics.get('task_errors_total').inc({ worker_role: s.role.toLowerCase(), code: 'wrong_kind' });
      return;
    }
    try {
      if (msg.heartbeat) this.board.renew(s, msg.heartbeat.active_task_ids);
      else if (msg.rollout_result) this.onRollout(s, msg.rollout_result);
      else if (msg.score_result) this.onScore(s, msg.score_result);
      else if (msg.train_result) void this.onTrain(msg.train_result).catch((e: Error) => this.fail(e));
      else if (msg.task_error) {
        const e = msg.task_error;
        if (s.role === 'LEARNER') this.onLearnerError(e.task_id, e.code, e.message, e.retryable);
        else this.board.fail(s, e.task_id, e.code, e.message, e.retryable);
      }
    } catch (e) {
      // A malformed result is the worker's fault: refuse it and retry the task elsewhere.
      const id = msg.rollout_result?.task_id ?? msg.score_result?.task_id ?? '';
      this.log(`rejected a message from ${s.workerId}: ${(e as Error).message}`);
      if (id) this.board.fail(s, id, 'bad_result', (e as Error).message, true);
    }
  }

  private fail(e: Error): void {
    this.log(`run failed: ${e.message}`);
    this.failed(e);
  }

  // ---------------------------------------------------------------------------------------------
  // Flow

  /** Opens, builds and sends whatever the current state allows. */
  private advance(): void {
    if (this.phase === 'done') return;
    if (this.nextSftSeq <= this.sftSteps) {
      while (this.nextSftSeq <= this.sftSteps && this.nextSftSeq - this.o.state.ackedSeq <= SFT_WINDOW) {
        const seq = this.nextSftSeq++;
        if (!this.sftStart) this.sftStart = Date.now();
        this.enqueueSend(() => this.buildSft(seq));
      }
      return;
    }
    if (this.o.state.ackedSeq < this.sftSteps) return; // GRPO starts from the finished warm start
    // Admission: the one staleness rule (lib/grpo/staleness.ts).
    while (this.nextK < this.cfg.grpo.steps && mayDispatch(this.seqOf(this.nextK), this.o.state.ackedSeq, this.cfg.grpo.maxStaleness)) {
      const k = this.nextK++;
      if (!this.grpoStart) this.grpoStart = Date.now();
      void this.openBatch(k).catch((e: Error) => this.fail(e));
    }
    if (this.nextK < this.cfg.grpo.steps) this.preload(this.cursorsOf(this.nextK));
  }

  private seqOf(k: number): number {
    return this.sftSteps + k + 1;
  }

  /** TrainBatches go out in seq order: each is built after the previous one was sent. */
  private enqueueSend(build: () => Promise<TrainBatch | null>): void {
    this.sending = this.sending.then(async () => {
      const batch = await build();
      if (!batch) return;
      this.unacked.set(batch.batch_seq!, batch);
      this.o.metrics.get('queue_depth').set({ queue: 'train' }, this.unacked.size);
      if (this.learner?.isOpen) await this.learner.send({ train_batch: batch }).catch(() => undefined);
    }).catch((e: Error) => this.fail(e));
  }

  private readonly preloaded = new Map<number, Promise<Sample>>();

  /** A dataset sample (decoding and corruption take milliseconds: the next batch's are loaded ahead). */
  private load(cursor: number): Promise<Sample> {
    const hit = this.preloaded.get(cursor);
    if (hit) {
      this.preloaded.delete(cursor);
      return hit;
    }
    return this.o.dataset.sample(cursor);
  }

  private preload(cursors: number[]): void {
    for (const c of cursors) {
      if (this.preloaded.has(c)) continue;
      const p = this.o.dataset.sample(c);
      p.catch(() => undefined); // a failure surfaces when the sample is really needed
      this.preloaded.set(c, p);
    }
  }

  private tensor(data: Float32Array, shape: number[]) {
    return encodeTensor({ dtype: 'float32', shape, data });
  }

  private async buildSft(seq: number): Promise<TrainBatch> {
    const B = this.cfg.sft.batchSize;
    const samples = [];
    for (const c of sftCursors(this.cfg, seq)) samples.push(await this.load(c));
    const { corrupted: images, clean: targets } = stackPairs(samples);
    const ids = samples.map((s) => s.id);
    const shape = [B, 3, this.H, this.H];
    return {
      batch_id: `${this.cfg.run.id}-b${seq}`,
      batch_seq: seq,
      kind: 'SFT',
      lease_ms: this.cfg.orchestrator.leaseSeconds * 1000,
      images: this.tensor(images, shape),
      targets: this.tensor(targets, shape),
      sample_ids: ids,
    };
  }

  private async openBatch(k: number): Promise<void> {
    const batch: OpenBatch = { k, seq: this.seqOf(k), groups: [] };
    this.open.set(k, batch);
    for (const cursor of this.cursorsOf(k)) {
      const s = await this.load(cursor);
      const group: Group = {
        k,
        cursor,
        sampleId: groupSampleId(cursor, s.id),
        image: toCHWFloat(s.corrupted),
        clean: toCHWFloat(s.clean),
        actions: [],
        logps: [],
        versions: [],
        state: 'rollout',
      };
      batch.groups.push(group);
      this.board.add(this.rolloutTask(group));
    }
  }

  /** The dataset cursors of GRPO batch k (after the warm start's). */
  private cursorsOf(k: number): number[] {
    return grpoCursors(this.cfg, k);
  }

  private rolloutTask(group: Group): Task & { group: Group } {
    const G = this.cfg.grpo.groupSize;
    const minVersion = this.o.state.learnerVersion;
    const id = `${this.cfg.run.id}-r${group.cursor}`;
    return {
      id,
      role: 'ROLLOUT',
      attempt: 0,
      group,
      message: (attempt, leaseMs): OrchestratorMessage => ({
        rollout_task: {
          task_id: id,
          attempt,
          lease_ms: leaseMs,
          policy_version_min: minVersion,
          want_logp_map: this.dense,
          items: Array.from({ length: G }, (_, g) => ({
            sample_id: group.sampleId,
            group_index: g,
            noise_seed: String(rolloutNoiseSeed(this.cfg.run.seed, group.sampleId, g)),
            image: g === 0 ? this.tensor(group.image, [3, this.H, this.H]) : undefined,
          })),
        },
      }),
    };
  }

  private scoreTask(group: Group): Task & { group: Group } {
    const G = this.cfg.grpo.groupSize;
    const pix = group.image.length;
    const candidates = new Float32Array(G * pix);
    // The reward sees the image a user would see: actions clamped to [0, 1].
    group.actions.forEach((a, g) => candidates.set(clamp01(a), g * pix));
    const id = `${this.cfg.run.id}-s${group.cursor}`;
    return {
      id,
      role: 'REWARD',
      attempt: 0,
      group,
      message: (attempt, leaseMs): OrchestratorMessage => ({
        score_task: {
          task_id: id,
          attempt,
          lease_ms: leaseMs,
          candidates: this.tensor(candidates, [G, 3, this.H, this.H]),
          references: this.tensor(group.clean, [1, 3, this.H, this.H]),
          want_ssim_map: this.dense,
        },
      }),
    };
  }

  private dropTask(task: Task, reason: string): void {
    const group = (task as Task & { group?: Group }).group;
    this.log(`giving up task ${task.id} after ${task.attempt} attempts: ${reason}`);
    if (group) this.dropGroup(group, 'task_failed');
  }

  private dropGroup(group: Group, reason: string): void {
    group.state = 'dropped';
    this.o.onEvent?.({ type: 'dropped', sample: group.sampleId, reason });
    this.o.metrics.get('samples_dropped_total').inc({ reason });
    this.trySend();
  }

  private groupOf(task: Task | undefined): Group | undefined {
    return (task as (Task & { group?: Group }) | undefined)?.group;
  }

  private onRollout(s: WorkerSession, r: RolloutResult__Output): void {
    const G = this.cfg.grpo.groupSize;
    const pix = 3 * this.H * this.H;
    // Validate before accepting: a malformed result throws and the task is retried elsewhere.
    if (r.items.length !== G) throw new Error(`rollout_result ${r.task_id}: ${r.items.length} actions, expected ${G}`);
    const actions = r.items.map((it, i) => {
      const t = decodeTensor(it.action, { field: `rollout_result.items[${i}].action`, expectShape: [3, this.H, this.H] });
      if (!Number.isFinite(it.logp)) throw new Error(`rollout_result.items[${i}].logp is ${it.logp}`);
      if (it.group_index !== i) throw new Error(`rollout_result.items[${i}].group_index is ${it.group_index}`);
      return t.data;
    });
    if (actions.some((a) => a.length !== pix)) throw new Error('rollout_result: action of the wrong size');
    const logpMaps = this.dense
      ? r.items.map((it, i) => decodeTensor(it.logp_map, { field: `rollout_result.items[${i}].logp_map`, expectShape: [3, this.H, this.H] }).data)
      : undefined;
    const group = this.groupOf(this.board.complete(s, r.task_id));
    if (!group || group.state !== 'rollout') return;
    group.actions = actions;
    group.logpMaps = logpMaps;
    group.logps = r.items.map((it) => it.logp);
    group.versions = r.items.map(() => r.policy_version);
    group.state = 'score';
    this.o.metrics.get('rollouts_total').inc(G);
    this.o.onEvent?.({ type: 'rollout', sample: group.sampleId, worker: s.workerId, version: r.policy_version, attempt: r.attempt, compute_ms: r.compute_ms });
    this.board.add(this.scoreTask(group));
  }

  private onScore(s: WorkerSession, r: ScoreResult__Output): void {
    const G = this.cfg.grpo.groupSize;
    if (r.components.length !== G) throw new Error(`score_result ${r.task_id}: ${r.components.length} components, expected ${G}`);
    const components = r.components.map((c, i) => {
      if (!Number.isFinite(c.ssim) || !Number.isFinite(c.clip_cos)) throw new Error(`score_result.components[${i}] is not finite (ssim ${c.ssim}, clip_cos ${c.clip_cos})`);
      return { ssim: c.ssim, clip_cos: c.clip_cos };
    });
    const h = ssimMapSize(this.H);
    const maps = this.dense ? decodeTensor(r.ssim_map, { field: 'score_result.ssim_map', expectShape: [G, 3, h, h] }).data : undefined;
    // The reward too is computed before the task is accepted: a non-finite reward refuses the result.
    let rewards: number[];
    try {
      rewards = rewardsOf(this.algo, components);
    } catch (e) {
      throw new Error(`score_result.${(e as Error).message}`);
    }
    const group = this.groupOf(this.board.complete(s, r.task_id));
    if (!group || group.state !== 'score') return;
    this.o.metrics.get('scores_total').inc(G);
    group.components = components;
    group.rewards = rewards;
    this.o.onEvent?.({ type: 'scored', sample: group.sampleId, worker: s.workerId, reward: rewards.reduce((a, b) => a + b, 0) / G, compute_ms: r.compute_ms });
    for (let i = 0; i < G; i++) {
      this.o.metrics.get('reward').observe(rewards[i]);
      for (const [name, v] of Object.entries(components[i])) this.o.metrics.get('reward_component').observe({ component: name }, v);
    }
    const L = 3 * h * h;
    const outcome = advantagesOf(this.algo, {
      components, rewards,
      ...(maps ? { ssimMaps: Array.from({ length: G }, (_, i) => maps.subarray(i * L, (i + 1) * L)) } : {}),
    });
    if (!outcome.kept) {
      this.dropGroup(group, outcome.reason);
      return;
    }
    group.advantages = outcome.advantages;
    group.advantageMaps = outcome.advantageMaps;
    group.state = 'done';
    this.trySend();
  }

  /** Sends completed batches in order. */
  private trySend(): void {
    for (;;) {
      const b = this.open.get(this.nextSendK);
      if (!b || b.groups.length < this.cfg.grpo.samplesPerBatch) return;
      if (b.groups.some((g) => g.state === 'rollout' || g.state === 'score')) return;
      this.nextSendK++;
      this.enqueueSend(async () => this.buildGrpo(b));
    }
  }

  private buildGrpo(b: OpenBatch): TrainBatch {
    const kept = b.groups.filter((g) => g.state === 'done') as Array<Group & TrainableGroup>;
    const t = assembleGrpoBatch(kept, this.H, this.dense);
    const allRewards = kept.flatMap((g) => g.rewards);
    const comp: Record<string, number[]> = {};
    for (const g of kept) for (const c of g.components) for (const [name, v] of Object.entries(c)) (comp[name] ??= []).push(v);
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
    if (allRewards.length) {
      this.lastReward = { reward: mean(allRewards), components: Object.fromEntries(Object.entries(comp).map(([k, v]) => [k, mean(v)])) };
      this.o.metrics.get('reward_mean').set(this.lastReward.reward);
      for (const [name, v] of Object.entries(this.lastReward.components)) this.o.metrics.get('reward_component_mean').set({ component: name }, v);
      this.o.metrics.get('advantage_std').set(meanStd(Array.from(t.advantages)).std);
    }
    const zeroVar = b.groups.filter((g) => g.rewards && meanStd(g.rewards).std < ZERO_VARIANCE_STD).length;
    this.o.metrics.get('zero_variance_group_fraction').set(zeroVar / b.groups.length);
    const n = t.n;
    const shape = [n, 3, this.H, this.H];
    const h = ssimMapSize(this.H);
    return {
      batch_id: `${this.cfg.run.id}-b${b.seq}`,
      batch_seq: b.seq,
      kind: 'GRPO',
      lease_ms: this.cfg.orchestrator.leaseSeconds * 1000,
      images: this.tensor(t.images, shape),
      actions: this.tensor(t.actions, shape),
      logp_old: this.tensor(t.logpOld, this.dense ? shape : [n]),
      advantages: this.tensor(t.advantages, [n]),
      advantage_map: t.advantageMap ? this.tensor(t.advantageMap, [n, 3, h, h]) : undefined,
      behaviour_versions: t.behaviourVersions,
      sample_ids: t.sampleIds,
      group_indices: t.groupIndices,
    };
  }

  private async onTrain(r: TrainResult__Output): Promise<void> {
    const seq = r.batch_seq;
    if (seq <= this.o.state.ackedSeq) return;
    const batch = this.unacked.get(seq);
    if (!batch) {
      // Only a batch this orchestrator sent can be acknowledged (a result for any other seq would skip batches).
      this.log(`ignoring a train_result for batch ${seq}: no such batch was sent`);
      this.o.metrics.get('duplicate_results_total').inc({ worker_role: 'learner' });
      return;
    }
    // The training metrics (loss, grad_norm, kl, clip_fraction, logp_mismatch, staleness) have one owner: the learner.
    if (!r.applied) this.log(`batch ${seq} not applied: ${r.skipped_reason}`);
    await this.acknowledge(seq, r.version, r);
  }

  /**
   * Acknowledgements are applied one at a time, in arrival order: each persists with compare-and-set, so two
   * at once (a learner's Hello catching up and its "duplicate" answer for the same seq) would conflict.
   */
  private acking: Promise<void> = Promise.resolve();

  private acknowledge(seq: number, version: number, r?: TrainResult__Output): Promise<void> {
    const p = this.acking.then(() => this.applyAck(seq, version, r));
    this.acking = p.catch(() => undefined);
    return p;
  }

  private async applyAck(seq: number, version: number, r?: TrainResult__Output): Promise<void> {
    if (seq <= this.o.state.ackedSeq) return;
    const batch = this.unacked.get(seq);
    const next = { ackedSeq: seq, learnerVersion: Math.max(version, this.o.state.learnerVersion) };
    // Without a TrainResult, the learner's Hello says it holds batches we never saw acknowledged (we
    // restarted in between): record them in the audit trail, inferred from its checkpoint.
    const caughtUp = r ? [] : await this.inferTrained(this.o.state.ackedSeq + 1, seq, version);
    await this.o.persist(next);
    for (const e of caughtUp) this.o.onEvent?.(e);
    this.o.state.ackedSeq = next.ackedSeq;
    this.o.state.learnerVersion = next.learnerVersion;
    for (const s of [...this.unacked.keys()]) if (s <= seq) this.unacked.delete(s);
    this.o.metrics.get('queue_depth').set({ queue: 'train' }, this.unacked.size);
    for (const [k, b] of this.open) if (b.seq <= seq) this.open.delete(k);
    if (this.nextSftSeq <= seq) this.nextSftSeq = Math.min(seq + 1, this.sftSteps + 1);
    if (seq > this.sftSteps) {
      const k = seq - this.sftSteps; // batches 0..k-1 are done
      if (this.nextK < k) this.nextK = k;
      if (this.nextSendK < k) this.nextSendK = k;
    }
    this.o.metrics.get('policy_version').set(next.learnerVersion);
    const kind = batch?.kind === 'GRPO' || seq > this.sftSteps ? 'grpo' : 'sft';
    if (r) this.o.metrics.get('train_batches_total').inc({ kind, outcome: r.applied ? 'applied' : r.skipped_reason || 'skipped' });
    if (r && batch) {
      const samples = kind === 'grpo' ? [...new Set(batch.sample_ids ?? [])] : (batch.sample_ids ?? []);
      this.o.onEvent?.({ type: 'trained', seq, kind, applied: r.applied, reason: r.skipped_reason || undefined, version: r.version, samples, compute_ms: r.compute_ms });
    }
    if (kind === 'grpo' && batch) this.grpoActions += batch.sample_ids?.length ?? 0;
    const elapsed = (Date.now() - (kind === 'grpo' ? this.grpoStart : this.sftStart)) / 1000;
    const samples = kind === 'grpo' ? this.grpoActions : (seq) * this.cfg.sft.batchSize;
    this.o.onProgress?.({
      phase: this.phase,
      seq,
      totalSeq: this.totalSeq,
      version: next.learnerVersion,
      loss: r?.loss ?? NaN,
      kl: kind === 'grpo' ? r?.kl : undefined,
      clipFraction: kind === 'grpo' ? r?.clip_fraction : undefined,
      reward: kind === 'grpo' ? this.lastReward?.reward : undefined,
      components: kind === 'grpo' ? this.lastReward?.components : undefined,
      samplesPerSecond: elapsed > 0 ? samples / elapsed : 0,
    });
    if (this.phase === 'done') {
      this.finished();
      return;
    }
    this.advance();
  }

  /** The 'trained' events of batches first..last that the learner reports holding (versions inferred). */
  private async inferTrained(first: number, last: number, lastVersion: number): Promise<RunEvent[]> {
    const events: RunEvent[] = [];
    for (let seq = first; seq <= last; seq++) {
      const grpo = seq > this.sftSteps;
      const samples = grpo ? await Promise.all(this.cursorsOf(seq - this.sftSteps - 1).map(async (c) => groupSampleId(c, (await this.load(c)).id))) : [];
      events.push({ type: 'trained', seq, kind: grpo ? 'grpo' : 'sft', applied: true, reason: 'held by the learner at reconnect', version: lastVersion - (last - seq), samples, compute_ms: 0 });
    }
    return events;
  }

  private onLearnerError(taskId: string, code: string, message: string, retryable: boolean): void {
    if (![...this.unacked.values()].some((b) => b.batch_id === taskId)) {
      this.log(`ignoring a learner error for ${JSON.stringify(taskId)}, which is not an unacknowledged batch: ${code}: ${message}`);
      return;
    }
    this.log(`learner error on ${taskId}: ${code}: ${message}`);
    if (code === 'gap' || retryable) {
      // Nothing was consumed: re-send everything unacknowledged, in order (after a pause if it failed).
      const resend = () => {
        for (const seq of [...this.unacked.keys()].sort((a, b) => a - b)) void this.learner?.send({ train_batch: this.unacked.get(seq)! }).catch(() => undefined);
      };
      if (code === 'gap') resend();
      else setTimeout(resend, 1000);
      return;
    }
    this.fail(new Error(`learner cannot train batch ${taskId}: ${code}: ${message}`));
  }
}
