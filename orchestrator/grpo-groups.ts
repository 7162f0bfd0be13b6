// The GRPO groups of open batches, from the rollout task to the TrainBatch: each group's rollout task, its
// score task once the actions are in, rewardsOf/advantagesOf (lib/grpo/algorithm.ts) once it is scored, and
// the batch (assembleGrpoBatch) once all its groups are done or dropped, handed out in batch order.
import type { RunConfig } from '../lib/config/index.ts';
import { toCHWFloat } from '../lib/data/image.ts';
import type { Components } from '../lib/grpo/reward-expression.ts';
import { advantagesOf, rewardsOf, type GrpoAlgorithm } from '../lib/grpo/algorithm.ts';
import { assembleGrpoBatch, type TrainableGroup } from '../lib/grpo/batch.ts';
import { grpoCursors, groupSampleId, identityAction } from '../lib/grpo/sampling.ts';
import type { Metrics } from '../lib/metrics/index.ts';
import type { RolloutResult__Output, ScoreResult__Output, TrainBatch, WorkerSession } from '../lib/transport/index.ts';
import { emptyGrpoTrainBatch, grpoTrainBatch, rolloutTaskMessage, scoreTaskMessage } from './messages.ts';
import type { ProgressMeter } from './progress.ts';
import type { FlowStepRecord } from '../lib/flow/family.ts';
import { decodeRolloutResult, decodeScoreResult, rolloutPolicy, type DecodedRollout } from './results.ts';
import type { RunEvent } from './run-state.ts';
import type { SampleCache } from './sample-cache.ts';
import { newTaskId, type Task, type TaskBoard } from './task-board.ts';
import { trace } from '../lib/log/trace.ts';
import { quoteForLog } from '../lib/log/quote.ts';

/** A failed read of the newest announced version (checkAnnounced) is tried again after this pause. */
const ANNOUNCED_RETRY_MS = 1000;

/** One GRPO group as it moves through rollout and scoring. */
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
  /** grpo.identityAnchor > 0: the identity member's advantage (lib/grpo/algorithm.ts advantagesOf). */
  identity?: { advantage: number; map?: Float32Array };
  /** Flow family: per action, its trained steps. */
  flowSteps?: FlowStepRecord[][];
  /** The worker whose rollout result was accepted (named when the group is dropped as unencodable). */
  rolloutWorker?: string;
  /** Why it was dropped (samples_dropped_total's reason). */
  dropReason?: string;
  state: 'rollout' | 'score' | 'done' | 'dropped';
}

/**
 * Above this fraction of a batch's groups dropped for failures (failed_group_fraction) the orchestrator logs a warning;
 * the alert RecoveryGrpoGroupsFailing uses the same bound. Half: an occasional failed task costs one group of a few,
 * while a worker that refuses every task it gets (or a fleet that cannot do them) costs most of each batch.
 */
export const FAILED_GROUP_FRACTION_WARN = 0.5;

/** A rollout task: its group, and the oldest policy version its result may come from (policy_version_min). */
type RolloutTask = Task & { group: Group; minVersion: number };

interface OpenBatch {
  k: number;
  seq: number;
  groups: Group[];
  /** Its rollout tasks' ids (first attempts; a retry keeps its task's id). */
  rolloutIds: Set<string>;
  /** The policy_version_min its rollout tasks were opened with. */
  minVersion: number;
}

export interface GroupPipelineOptions {
  config: RunConfig;
  algo: GrpoAlgorithm;
  board: TaskBoard;
  samples: SampleCache;
  metrics: Metrics;
  progress: ProgressMeter;
  /** The learner's version now: rollouts must use at least this one. */
  learnerVersion: () => number;
  /**
   * The newest version the learner can hold as far as this process knows: its acknowledged version plus one per batch
   * sent and not yet acknowledged (each applied batch makes one version). A rollout result's policy_version above it
   * is checked against the checkpoint store (`announcedVersion`) before it is accepted.
   */
  newestKnownVersion: () => number;
  /**
   * The newest version announced in the checkpoint store (backed by its object), or null: a rollout worker uses only
   * announced checkpoints, so a result claiming a newer one made it up. Absent: no store to ask, such a result is refused.
   */
  announcedVersion?: () => Promise<number | null>;
  /** Refuses a result of `session`'s for `taskId` as a bad result (logged; the task is retried elsewhere). */
  refuse: (session: WorkerSession, taskId: string, message: string) => void;
  /** Hands a finished batch to the learner link (called in batch order). */
  send: (build: () => TrainBatch) => void;
  onEvent?: (e: RunEvent) => void;
  log: (line: string) => void;
}

export class GroupPipeline {
  private readonly cfg: RunConfig;
  private readonly algo: GrpoAlgorithm;
  private readonly dense: boolean;
  private readonly open = new Map<number, OpenBatch>();
  /** The next GRPO batch to hand out. */
  private nextSendK: number;

  constructor(private readonly o: GroupPipelineOptions, firstK: number) {
    this.cfg = o.config;
    this.algo = o.algo;
    this.dense = o.algo.variant === 'dense';
    this.nextSendK = firstK;
  }

  private seqOf(k: number): number {
    return this.cfg.sft.steps + k + 1;
  }

  /**
   * Batches up to `seq` are acknowledged: forget them; GRPO batches 0..k-1 are done. One still open (a Hello's
   * catch-up acknowledges batches this process had opened again) has its tasks cancelled, as a withdrawn batch's:
   * left on the board they ran ahead of live work, and a failed one logged its sample dropped although its batch was
   * trained (review24d). A later batch already complete behind a forgotten unsent one is sent now: nothing else would
   * send it once every open batch is complete (review26a F1: the run stalled). trySend only ever sends the batch at
   * nextSendK and moves past it, and nextSendK never moves back, so no batch is sent twice.
   */
  acknowledged(seq: number): void {
    for (const [k, b] of this.open) {
      if (b.seq > seq) continue;
      this.open.delete(k);
      if (b.groups.some((g) => g.state === 'rollout' || g.state === 'score')) this.cancelTasks(b, `batch ${b.seq} acknowledged: the learner holds it`);
    }
    const k = seq - this.cfg.sft.steps;
    if (k > this.nextSendK) this.nextSendK = k;
    this.trySend();
  }

  /**
   * Opens GRPO batch `k`: its rollout tasks, with policy_version_min `minVersion` (default the learner's version
   * now; the coordinator passes the version it expects when it opens a batch before the previous one is
   * acknowledged, coordinator.ts `openEarly`).
   */
  async openBatch(k: number, minVersion?: number): Promise<void> {
    const batch: OpenBatch = { k, seq: this.seqOf(k), groups: [], rolloutIds: new Set(), minVersion: minVersion ?? this.o.learnerVersion() };
    this.open.set(k, batch);
    const tasks: Task[] = [];
    const cursors = grpoCursors(this.cfg, k);
    const loaded = [];
    for (const cursor of cursors) loaded.push(await this.o.samples.load(cursor));
    // withdrawn (or reopened) while its samples loaded: nothing to add
    if (this.open.get(k) !== batch) return;
    const min = minVersion ?? this.o.learnerVersion();
    batch.minVersion = min;
    for (const [i, cursor] of cursors.entries()) {
      const s = loaded[i]!;
      const group: Group = {
        k, cursor, sampleId: groupSampleId(cursor, s.id), image: toCHWFloat(s.corrupted), clean: toCHWFloat(s.clean),
        actions: [], logps: [], versions: [], state: 'rollout',
      };
      batch.groups.push(group);
      tasks.push(this.rolloutTask(batch, group, min));
    }
    // added together: a rollout worker that asks for several gets the batch's groups in one message
    trace('tasks_added', { k });
    this.o.board.add(...tasks);
  }

  /**
   * The rollout worker of each trained group of open batch `seq` (the sender of its accepted rollout result), by
   * sample id; empty once the batch is acknowledged (forgotten) or if it is not a GRPO batch this process opened.
   */
  rolloutWorkers(seq: number): Map<string, string> {
    const b = this.open.get(seq - this.cfg.sft.steps - 1);
    const workers = new Map<string, string>();
    if (b?.seq !== seq) return workers;
    for (const g of b.groups) if (g.state === 'done' && g.rolloutWorker !== undefined) workers.set(g.sampleId, g.rolloutWorker);
    return workers;
  }

  /** A new rollout task for `group` of open batch `b`, asking for policy version `minVersion` at least. */
  private rolloutTask(b: OpenBatch, group: Group, minVersion: number): RolloutTask {
    const id = newTaskId(`${this.cfg.run.id}-r${group.cursor}`);
    const message = rolloutTaskMessage(this.cfg, { taskId: id, sampleId: group.sampleId, image: group.image, minVersion, dense: this.dense });
    b.rolloutIds.add(id);
    return { id, role: 'ROLLOUT', attempt: 0, group, message, minVersion } as RolloutTask;
  }

  /**
   * Rolls out again, on other workers, the groups whose accepted rollout came from `worker` (quarantined:
   * orchestrator/quarantine.ts) in batches not yet handed to the learner: their score tasks are cancelled and their
   * actions forgotten, so none of its rows reaches a later step (at maxStaleness > 0 the learner's same-version check
   * does not see them). Returns how many groups.
   */
  redoRolloutsOf(worker: string): number {
    const tasks: Task[] = [];
    for (const b of this.open.values()) {
      if (b.k < this.nextSendK) continue; // handed out: the learner's check and the dual clip decide
      for (const g of b.groups) {
        if (g.rolloutWorker !== worker || (g.state !== 'score' && g.state !== 'done')) continue;
        this.o.board.cancelWhere((t) => this.groupOf(t) === g, `the rollout of ${g.sampleId} came from quarantined worker ${worker}`);
        g.actions = [];
        g.logps = [];
        g.versions = [];
        for (const field of ['rewards', 'components', 'advantages', 'logpMaps', 'advantageMaps', 'identity', 'flowSteps', 'rolloutWorker'] as const) delete g[field];
        g.state = 'rollout';
        tasks.push(this.rolloutTask(b, g, Math.max(b.minVersion, this.o.learnerVersion())));
      }
    }
    if (tasks.length) this.o.board.add(...tasks);
    return tasks.length;
  }

  /** Is `taskId` one of open batch `k`'s rollout tasks? */
  isRolloutOf(k: number, taskId: string): boolean {
    return this.open.get(k)?.rolloutIds.has(taskId) === true;
  }

  /**
   * Forgets open batch `k` as if it had never been opened, unless its TrainBatch was already handed out (false):
   * its rollout and score tasks are cancelled at their holders, and a result for them is ignored from now on
   * (the board no longer knows them). Reopening it makes the same tasks: a batch is a function of its number.
   */
  withdraw(k: number, reason: string): boolean {
    const b = this.open.get(k);
    if (!b) return true;
    if (this.nextSendK > k) return false;
    this.open.delete(k);
    this.cancelTasks(b, reason);
    return true;
  }

  /** Cancels open batch `b`'s rollout and score tasks, queued or at their holders. */
  private cancelTasks(b: OpenBatch, reason: string): void {
    this.o.board.cancelWhere((t) => {
      const g = this.groupOf(t);
      return g !== undefined && b.groups.includes(g);
    }, reason);
  }

  dropTask(task: Task, reason: string): void {
    this.o.log(`giving up task ${task.id} after ${task.attempt} attempts: ${reason}`);
    const group = this.groupOf(task);
    if (group) this.dropGroup(group, 'task_failed');
  }

  private dropGroup(group: Group, reason: string): void {
    group.state = 'dropped';
    group.dropReason = reason;
    this.o.onEvent?.({ type: 'dropped', sample: group.sampleId, reason });
    this.o.metrics.get('samples_dropped_total').inc({ reason });
    this.trySend();
  }

  private groupOf(task: Task | undefined): Group | undefined {
    return (task as (Task & { group?: Group }) | undefined)?.group;
  }

  onRollout(s: WorkerSession, r: RolloutResult__Output): void {
    const G = this.cfg.grpo.groupSize;
    const held = this.o.board.heldBy(s, r.task_id) as RolloutTask | undefined;
    // A result for a task the sender does not hold (a late one after its lease ran out, a duplicate, another worker's
    // task) is counted (foreign or duplicate) and dropped undecoded: decoding it cost CPU, and a malformed one was
    // logged, before the holder check refused it (review26a). (A flow result's trained steps must anyway be its
    // sample's plan, which only the task names.)
    if (!held) {
      this.o.board.complete(s, r.task_id);
      return;
    }
    const policy = rolloutPolicy(this.cfg, held.group.sampleId);
    const d = decodeRolloutResult(r, G, this.cfg.data.size, this.dense, policy); // throws before the task is accepted
    // The staleness bound (lib/grpo/staleness.ts) holds only if no result comes from a policy older than its task
    // asked for: a worker that says it used one is refused like any bad result (the task is retried elsewhere).
    if (d.version < held.minVersion) {
      throw new Error(`rollout_result ${quoteForLog(r.task_id)}: policy_version ${d.version} is below the task's policy_version_min ${held.minVersion}`);
    }
    // Nor from a policy the learner has not published: a made-up future version would pass the staleness bound and
    // reach the learner as a negative staleness and an on-policy row (learner/batch.ts logpMismatch). Above what this
    // process knows (a restarted orchestrator knows less than the learner holds), the checkpoint store decides; the
    // task stays held meanwhile (a lease that runs out in between re-dispatches it, and this result is then ignored).
    if (d.version > this.o.newestKnownVersion()) {
      this.checkAnnounced(s, r, d);
      return;
    }
    this.accept(s, r, d);
  }

  /**
   * Accepts `d` if the store announced its version by now and `s` still holds the task; refuses it otherwise. A read
   * of the store that fails is tried again (ANNOUNCED_RETRY_MS apart) while `s` holds the task.
   */
  private checkAnnounced(s: WorkerSession, r: RolloutResult__Output, d: DecodedRollout): void {
    const known = this.o.newestKnownVersion();
    const ask = this.o.announcedVersion?.() ?? Promise.resolve(null);
    void ask.then(
      (announced) => {
        if (!this.o.board.heldBy(s, r.task_id)) {
          this.o.board.complete(s, r.task_id); // no longer its task (its lease ran out meanwhile): counted, as any late result
          return;
        }
        if (announced !== null && d.version <= announced) return this.accept(s, r, d);
        this.o.refuse(s, r.task_id, `rollout_result ${quoteForLog(r.task_id)}: policy_version ${d.version} is newer than the learner's newest version ${Math.max(known, announced ?? 0)} (acknowledged or announced): no such policy was published`);
      },
      (e: Error) => {
        // a failed read says nothing about the result: refused, it counted an attempt toward maxAttempts against a
        // legitimate result (review24e). Read again while the task is still held; a lease that runs out meanwhile
        // re-dispatches it, and this result is then late and ignored (exactly-once kept)
        if (!this.o.board.heldBy(s, r.task_id)) return;
        this.o.log(`rollout_result ${quoteForLog(r.task_id)}: policy_version ${d.version} is newer than the learner's newest known version ${known}, and the checkpoint store could not be read to check it (${e.message}): reading it again in ${ANNOUNCED_RETRY_MS} ms`);
        setTimeout(() => {
          if (this.o.board.heldBy(s, r.task_id)) this.checkAnnounced(s, r, d);
        }, ANNOUNCED_RETRY_MS).unref();
      },
    );
  }

  private accept(s: WorkerSession, r: RolloutResult__Output, d: DecodedRollout): void {
    const G = this.cfg.grpo.groupSize;
    const group = this.groupOf(this.o.board.complete(s, r.task_id));
    if (!group || group.state !== 'rollout') return;
    group.actions = d.actions;
    group.logpMaps = d.logpMaps;
    group.logps = d.logps;
    if (d.flowSteps) group.flowSteps = d.flowSteps;
    group.versions = d.actions.map(() => d.version);
    group.rolloutWorker = s.workerId;
    group.state = 'score';
    this.o.metrics.get('rollouts_total').inc(G);
    this.o.onEvent?.({ type: 'rollout', sample: group.sampleId, worker: s.workerId, version: r.policy_version, attempt: r.attempt, compute_ms: r.compute_ms });
    const id = newTaskId(`${this.cfg.run.id}-s${group.cursor}`);
    // grpo.identityAnchor > 0: the identity member is scored in the same task, after the G actions
    const candidates = this.algo.identityAnchor > 0 ? [...group.actions, identityAction(this.cfg, group.sampleId, group.image)] : group.actions;
    const message = scoreTaskMessage(this.cfg, { taskId: id, actions: candidates, clean: group.clean, dense: this.dense });
    this.o.board.add({ id, role: 'REWARD', attempt: 0, group, message } as Task & { group: Group });
  }

  onScore(s: WorkerSession, r: ScoreResult__Output): void {
    const G = this.cfg.grpo.groupSize;
    // from a worker that does not hold the task: counted and dropped undecoded (as onRollout)
    if (!this.o.board.heldBy(s, r.task_id)) {
      this.o.board.complete(s, r.task_id);
      return;
    }
    const withIdentity = this.algo.identityAnchor > 0;
    const scored = decodeScoreResult(r, withIdentity ? G + 1 : G, this.cfg.data.size, this.dense);
    const components = scored.components.slice(0, G);
    const ssimMaps = scored.ssimMaps?.slice(0, G);
    // The reward too is computed before the task is accepted: a non-finite reward refuses the result.
    let rewards: number[];
    let identity: { components: Components; reward: number; ssimMap?: Float32Array } | undefined;
    try {
      rewards = rewardsOf(this.algo, scored.components);
      if (withIdentity) identity = { components: scored.components[G]!, reward: rewards[G]!, ...(scored.ssimMaps ? { ssimMap: scored.ssimMaps[G]! } : {}) };
      rewards = rewards.slice(0, G);
    } catch (e) {
      throw new Error(`score_result.${(e as Error).message}`);
    }
    // Advantages are pure: computed before the task is accepted, so maps inconsistent with their means
    // refuse the result (and the task is retried) instead of failing after the holder gave it up.
    let outcome: ReturnType<typeof advantagesOf>;
    try {
      outcome = advantagesOf(this.algo, { components, rewards, ...(ssimMaps ? { ssimMaps } : {}), ...(identity ? { identity } : {}) });
    } catch (e) {
      throw new Error(`score_result: ${(e as Error).message}`);
    }
    const group = this.groupOf(this.o.board.complete(s, r.task_id));
    if (!group || group.state !== 'score') return;
    this.o.metrics.get('scores_total').inc(G);
    group.components = components;
    group.rewards = rewards;
    this.o.onEvent?.({ type: 'scored', sample: group.sampleId, worker: s.workerId, reward: rewards.reduce((a, b) => a + b, 0) / G, compute_ms: r.compute_ms });
    for (let i = 0; i < G; i++) {
      this.o.metrics.get('reward').observe(rewards[i]);
      for (const [name, v] of Object.entries(components[i])) this.o.metrics.get('reward_component').observe({ component: name }, v);
    }
    if (!outcome.kept) {
      this.dropGroup(group, outcome.reason);
      return;
    }
    group.advantages = outcome.advantages;
    group.advantageMaps = outcome.advantageMaps;
    if (outcome.identity) group.identity = outcome.identity;
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
      this.o.send(() => this.buildGrpo(b));
    }
  }

  private buildGrpo(b: OpenBatch) {
    let kept = b.groups.filter((g) => g.state === 'done') as Array<Group & TrainableGroup>;
    try {
      return this.buildKept(b, kept);
    } finally {
      this.reportFailedGroups(b);
    }
  }

  /**
   * Sets failed_group_fraction for batch `b` (its groups dropped for a failure: a task given up, a group that could
   * not be encoded; zero-variance groups are the data's, not counted) and logs a warning above
   * FAILED_GROUP_FRACTION_WARN (alert RecoveryGrpoGroupsFailing, k8s/monitoring/prometheusrule.yaml).
   */
  private reportFailedGroups(b: OpenBatch): void {
    const failed = b.groups.filter((g) => g.state === 'dropped' && g.dropReason !== 'zero_variance');
    const fraction = failed.length / Math.max(1, b.groups.length);
    this.o.metrics.get('failed_group_fraction').set(fraction);
    if (fraction > FAILED_GROUP_FRACTION_WARN) {
      const why = [...new Set(failed.map((g) => g.dropReason ?? '?'))].join(', ');
      this.o.log(`warning: GRPO batch ${b.seq}: ${failed.length} of ${b.groups.length} groups dropped for failures (${why}), over ${FAILED_GROUP_FRACTION_WARN}: look at task_errors_total and the workers' logs (docs/reliability.md, "Dropped samples")`);
    }
  }

  private buildKept(b: OpenBatch, kept: Array<Group & TrainableGroup>): TrainBatch {
    for (;;) {
      if (kept.length === 0) {
        // no tensors of zero rows: the learner records the seq without training (its samples are counted as dropped)
        this.o.log(`GRPO batch ${b.seq}: every group was dropped; sent empty (the learner records its seq, trains nothing)`);
        this.o.progress.rewards(b.groups, [], new Float32Array(0));
        return emptyGrpoTrainBatch(this.cfg, b.seq);
      }
      const batch = assembleGrpoBatch(kept, this.cfg.data.size, this.dense);
      let message: TrainBatch;
      try {
        const workers = new Map(kept.map((g) => [g.sampleId, g.rolloutWorker]));
        message = grpoTrainBatch(this.cfg, b.seq, batch, (id) => workers.get(id));
      } catch (e) {
        kept = this.encodable(b, kept, e as Error); // fewer groups each time, or it throws
        continue;
      }
      this.o.progress.rewards(b.groups, kept, batch.advantages);
      return message;
    }
  }

  /**
   * `kept` less the groups whose TrainBatch cannot be encoded (splitEncodable): each is dropped
   * (samples_dropped_total{reason="unencodable"}, its rollout worker named in the log), never the run.
   */
  private encodable(b: OpenBatch, kept: Array<Group & TrainableGroup>, whole: Error): Array<Group & TrainableGroup> {
    const { encodable, unencodable } = splitEncodable(this.cfg, b.seq, this.dense, kept);
    if (unencodable.length === 0) throw whole; // every group encodes alone: a fault of the batch, no group's
    for (const { group: g, error } of unencodable) {
      this.o.log(`GRPO batch ${b.seq}: dropping group ${g.sampleId} (rollout from worker ${quoteForLog(g.rolloutWorker ?? '?')}): it cannot be encoded: ${error}`);
      g.state = 'dropped';
      g.dropReason = 'unencodable';
      this.o.onEvent?.({ type: 'dropped', sample: g.sampleId, reason: 'unencodable' });
      this.o.metrics.get('samples_dropped_total').inc({ reason: 'unencodable' });
    }
    return encodable;
  }

}

/**
 * The groups of GRPO batch `seq` whose TrainBatch can be encoded, each alone, and the others with the encoder's error
 * (naming the field, e.g. train_batch.logp_old): a value the result checks let through that is not finite as float32
 * must cost its group, not the run (review25c: one worker's logp 1e300 failed the run, and again at every restart).
 * Called only when the whole batch failed to encode, so a sound batch costs one encoding, as before.
 */
export function splitEncodable<T extends TrainableGroup>(config: RunConfig, seq: number, dense: boolean, groups: T[]): { encodable: T[]; unencodable: { group: T; error: string }[] } {
  const encodable: T[] = [];
  const unencodable: { group: T; error: string }[] = [];
  for (const group of groups) {
    try {
      grpoTrainBatch(config, seq, assembleGrpoBatch([group], config.data.size, dense));
      encodable.push(group);
    } catch (e) {
      unencodable.push({ group, error: (e as Error).message });
    }
  }
  return { encodable, unencodable };
}
