// The rollout worker: samples G actions per corrupted image with the policy graph.
//
// - Items of the tasks it holds go to the policy in calls of at most max_batch (a task larger than max_batch
//   spans several calls; on CPU at maxStaleness 0 a call carries one task, otherwise as many as fit). noise per item =
//   standardNormal(3*H*W, noise_seed): the same seed gives the same action, so a re-run task reproduces its result.
// - One RolloutResult is produced by one policy version, stamped in policy_version: the worker swaps weights
//   only between policy calls and never while a task is half done.
// - It follows the learner's checkpoint announcements and swaps to the newest verified version; a task whose
//   policy_version_min is above the held version waits for (and fetches) a newer checkpoint, and fails with
//   TaskError 'policy_unavailable' (retryable) if none arrives within versionWaitMs.
// - want_logp_map (dense advantages): each action also carries its per-element log-density [3,H,W].
// - A task it cannot do is a TaskError (bad_input, internal, ...), never a made-up result.
import type { SeedPart } from '../lib/data/random.ts';
import type { TensorMap } from '../lib/checkpoint/tensors.ts';
import { fillStandardNormal } from '../lib/data/random.ts';
import { deviceLabel, type Device } from '../lib/graph/device.ts';
import { paramShapesOf, policySpecOf, resolutionOf } from '../lib/models/bundle.ts';
import { PolicyRunner } from '../lib/models/runner.ts';
import { FlowRunner, isFlowFamily, type FlowStepRecord } from '../lib/flow/family.ts';
import { baseDigestOf } from '../lib/models/policy.ts';
import {
  CheckpointStore,
  encodeTensor,
  resolveRolloutItems,
  type OrchestratorMessage__Output,
  type ResolvedRolloutItem,
  type RolloutTask__Output,
} from '../lib/transport/index.ts';
import {
  resolveWorkerOptions,
  RetryableWorkerError,
  startWorker,
  type RoleContext,
  type WorkerHandle,
  type WorkerOptions,
  type WorkerRoleImpl,
} from '../lib/worker/index.ts';
import { PolicyFollower } from './policy-follower.ts';
import { SetupError } from '../lib/config/setup-error.ts';
import { trace } from '../lib/log/trace.ts';

const IDLE_SWAP_EVERY_MS = 1000;
/** A worker that had a rollout task this recently is in the GRPO phase (see loop's idle branch). */
const RECENT_TASK_MS = 5000;

export interface RolloutWorkerOptions extends WorkerOptions {
  /** How long a task may wait for the policy version it needs (or for any policy). Default 30 s. */
  versionWaitMs?: number;
}

export interface RolloutWorkerHandle extends WorkerHandle {
  /** Version of the weights held now (undefined before the first checkpoint). */
  policyVersion(): number | undefined;
}

export const ROLLOUT_DEFAULT_MAX_BATCH = 32;
export const ROLLOUT_DEFAULT_MAX_IN_FLIGHT = 4;
const REFRESH_EVERY_MS = 200;

interface Pending {
  task: RolloutTask__Output;
  items: ResolvedRolloutItem[];
  seeds: SeedPart[];
  /** Lowest policy version allowed. */
  min: number;
  /** Items handed to policy calls so far / finished. */
  next: number;
  done: number;
  actions: Float32Array[];
  logps: number[];
  /** Per-element log-densities, when the task asked for them (dense advantages). */
  logpMaps: Float32Array[] | undefined;
  /** Flow family: each item's trained steps. */
  flowSteps: FlowStepRecord[][] | undefined;
  version: number | undefined;
  received: number;
  computeMs: number;
  cancelled: boolean;
}

/** uint64 decimal string -> a seed for standardNormal: Number when exact (the orchestrator sends uint32), else BigInt. */
export function noiseSeed(s: string, field: string): SeedPart {
  if (!/^(0|[1-9][0-9]{0,19})$/.test(s)) throw new Error(`${field}: must be a uint64 decimal string, got ${JSON.stringify(s)}`);
  const n = Number(s);
  if (Number.isSafeInteger(n)) return n;
  const b = BigInt(s);
  if (b >= 1n << 64n) throw new Error(`${field}: ${s} does not fit uint64`);
  return b;
}

class RolloutRole implements WorkerRoleImpl {
  readonly name = 'rollout' as const;
  readonly taskKind = 'rollout_task' as const;
  private ctx!: RoleContext;
  private runner: PolicyRunner | undefined;
  private flowRunner: FlowRunner | undefined;
  follower: PolicyFollower | undefined;
  private queue: Pending[] = [];
  private closed = false;
  private wake: (() => void) | undefined;
  private loopDone: Promise<void> | undefined;
  private drained: Array<() => void> = [];
  private readonly sending = new Set<Promise<void>>();
  private lastRefresh = 0;
  private height = 0;
  private width = 0;
  /** The policy calls' images and noise (runBatch), grown to the largest call so far. */
  private callImages = new Float32Array(0);
  private callNoise = new Float32Array(0);

  constructor(
    private readonly device: Device,
    private readonly maxBatch: number,
    private readonly maxInFlight: number,
    private readonly versionWaitMs: number,
  ) {}

  capabilities() {
    // One task per message: tasks arriving one by one let its first policy call carry one group, whose score task
    // then overlaps with the rest of the batch's rollouts (a bundle of the whole batch made one call of 32 and
    // left the reward worker idle meanwhile; pipeline runs on 2 cores were slower, docs/performance-history/pipeline.md).
    return { device: deviceLabel(this.device), max_batch: this.maxBatch, max_in_flight: this.maxInFlight, max_tasks_per_message: 1, labels: {} };
  }

  hello() {
    const v = this.follower?.current?.version;
    return v !== undefined ? { policy_version: v } : {};
  }

  policyVersion(): number | undefined {
    return this.follower?.current?.version;
  }

  /** After a reconnect the learner may have moved on: look at the store now rather than at the next announcement. */
  reconnected(): void {
    void this.follower?.refresh().then(() => this.kick());
  }

  isReady(): boolean {
    return this.follower?.current !== undefined;
  }

  healthDetail() {
    return { queued_tasks: this.queue.length, announced_version: this.follower?.announcedVersion ?? null };
  }

  async init(ctx: RoleContext): Promise<void> {
    this.ctx = ctx;
    ({ height: this.height, width: this.width } = resolutionOf(ctx.config));
    if (isFlowFamily(ctx.config)) this.flowRunner ??= await FlowRunner.create(ctx.config, this.device);
    else this.runner ??= await PolicyRunner.create(ctx.config, this.device);
    try {
      const store = await CheckpointStore.open(ctx.nc, {
        runId: ctx.runId,
        readOnly: true,
        onGet: ({ bytes, seconds }) => {
          ctx.metrics.get('checkpoint_fetch_bytes_total').inc(bytes);
          ctx.metrics.get('checkpoint_fetch_seconds').observe(seconds);
        },
      });
      this.follower = new PolicyFollower(ctx, store, paramShapesOf(ctx.config), () => this.kick(), baseDigestOf(policySpecOf(ctx.config)));
      await this.follower.start();
    } catch (e) {
      await this.follower?.stop();
      this.follower = undefined;
      throw new RetryableWorkerError(`cannot follow the checkpoints of run ${ctx.runId}: ${(e as Error).message}`, { cause: e });
    }
    await this.follower.swapToNewest();
    // its own model.network files differ from the run's: a restart reads the same files (a SetupError, exit 78)
    if (this.follower.baseMismatch) throw new SetupError(this.follower.baseMismatch);
    this.loopDone = this.loop();
  }

  handle(msg: OrchestratorMessage__Output): void {
    const task = msg.rollout_task!;
    let items: ResolvedRolloutItem[];
    let seeds: SeedPart[];
    try {
      if (task.items.length === 0) throw new Error('rollout_task.items: is empty');
      items = resolveRolloutItems(task);
      items.forEach((it, i) => {
        const [, h, w] = it.image.shape;
        if (h !== this.height || w !== this.width) {
          throw new Error(`rollout_task.items[${i}].image: is ${h}x${w}, this run's policy takes ${this.height}x${this.width} (data.size)`);
        }
      });
      seeds = task.items.map((it, i) => noiseSeed(it.noise_seed, `rollout_task.items[${i}].noise_seed`));
    } catch (e) {
      void this.ctx.taskError(task.task_id, task.attempt, 'bad_input', (e as Error).message, false);
      return;
    }
    this.queue.push({
      task, items, seeds,
      min: task.policy_version_min ?? 0,
      next: 0, done: 0,
      actions: new Array(items.length), logps: new Array(items.length), logpMaps: task.want_logp_map && !this.flowRunner ? new Array(items.length) : undefined,
      flowSteps: this.flowRunner ? new Array(items.length) : undefined,
      version: undefined, received: Date.now(), computeMs: 0, cancelled: false,
    });
    this.lastTaskAt = Date.now();
    this.kick();
  }

  cancel(taskId: string): void {
    for (const t of this.queue) if (t.task.task_id === taskId) t.cancelled = true;
    this.queue = this.queue.filter((t) => !t.cancelled);
    this.settle();
  }

  activeTaskIds(): string[] {
    return this.queue.map((t) => t.task.task_id);
  }

  disconnected(): void {
    for (const t of this.queue) t.cancelled = true;
    this.queue = [];
    this.settle();
  }

  /** Resolves once every held task is answered (or cancelled). */
  async drain(): Promise<void> {
    if (this.queue.length > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
    await Promise.all(this.sending);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.kick();
    await this.loopDone;
    await this.follower?.stop();
    await this.runner?.release();
    await this.flowRunner?.release();
  }

  private settle(): void {
    if (this.queue.length === 0) for (const r of this.drained.splice(0)) r();
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private sleep(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const t = ms !== undefined ? setTimeout(() => this.kick(), ms) : undefined;
      this.wake = () => {
        if (t) clearTimeout(t);
        resolve();
      };
    });
  }

  private fail(t: Pending, code: string, message: string, retryable: boolean): void {
    t.cancelled = true;
    this.queue = this.queue.filter((x) => x !== t);
    void this.ctx.taskError(t.task.task_id, t.task.attempt, code, message, retryable);
    this.settle();
  }

  private lastIdleSwap = 0;
  /** A result was handed to the connection since the last policy call (loop yields before the next one). */
  private sentSinceCall = false;
  private lastTaskAt = 0;

  private async loop(): Promise<void> {
    const follower = this.follower!;
    while (!this.closed) {
      if (this.queue.length === 0) {
        // Idle: keep up with the learner so the next task starts on fresh weights, but at most once a
        // second: during the warm start the learner publishes a version per step and nobody rolls out. At
        // maxStaleness 0 during GRPO (a task came recently), every next task needs the newest version: swap to it
        // as soon as it is announced, while the orchestrator is still acknowledging it and dispatching the next
        // batch, instead of after that batch's tasks arrive (the same fetch, off the critical path).
        const eager = this.ctx.config.grpo.maxStaleness === 0 && Date.now() - this.lastTaskAt < RECENT_TASK_MS;
        if (follower.hasCandidate() && (eager || Date.now() - this.lastIdleSwap >= IDLE_SWAP_EVERY_MS)) {
          this.lastIdleSwap = Date.now();
          await follower.swapToNewest();
        } else await this.sleep(follower.hasCandidate() ? IDLE_SWAP_EVERY_MS : 1000);
        continue;
      }
      const partial = this.queue.some((t) => t.next > 0);
      let held = follower.current?.version;
      // Swap before a batch only when a queued task needs a newer version than the one held: a held version its
      // policy_version_min admits is used as it is (fetching and verifying a checkpoint per batch was most of
      // the rollout worker's overhead at staleness 1); idle time catches up with the learner.
      const needsNewer = this.queue.some((t) => t.next === 0 && (held === undefined || t.min > held));
      if (!partial && needsNewer && follower.hasCandidate()) {
        await follower.swapToNewest();
        held = follower.current?.version;
      }
      const waiting = this.queue.filter((t) => t.next === 0 && (held === undefined || t.min > held));
      if (waiting.length > 0 && !partial && Date.now() - this.lastRefresh >= REFRESH_EVERY_MS) {
        this.lastRefresh = Date.now();
        await follower.refresh();
        if (follower.hasCandidate()) await follower.swapToNewest();
        held = follower.current?.version;
      }
      for (const t of waiting) {
        if ((held === undefined || t.min > held) && Date.now() - t.received > this.versionWaitMs) {
          const refusal = follower.refusal();
          this.fail(t, 'policy_unavailable',
            `needs policy version >= ${t.min}; this worker holds ${held ?? 'none'} after waiting ${this.versionWaitMs} ms ` +
            `(newest announced: ${follower.announcedVersion ?? 'none'}${refusal ? `, refused: ${refusal}` : ''})`, true);
        }
      }
      const runnable = this.queue.filter((t) => t.next > 0 || (held !== undefined && t.min <= held));
      if (runnable.length === 0) {
        await this.sleep(REFRESH_EVERY_MS);
        continue;
      }
      // The results of the last call go out before the next call holds this process's event loop (onnxruntime-node
      // runs a session synchronously): two turns of the loop, one for the connection's flush (queued by the send)
      // and one for HTTP/2's write to the socket, which the 16 MiB windows (lib/transport/flow-window.ts) let take
      // the whole result. Without them a result reached the orchestrator (and its score task the reward worker, the
      // slower stage) one to three policy calls late (docs/performance-history/pipeline.md, "Round 9: pipe9"). Waiting for the
      // write's callback instead cost 6 ms more per call on a loaded machine.
      if (this.sentSinceCall) {
        this.sentSinceCall = false;
        await new Promise<void>((resolve) => setImmediate(resolve));
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      await this.runBatch(runnable);
    }
  }

  private async runBatch(runnable: Pending[]): Promise<void> {
    // the held policy's parameters stay valid until done(), even if a swap happens meanwhile (policy-follower.ts)
    const use = this.follower!.use();
    const policy = use.policy;
    const ordered = [...runnable.filter((t) => t.next > 0), ...runnable.filter((t) => t.next === 0)];
    const slots: Array<{ t: Pending; i: number }> = [];
    // On CPU at maxStaleness 0 a call carries one task (one GRPO group): its result goes out, and is scored, while
    // the next group's call runs. Packing the batch's queued groups into one call left the reward worker idle until
    // all of them were done (docs/performance-history/pipeline.md, "Round 8: pipe8"). At maxStaleness >= 1 the rollouts overlap the
    // learner's step and the cores are the limit, so the queued groups share a call (fewer calls, less CPU per
    // action: "Round 9: pipe9"); a GPU always packs them. The policy computes each row on its own either way.
    const onePerCall = this.device === 'cpu' && this.ctx.config.grpo.maxStaleness === 0;
    for (const t of ordered) {
      if (slots.length > 0 && onePerCall) break;
      if (t.next === 0) t.version = policy.version;
      while (t.next < t.items.length && slots.length < this.maxBatch) slots.push({ t, i: t.next++ });
      if (slots.length >= this.maxBatch) break;
    }
    const n = slots.length;
    const per = 3 * this.height * this.width;
    // The call's images and noise: every value below n * per is written here before the call, and the graph reads
    // them only during it (its outputs are arrays of its own), so the arrays serve call after call instead of two
    // fresh zeroed ones per call. The flow family's sampler takes each item's image and seeds itself.
    let images = this.callImages;
    let noise = this.callNoise;
    if (this.runner) {
      if (images.length < n * per) {
        this.callImages = images = new Float32Array(n * per);
        this.callNoise = noise = new Float32Array(n * per);
      }
      images = images.subarray(0, n * per);
      noise = noise.subarray(0, n * per);
      slots.forEach(({ t, i }, k) => {
        images.set(t.items[i]!.image.data, k * per);
        fillStandardNormal(noise.subarray(k * per, (k + 1) * per), t.seeds[i]!); // in place: standardNormal(per, seed)'s values
      });
    }
    const t0 = performance.now();
    trace('policy_start', { n, version: policy.version });
    let out: { action: Float32Array; logp: Float32Array; logpMap?: Float32Array; flowSteps?: FlowStepRecord[][] };
    try {
      out = this.flowRunner
        ? await this.flowSlots(policy.params, slots)
        : await this.runner!.sample(policy.params, images, noise, n, slots.some(({ t }) => t.logpMaps !== undefined));
    } catch (e) {
      use.done();
      for (const t of new Set(slots.map((s) => s.t))) {
        if (!t.cancelled) this.fail(t, 'internal', `policy forward failed: ${(e as Error).message}`, true);
      }
      return;
    }
    use.done();
    const ms = performance.now() - t0;
    trace('policy_end', { n });
    for (const t of new Set(slots.map((s) => s.t))) t.computeMs += ms;
    slots.forEach(({ t, i }, k) => {
      // views of this call's outputs, which nothing writes again: finish() puts them on the wire without a copy
      t.actions[i] = out.action.subarray(k * per, (k + 1) * per);
      t.logps[i] = out.logp[k]!;
      if (t.logpMaps) t.logpMaps[i] = out.logpMap!.subarray(k * per, (k + 1) * per);
      if (t.flowSteps) t.flowSteps[i] = (out.flowSteps ?? [])[k]!;
      t.done++;
    });
    for (const t of new Set(slots.map((s) => s.t))) {
      if (t.done < t.items.length || t.cancelled) continue;
      this.queue = this.queue.filter((x) => x !== t);
      const p = this.finish(t).finally(() => this.sending.delete(p));
      this.sending.add(p);
      this.sentSinceCall = true;
    }
    this.settle();
  }

  /**
   * The flow family: the T-step sampler over the slots, one call per run of slots of one sample id (its SDE
   * window is drawn from the sample id); the final image is the action, logp is unused (0).
   */
  private async flowSlots(params: TensorMap, slots: Array<{ t: Pending; i: number }>) {
    const per = 3 * this.height * this.width;
    const action = new Float32Array(slots.length * per);
    const flowSteps: FlowStepRecord[][] = [];
    for (let k = 0; k < slots.length;) {
      const first = slots[k]!;
      const id = first.t.items[first.i]!.sample_id;
      let end = k + 1;
      while (end < slots.length && slots[end]!.t === first.t && slots[end]!.t.items[slots[end]!.i]!.sample_id === id) end++;
      const run = slots.slice(k, end);
      const roll = await this.flowRunner!.rollout(params, id, first.t.items[first.i]!.image.data, run.map(({ t, i }) => t.seeds[i]!), first.t.task.want_logp_map);
      action.set(roll.images, k * per);
      flowSteps.push(...roll.steps);
      k = end;
    }
    return { action, logp: new Float32Array(slots.length), logpMap: undefined, flowSteps };
  }

  private encodeFlowStep(s: FlowStepRecord, field: string) {
    const img = (data: Float32Array, name: string) => encodeTensor({ dtype: 'float32', shape: [3, this.height, this.width], data }, { field: `${field}.${name}` });
    if (!Number.isFinite(s.logp)) throw new Error(`${field}.logp is ${s.logp}`);
    return {
      index: s.index, t: s.t, t_next: s.tNext, a: s.a, x_before: img(s.xBefore, 'x_before'), x_after: img(s.xAfter, 'x_after'), logp: s.logp,
      ...(s.logpMap ? { logp_map: img(s.logpMap, 'logp_map') } : {}),
    };
  }

  private async finish(t: Pending): Promise<void> {
    const bad = t.logps.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      void this.ctx.taskError(t.task.task_id, t.task.attempt, 'non_finite', `item ${bad} (sample ${t.items[bad]!.sample_id}): logp is ${t.logps[bad]}`, false);
      return;
    }
    let items;
    try {
      items = t.items.map((it, i) => ({
        sample_id: it.sample_id,
        group_index: it.group_index,
        action: encodeTensor({ dtype: 'float32', shape: [3, this.height, this.width], data: t.actions[i]! }, { field: `rollout_result.items[${i}].action`, share: true }),
        logp: t.logps[i]!,
        ...(t.logpMaps
          ? { logp_map: encodeTensor({ dtype: 'float32', shape: [3, this.height, this.width], data: t.logpMaps[i]! }, { field: `rollout_result.items[${i}].logp_map`, share: true }) }
          : {}),
        ...(t.flowSteps ? { flow_steps: t.flowSteps[i]!.map((s, k) => this.encodeFlowStep(s, `rollout_result.items[${i}].flow_steps[${k}]`)) } : {}),
      }));
    } catch (e) {
      void this.ctx.taskError(t.task.task_id, t.task.attempt, 'non_finite', (e as Error).message, false);
      return;
    }
    const sent = await this.ctx.send({
      rollout_result: { task_id: t.task.task_id, attempt: t.task.attempt, policy_version: t.version!, items, compute_ms: t.computeMs },
    });
    trace('result_sent', { n: items.length });
    if (sent) this.ctx.metrics.get('rollouts_total').inc(items.length);
  }
}

/** Starts a rollout worker (see the module comment); resolves once it is dialling the orchestrator. */
export async function runRolloutWorker(options: RolloutWorkerOptions = {}): Promise<RolloutWorkerHandle> {
  const { versionWaitMs = 30_000, ...rest } = options;
  // NaN would never time out: a task waiting for a version that never comes would be held for ever
  if (!Number.isInteger(versionWaitMs) || versionWaitMs < 0) throw new SetupError(`rollout worker options.versionWaitMs: must be an integer >= 0 (got ${versionWaitMs})`);
  const o = resolveWorkerOptions('rollout', rest);
  const role = new RolloutRole(o.device ?? 'cpu', o.maxBatch ?? ROLLOUT_DEFAULT_MAX_BATCH, o.maxInFlight ?? ROLLOUT_DEFAULT_MAX_IN_FLIGHT, versionWaitMs);
  const handle = await startWorker(role, o);
  return { ...handle, policyVersion: () => role.policyVersion() };
}
