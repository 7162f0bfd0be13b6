// The reward worker: scores candidate images against clean references with the reward graph (SSIM and the
// image-embedding cosine, `clip_cos`) and returns the raw components per candidate; the orchestrator applies
// the reward expression. The encoder is the run config's reward.encoder (the built-in random-feature stand-in,
// the pretrained MobileNetV2 from nsfwjs, or reward.clipModel's ONNX CLIP vision tower); every ScoreResult
// names it in clip_encoder.
//
// The worker decodes each task and hands the candidates to RewardScorer, which slices them into graph runs
// and checks them (lib/models/scorer.ts: the one place that does). A candidate that cannot be scored is a
// TaskError for the whole task, never a reward of 0:
//   bad_input   tensors missing, malformed, wrongly shaped (decoding), smaller than the 11x11 SSIM window (scorer)
//   non_finite  a candidate/reference holds NaN/Inf, or a score came out non-finite (scorer; the message names the candidate)
//   internal    the runtime failed (retryable: another worker may succeed)
import { ssimMapSize } from '../lib/models/ssim.ts';
import { SerialQueue } from '../lib/worker/serial-queue.ts';
import { trace } from '../lib/log/trace.ts';
import { deviceLabel, type Device } from '../lib/graph/device.ts';
import { RewardScorer, ScoreError } from '../lib/models/scorer.ts';
import { resolutionOf } from '../lib/models/bundle.ts';
import { decodeScoreTask, encodeTensor, type OrchestratorMessage__Output, type ScoreTask__Output } from '../lib/transport/index.ts';
import {
  resolveWorkerOptions,
  startWorker,
  type RoleContext,
  type WorkerHandle,
  type WorkerOptions,
  type WorkerRoleImpl,
} from '../lib/worker/index.ts';

export type RewardWorkerOptions = WorkerOptions;

export interface RewardWorkerHandle extends WorkerHandle {
  /** Name of the image encoder (known once the worker joined a run). */
  encoderName(): string | undefined;
}

export const REWARD_DEFAULT_MAX_BATCH = 64;
// 4: a default GRPO batch's groups (grpo.samplesPerBatch 4) in one message and one graph call of 32 candidates.
export const REWARD_DEFAULT_MAX_IN_FLIGHT = 4;

class TaskFailure extends Error {
  constructor(readonly code: string, message: string, readonly retryable: boolean) {
    super(message);
  }
}

class RewardRole implements WorkerRoleImpl {
  readonly name = 'reward' as const;
  readonly taskKind = 'score_task' as const;
  private ctx!: RoleContext;
  private scorer: RewardScorer | undefined;
  private encoder: string | undefined;
  private work: SerialQueue<ScoreTask__Output> | undefined;
  private readonly cancelled = new Set<string>();
  /** run()'s joined candidates and references, grown to the largest call so far. */
  private readonly join = { candidates: new Float32Array(0), references: new Float32Array(0) };

  constructor(
    /** Its --device (default cpu): where this machine runs the reward graph, whatever the run. */
    private readonly device: Device,
    private readonly maxBatch: number,
    private readonly maxInFlight: number,
  ) {}

  capabilities() {
    return {
      device: deviceLabel(this.device),
      max_batch: this.maxBatch,
      max_in_flight: this.maxInFlight,
      // it takes as many tasks in one message as it holds at once (it scores them together)
      max_tasks_per_message: this.maxInFlight,
      labels: (this.encoder ? { clip_encoder: this.encoder } : {}) as Record<string, string>,
    };
  }

  hello() {
    return {};
  }

  policyVersion(): undefined {
    return undefined;
  }

  healthDetail() {
    return { clip_encoder: this.encoder ?? null, queued_tasks: this.work?.size ?? 0 };
  }

  encoderName(): string | undefined {
    return this.encoder;
  }

  async init(ctx: RoleContext): Promise<void> {
    this.ctx = ctx;
    this.scorer = new RewardScorer(ctx.config.reward, this.device);
    // Warm up at the run's resolution: loads the encoder (a bad reward.clipModel ends the worker here, by name)
    // and learns its name for capabilities and results.
    const { height, width } = resolutionOf(ctx.config);
    const probe = new Float32Array(3 * height * width).map((_, i) => 0.25 + 0.5 * ((i * 7919) % 97) / 97);
    await this.scorer.score({ candidates: probe, references: probe, n: 1, height, width });
    this.encoder = this.scorer.encoderName;
    ctx.log.info(`reward encoder: ${this.encoder}`, { device: this.device });
    // Several queued tasks (up to max_batch candidates in all) are scored in one scorer call: one task is G
    // candidates, and the scorer's slices and lanes need a batch of several tasks to fill.
    this.work = new SerialQueue(async (first, more) => {
      const tasks = [first, ...more];
      try {
        await this.scoreTasks(tasks);
      } finally {
        for (const t of tasks) this.cancelled.delete(t.task_id);
      }
    }, (t) => t.task_id, (queued) => {
      let n = 0;
      let candidates = 0;
      for (const t of queued) {
        candidates += Number(t.candidates?.shape?.[0] ?? 0);
        if (n > 0 && candidates > this.maxBatch) break;
        n++;
      }
      return n;
    });
  }

  handle(msg: OrchestratorMessage__Output): void {
    this.work!.push(msg.score_task!);
  }

  cancel(taskId: string): void {
    // A cancelled task that is already being scored finishes, but its result is not sent.
    if (this.work?.cancel(taskId)) this.cancelled.add(taskId);
  }

  activeTaskIds(): string[] {
    return this.work?.ids() ?? [];
  }

  disconnected(): void {
    for (const running of this.work?.clear() ?? []) this.cancelled.add(running.task_id);
  }

  async drain(): Promise<void> {
    await this.work?.drain();
  }

  async close(): Promise<void> {
    await this.work?.close();
    await this.scorer?.close();
  }

  /** Scores `tasks` (one scorer call for all that decode and are alike); each is answered on its own. */
  private async scoreTasks(tasks: ScoreTask__Output[]): Promise<void> {
    const t0 = performance.now();
    const prepared: Prepared[] = [];
    for (const task of tasks) {
      try {
        prepared.push(this.prepare(task));
      } catch (e) {
        await this.failed(task, e);
      }
    }
    const alike = prepared.length > 1 && prepared.every((p) => p.height === prepared[0]!.height && p.width === prepared[0]!.width && p.wantMap === prepared[0]!.wantMap);
    if (alike) {
      let together: Scored | undefined;
      try {
        together = await this.run(prepared);
      } catch {
        // one of them made the call fail: each alone below, so the error names its task and candidate
      }
      if (together) {
        let at = 0;
        await Promise.all(prepared.map((p) => {
          const part = slice(together, at, p.n, p.mapPer);
          at += p.n;
          return this.answer(p, part, t0);
        }));
        return;
      }
    }
    for (const p of prepared) {
      let scored: Scored;
      try {
        scored = await this.run([p]);
      } catch (e) {
        await this.failed(p.task, e);
        continue;
      }
      await this.answer(p, scored, t0);
    }
  }

  private async failed(task: ScoreTask__Output, e: unknown): Promise<void> {
    if (this.cancelled.has(task.task_id)) return;
    const f = e instanceof TaskFailure ? e : new TaskFailure('internal', `scoring failed: ${(e as Error).message}`, true);
    await this.ctx.taskError(task.task_id, task.attempt, f.code, f.message, f.retryable);
  }

  private async answer(p: Prepared, s: Scored, t0: number): Promise<void> {
    const { task, n } = p;
    if (this.cancelled.has(task.task_id)) return;
    let ssimMap;
    // The map is finite: the scorer refused any candidate whose SSIM, the map's mean, is not (encodeTensor checks it
    // again). It goes on the wire as a view (share): the scorer's output array, which nothing writes again.
    if (s.map) {
      ssimMap = encodeTensor({ dtype: 'float32', shape: [n, 3, ssimMapSize(p.height), ssimMapSize(p.width)], data: s.map }, { field: 'score_result.ssim_map', share: true });
    }
    const sent = await this.ctx.send({
      score_result: {
        task_id: task.task_id,
        attempt: task.attempt,
        components: Array.from({ length: n }, (_, i) => ({ ssim: s.ssim[i]!, clip_cos: s.clip[i]! })),
        ...(ssimMap ? { ssim_map: ssimMap } : {}),
        compute_ms: performance.now() - t0,
        clip_encoder: this.encoder ?? '',
      },
    });
    if (sent) this.ctx.metrics.get('scores_total').inc(n);
  }

  /** Decodes one task (throws a TaskFailure naming the field); the scorer checks the rest (sizes, non-finite values). */
  private prepare(task: ScoreTask__Output): Prepared {
    let decoded;
    try {
      decoded = decodeScoreTask(task, { allowNonFinite: true }); // a [1,3,H,W] reference is repeated by run()
    } catch (e) {
      throw new TaskFailure('bad_input', (e as Error).message, false);
    }
    const { candidates, references } = decoded;
    const [n, , height, width] = candidates.shape as [number, number, number, number];
    // Checked here, not by the scorer: in a group scored together an empty task would not show.
    if (n === 0) throw new TaskFailure('bad_input', 'score_task.candidates: has no candidates', false);
    return { task, candidates: candidates.data, references: references.data, n, height, width, wantMap: task.want_ssim_map, mapPer: 3 * Math.max(0, ssimMapSize(height)) * Math.max(0, ssimMapSize(width)) };
  }

  /** The first `length` values of the reused join array `which`, grown when a call needs more. */
  private joined(which: 'candidates' | 'references', length: number): Float32Array {
    if (this.join[which].length < length) this.join[which] = new Float32Array(length);
    return this.join[which].subarray(0, length);
  }

  /** Scores the candidates of `ps` (alike: one size, one want_ssim_map) in one scorer call. */
  private async run(ps: Prepared[]): Promise<Scored> {
    const { height, width, wantMap } = ps[0]!;
    const per = 3 * height * width;
    const n = ps.reduce((a, p) => a + p.n, 0);
    // One array of the tasks' candidates (or the one task's own), and one of their references, each task's single
    // reference written once per candidate straight into it.
    // The joined arrays are the worker's, reused call after call (calls run one at a time, on the SerialQueue): every
    // value below n * per is written here, and the scorer reads them only during the call (its scores and maps are
    // arrays of its own), so no call allocates and zeroes fresh ones.
    const candidates = ps.length === 1 ? ps[0]!.candidates : this.joined('candidates', n * per);
    const references = ps.length === 1 && ps[0]!.references.length === n * per ? ps[0]!.references : this.joined('references', n * per);
    let at = 0;
    for (const p of ps) {
      if (candidates !== p.candidates) candidates.set(p.candidates, at);
      if (references !== p.references) {
        if (p.references.length === p.n * per) references.set(p.references, at);
        else for (let i = 0; i < p.n; i++) references.set(p.references, at + i * per);
      }
      at += p.n * per;
    }
    try {
      trace('score_start', { n });
      const s = await this.scorer!.score({ candidates, references, n, height, width }, wantMap);
      trace('score_end', { n });
      return { ssim: s.ssim, clip: s.clip_cos, map: s.ssim_map };
    } catch (e) {
      // Scored alone (scoreTasks retries a failed group task by task), item i is the task's candidate i.
      if (e instanceof ScoreError) throw new TaskFailure(e.code, `${/^(candidates|references)\b/.test(e.message) ? 'score_task.' : 'score_task: '}${e.message}`, false);
      throw e;
    }
  }
}

interface Prepared {
  task: ScoreTask__Output;
  candidates: Float32Array;
  /** [n,3,H,W], or [1,3,H,W]: one reference for every candidate. */
  references: Float32Array;
  n: number;
  height: number;
  width: number;
  wantMap: boolean;
  /** Values of one candidate's SSIM map. */
  mapPer: number;
}

interface Scored {
  ssim: Float32Array;
  clip: Float32Array;
  map: Float32Array | undefined;
}

/** Candidates at..at+n of `s`. */
function slice(s: Scored, at: number, n: number, mapPer: number): Scored {
  return { ssim: s.ssim.subarray(at, at + n), clip: s.clip.subarray(at, at + n), map: s.map?.subarray(at * mapPer, (at + n) * mapPer) };
}

/** Starts a reward worker (see the module comment); resolves once it is dialling the orchestrator. */
export async function runRewardWorker(options: RewardWorkerOptions = {}): Promise<RewardWorkerHandle> {
  const o = resolveWorkerOptions('reward', options);
  const role = new RewardRole(o.device ?? 'cpu', o.maxBatch ?? REWARD_DEFAULT_MAX_BATCH, o.maxInFlight ?? REWARD_DEFAULT_MAX_IN_FLIGHT);
  const handle = await startWorker(role, o);
  return { ...handle, encoderName: () => role.encoderName() };
}
