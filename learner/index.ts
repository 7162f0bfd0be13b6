// The learner: applies each TrainBatch exactly once, one policy version per applied batch, and publishes every
// version to the checkpoint store before acknowledging it.
//
// - Start (after Welcome): resume from the store's latest checkpoint (parameters, last batch seq, KL reference
//   version; all verified) and its AdamW state from the learner's own store (in a signed run only the state whose
//   sha256 the signed announcement records; any other is refused and the learner resumes with a fresh AdamW), or,
//   when the store is empty, initialise with initPolicyParams(spec, run.seed) and publish version 0.
// - Exactly once by batch_seq: applied only if batch_seq == last handled + 1; a seq already handled is answered
//   applied=false, skipped_reason 'duplicate' with the current version; a gap is TaskError 'gap' naming the
//   expected seq (nothing changes).
// - SFT batches: sftStep. GRPO batches: grpoStep against the frozen reference policy = the parameters GRPO
//   started from (taken at the first GRPO batch, recorded as extra.ref_version in every later checkpoint and
//   never pruned); the learner computes the reference mean itself. grpo.advantageMode dense: logp_old is the
//   per-element behaviour log-density [N,3,H,W] and advantage_map [N,3,h,w] (ssimMapSize) carries the SSIM part. The
//   first GRPO batch also starts a fresh AdamW state (stage II is a new optimisation): lib/grpo/algorithm.ts
//   startGrpoPhase. The step itself is lib/grpo/update.ts grpoUpdate, the one the single-process loop runs.
// - logp_old is checked, not believed: a row at the learner's version against its own forward (lib/grpo/logp-check.ts),
//   a row behind it (maxStaleness > 0) against the parameters of its version, kept in memory for the last
//   maxStaleness versions (lib/grpo/stale-check.ts); a row beyond grpo.logpTolerance is excluded from the step and
//   listed in TrainResult.excluded_actions.
// - Applied: version + 1 -> AdamW state to the learner's own store (LearnerStateStore, never broadcast) ->
//   checkpoint (params + meta, + base_digest for an imported network) -> CheckpointStore.put (its announcement
//   records the AdamW state's sha256, optimizer_digest, signed with it in a signed run) -> prune to the newest
//   K = max(nats.keepCheckpoints, grpo.maxStaleness + 1) plus the reference -> TrainResult. A publish failure is
//   retried until it succeeds (the batch stays unacknowledged meanwhile; its lease is renewed by heartbeats).
// - An empty GRPO batch (every group dropped): nothing to train; recorded as version + 1 with the same
//   parameters (version v still holds batch seq v), answered applied=false, skipped_reason 'empty'.
// - The NATS store lost (nats-server back without its store directory; lib/transport/store-loss.ts): the
//   learner owns its checkpoint store and optimizer state, so it re-creates them when a write finds them gone
//   (or, after any reconnection, finds its newest checkpoint gone) and puts back the KL reference and the
//   current checkpoint with its AdamW state: rollout workers and a restarted learner resume from them.
// - A non-finite batch or step is never applied: applied=false, skipped_reason 'non_finite', counted; the seq
//   counts as handled: it is recorded in the run-state KV (key learner-skips) before the acknowledgement, so a
//   restarted learner resumes after it.
// - grpo.ema > 0 (lib/grpo/weight-average.ts): a moving average of the weights from the GRPO start, updated after
//   each applied GRPO batch and stored with the AdamW state of every version (so a restart continues it); the
//   last GRPO batch (seq sft.steps + grpo.steps) publishes it in place of the trained weights.
import { SerialQueue } from '../lib/worker/serial-queue.ts';
import { sftLearningRate } from '../lib/optim/schedule.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { CheckpointError, cloneTensorMap, encodeCheckpoint, type Checkpoint, type TensorMap } from '../lib/checkpoint/index.ts';
import { encodeOptimizerState } from '../lib/checkpoint/optimizer-state.ts';
import { grpoHyper, needsReferenceForward, startGrpoPhase, type GrpoHyper } from '../lib/grpo/algorithm.ts';
import { grpoAverage, lastGrpoSeq } from '../lib/grpo/weight-average.ts';
import { batchLayout, type BatchLayout } from '../lib/grpo/sampling.ts';
import type { AverageState, ParamEma } from '../lib/optim/ema.ts';
import { flowGrpoUpdate, grpoUpdate, type ReferencePolicy } from '../lib/grpo/update.ts';
import { excludeRows, sameVersionScreen } from '../lib/grpo/logp-check.ts';
import { flowRecompute, ParamHistory, policyRecompute, staleCheck, staleCheckKey } from '../lib/grpo/stale-check.ts';
import { MIN_STEP_STD } from '../lib/flow/graphs.ts';
import { quoteForLog } from '../lib/log/quote.ts';
import { FlowRunner, FlowTrainer, isFlowFamily } from '../lib/flow/family.ts';
import type { RunConfig } from '../lib/config/index.ts';
import { deviceLabel, type Device } from '../lib/graph/device.ts';
import { initialParamsOf, paramShapesOf, policySpecOf, resolutionOf } from '../lib/models/bundle.ts';
import { baseDigestOf, LOG_STD } from '../lib/models/policy.ts';
import { refuseFixedLogStdChange } from '../lib/models/fixed-log-std.ts';
import { PolicyRunner } from '../lib/models/runner.ts';
import { PolicyTrainer } from '../lib/models/trainer.ts';
import {
  CheckpointIntegrityError,
  CheckpointStore,
  checkpointKeysFromEnv,
  DIGEST_PATTERN,
  NatsDisconnectedError,
  onNatsReconnect,
  recreatingOnLoss,
  RunStateStore,
  trainBatchDigest,
  boundWorkerIds,
  parseWorkerIds,
  WORKER_IDS_META_KEY,
  WORKER_ID_RECORD_BOUND_MAX,
  WORKER_ID_RECORD_QUARANTINED_MAX,
  workerIdsFromWire,
  workerIdsText,
  type WorkerIds,
  type Announcement,
  type FlowStepMetrics__Output,
  type OrchestratorMessage__Output,
  type TrainBatch__Output,
  type TrainResult,
  type Welcome__Output,
} from '../lib/transport/index.ts';
import {
  BASE_DIGEST_KEY,
  checkpointRef,
  fetchCheckpoint,
  klReferenceOf,
  LearnerStateStore,
  publishCheckpoint,
  resolveWorkerOptions,
  RetryableWorkerError,
  startWorker,
  STATE_DIGEST_KEY,
  trainingCheckpoint,
  UnverifiedStateError,
  WorkerFatalError,
  type RoleContext,
  type WorkerHandle,
  type WorkerOptions,
  type WorkerRoleImpl,
} from '../lib/worker/index.ts';
import { trace } from '../lib/log/trace.ts';
import { SetupError } from '../lib/config/setup-error.ts';
import { largestBatch } from '../lib/config/batch-fit.ts';
import { warmUpGrpo } from './warm-up.ts';
import { buildExclusionReport, EXCLUSION_REPORTS_LABEL, keepExclusionReport, LEARNER_RECORD_KEY, readDroppedReports, readExclusionReports, reportsUpTo, type KeptReports } from '../lib/grpo/exclusion-reports.ts';
import { BatchError, decodeTrainBatch, isEmptyGrpoBatch, logpMismatch, type DecodedBatch, type GrpoBatchInputs } from './batch.ts';

export interface LearnerOptions extends WorkerOptions {
  /** Delay between attempts to publish a checkpoint (NATS down). Default 1000 ms. */
  publishRetryMs?: number;
}

export interface LearnerState {
  version: number;
  /** batch_seq of the last batch handled (applied or skipped as non-finite). */
  lastBatchSeq: number;
  lastBatchId: string | null;
  /** Applied updates since the run began. */
  step: number;
  /** AdamW's own step count t. */
  optimizerStep: number;
  /** Version whose parameters are the KL reference (set at the first GRPO batch), and its checkpoint digest. */
  refVersion: number | undefined;
  refDigest: string | undefined;
  latest: Announcement | undefined;
}

export interface LearnerHandle extends WorkerHandle {
  /** Undefined until the learner joined a run. */
  state(): LearnerState | undefined;
  /** A copy of the current parameters. */
  params(): TensorMap | undefined;
}

export const LEARNER_DEFAULT_MAX_BATCH = 4096;

/**
 * Batches skipped as non-finite change no weights, so no checkpoint records them. This KV record (bucket
 * runstate-<runId>, key `learner-skips`) does: the highest skipped seq on top of checkpoint `version`/`digest`.
 * It counts only while that checkpoint is the latest.
 */
export const SKIP_KEY = LEARNER_RECORD_KEY;
/**
 * `exclusion_reports` (round 32): the kept reports of the newest batches whose rows the checks excluded
 * (lib/grpo/exclusion-reports.ts), and since round 33 the seqs of older ones dropped to their bound, read by an
 * orchestrator that acknowledges such a batch without its TrainResult.
 * Read here as anything (a malformed field never stops a start); an older learner's write drops it.
 */
const skipRecordSchema = z.object({ version: z.number().int().nonnegative(), digest: z.string(), last_batch_seq: z.number().int().nonnegative(), exclusion_reports: z.unknown().optional() });
type SkipRecord = z.infer<typeof skipRecordSchema>;

/** How long a reconnection's store check keeps trying at least (checkStore). */
const STORE_CHECK_MS = 10_000;

/** K: checkpoints kept besides the reference. Workers may still hold any version within maxStaleness. */
export function checkpointsToKeep(config: RunConfig): number {
  return Math.max(config.nats.keepCheckpoints, config.grpo.maxStaleness + 1);
}

/** The announcement meta that records the digest of a version's optimizer state (signed with it in a signed run). */
function stateDigestMeta(moments: { digest: string }): Record<string, string> {
  return { [STATE_DIGEST_KEY]: `sha256:${moments.digest}` };
}

function uintExtra(extra: Record<string, string>, key: string, source: string): number | undefined {
  const s = extra[key];
  if (s === undefined) return undefined;
  if (!/^(0|[1-9][0-9]*)$/.test(s) || !Number.isSafeInteger(Number(s))) throw new WorkerFatalError(`${source}: metadata extra.${key} must be a non-negative integer, got ${JSON.stringify(s)}`);
  return Number(s);
}

class LearnerRole implements WorkerRoleImpl {
  readonly name = 'learner' as const;
  readonly taskKind = 'train_batch' as const;
  private ctx!: RoleContext;
  private store!: CheckpointStore;
  /** The optimizer state, the learner's alone (never broadcast). */
  private learnerState!: LearnerStateStore;
  /** Announcements are verified with the learner's public key (a signed run): the optimizer state must match too. */
  private verifying = false;
  private skips: RunStateStore<typeof skipRecordSchema> | undefined;
  /**
   * The orchestrator's quarantine and worker-id bindings as the newest TrainBatch carried them (worker_ids; round 33),
   * or as the announcement of the checkpoint this learner resumed from recorded them: recorded in every checkpoint's
   * announcement meta (worker_ids, signed; not in the checkpoint's bytes), so an orchestrator whose run state was lost
   * takes them back. Undefined: none seen (an older orchestrator, and an announcement without them).
   */
  private workerIds: WorkerIds | undefined;
  /**
   * The worker_ids announcement meta of the checkpoint this learner published (or resumed from) last, by version: a
   * put-back after a store loss (restoreStore) announces that checkpoint again with it, though a later batch that
   * failed before publishing may have brought another record.
   */
  private publishedIds: { version: number; text: string | undefined } | undefined;
  /** A TrainBatch's worker_ids was cut to the bounds (logged once per process). */
  private warnedWorkerIdsCut = false;
  /** The missing-rollout_workers warning was logged (once per process). */
  private warnedNoAttribution = false;
  /** The GRPO step's hyper-parameters: the run's settings, fed to the training graph explicitly. */
  private hyper!: GrpoHyper;
  private trainer: PolicyTrainer | FlowTrainer | undefined;
  private params: TensorMap | undefined;
  private refParams: TensorMap | undefined;
  /**
   * The stale-row check (lib/grpo/stale-check.ts; grpo.maxStaleness > 0 and grpo.staleCheckFraction > 0, both
   * families): the parameters of the last maxStaleness versions, and the key of its sample.
   */
  private history: ParamHistory | undefined;
  private staleKey: Buffer | undefined;
  /** grpo.ema: the GRPO weights' moving average (lib/grpo/weight-average.ts), kept beside the AdamW moments. */
  private average: ParamEma | undefined;
  private refRunner: Promise<PolicyRunner> | undefined;
  private flowRefRunner: FlowRunner | undefined;
  private st: LearnerState | undefined;
  private work: SerialQueue<TrainBatch__Output> | undefined;
  private closed = false;
  private pruning: Promise<void> | undefined;
  private pruneFor: LearnerState | undefined;
  /**
   * The checkpoint versions the store holds, as this learner put and deleted them: pruning deletes from this record
   * instead of listing the bucket on every version (docs/performance-history/pipeline.md, "Round 12: pipe12"). Undefined until the
   * bucket is listed once (the first prune: an earlier process's versions), and again after a store loss or a
   * failed prune.
   */
  private stored: Set<number> | undefined;
  private height = 0;
  private width = 0;
  /** The imported network's frozen base (undefined for the built-in networks): named in every checkpoint. */
  private baseDigest: string | undefined;
  /** The run's batch layout (lib/grpo/sampling.ts), recorded in every checkpoint (extra.batch_layout; review26c F3). */
  private get layout(): BatchLayout {
    return batchLayout(this.ctx.config);
  }
  /** The KL reference's checkpoint as published (its parameters at GRPO start): put back after a store loss. */
  private refCheckpoint: Checkpoint | undefined;
  /** Batches and store restores, one at a time: a restore puts the current parameters back as they were published. */
  private exclusive: Promise<unknown> = Promise.resolve();
  private stopReconnectWatch: (() => void) | undefined;

  constructor(
    private readonly device: Device,
    private readonly maxBatch: number,
    private readonly publishRetryMs: number,
  ) {}

  capabilities() {
    // the label says this learner keeps its exclusion reports (an orchestrator tells an older learner apart by it)
    return { device: deviceLabel(this.device), max_batch: this.maxBatch, max_in_flight: 1, labels: { [EXCLUSION_REPORTS_LABEL]: '1' } };
  }

  hello() {
    return this.st ? { policy_version: this.st.version, last_batch_seq: this.st.lastBatchSeq } : {};
  }

  policyVersion(): number | undefined {
    return this.st?.version;
  }

  healthDetail() {
    return { last_batch_seq: this.st?.lastBatchSeq ?? null, ref_version: this.st?.refVersion ?? null, queued_batches: this.work?.size ?? 0 };
  }

  state(): LearnerState | undefined {
    return this.st ? { ...this.st, optimizerStep: this.trainer?.optimizer.stepCount ?? 0 } : undefined;
  }

  paramsCopy(): TensorMap | undefined {
    return this.params ? cloneTensorMap(this.params) : undefined;
  }

  async init(ctx: RoleContext): Promise<void> {
    this.ctx = ctx;
    // the run's batches against the most this learner takes (--max-batch), at the start rather than at the first
    // batch too big: a GRPO batch over it would otherwise end the run after the whole warm start
    const { sft, grpo } = ctx.config;
    const largest = largestBatch(ctx.config);
    if (largest > this.maxBatch) {
      throw new SetupError(`run ${ctx.runId}: its batches hold up to ${largest} samples (sft.batchSize ${sft.batchSize}, grpo.samplesPerBatch ${grpo.samplesPerBatch} x grpo.groupSize ${grpo.groupSize}), more than this learner's max_batch ${this.maxBatch}: start it with --max-batch ${largest}`);
    }
    this.hyper = grpoHyper(ctx.config);
    if (grpo.maxStaleness > 0 && grpo.staleCheckFraction > 0) {
      this.history = new ParamHistory(grpo.maxStaleness);
      const k = staleCheckKey();
      this.staleKey = k.key;
      if (grpo.staleCheckFraction < 1) ctx.log.info(`stale-row check: ${grpo.staleCheckFraction} of the stale groups per batch, drawn with ${k.fromEnv ? 'the key in RECOVERY_STALE_CHECK_KEY (reproducible)' : 'a key drawn at this start (set RECOVERY_STALE_CHECK_KEY for a reproducible sample)'}`);
    }
    ({ height: this.height, width: this.width } = resolutionOf(ctx.config));
    const shapes = paramShapesOf(ctx.config);
    const Trainer = isFlowFamily(ctx.config) ? FlowTrainer : PolicyTrainer;
    const spec = policySpecOf(ctx.config);
    this.baseDigest = baseDigestOf(spec);
    let latest: Announcement | null;
    let skipRecord: SkipRecord | null = null;
    try {
      this.skips = await RunStateStore.open(ctx.nc, { runId: ctx.runId, key: SKIP_KEY, schema: skipRecordSchema });
      skipRecord = (await this.skips.get())?.value ?? null;
      // the keys read here rather than inside open(): whether announcements are verified decides whether the
      // optimizer state must match the digest its announcement records (optimizerStateOf)
      const keys = checkpointKeysFromEnv({});
      this.verifying = keys.verifyKey !== undefined;
      this.store = await CheckpointStore.open(ctx.nc, {
        runId: ctx.runId,
        ...keys,
        onPut: ({ bytes, seconds }) => {
          ctx.metrics.get('checkpoint_publish_bytes_total').inc(bytes);
          ctx.metrics.get('checkpoint_publish_seconds').observe(seconds);
        },
        onGet: ({ bytes, seconds }) => {
          ctx.metrics.get('checkpoint_fetch_bytes_total').inc(bytes);
          ctx.metrics.get('checkpoint_fetch_seconds').observe(seconds);
        },
      });
      this.learnerState = await LearnerStateStore.open(ctx.nc, ctx.runId);
      latest = await this.store.latest();
    } catch (e) {
      if (e instanceof SetupError) throw e; // grants that do not name the run: no retry cures it (exit 78)
      throw new RetryableWorkerError(`cannot read the latest checkpoint of run ${ctx.runId}: ${(e as Error).message}`, { cause: e });
    }
    if (latest) {
      this.refuseToResumeBehind(latest.version);
      const ck = await this.fetchOrFail(latest, shapes, 'the latest checkpoint');
      const source = `checkpoint v${latest.version}`;
      if (ck.meta.configHash !== ctx.configHash) {
        ctx.log.warn(`${source} was written under another run configuration (hash ${ck.meta.configHash.slice(0, 12)}, now ${ctx.configHash.slice(0, 12)}); resuming anyway`);
      }
      refuseFixedLogStdChange(ctx.config, ck.params, source);
      const found = ck.optimizer ? { state: ck.optimizer } : await this.optimizerStateOf(latest, ck.params);
      const saved = found === 'refused' ? null : found;
      const optimizer = saved?.state ?? null;
      if (found === null) ctx.log.warn(`${source} has no optimizer state in ${this.learnerState.bucket}: resuming with a fresh AdamW`);
      let lastBatchSeq = uintExtra(ck.meta.extra, 'last_batch_seq', source) ?? Number(/-b(\d+)$/.exec(ck.meta.lastBatchId ?? '')?.[1] ?? 0);
      const checkpointSeq = lastBatchSeq;
      // batches skipped as non-finite after this checkpoint: recorded durably before they were acknowledged
      if (skipRecord && skipRecord.version === latest.version && skipRecord.digest === latest.digest && skipRecord.last_batch_seq > lastBatchSeq) {
        ctx.log.info(`batches ${lastBatchSeq + 1}..${skipRecord.last_batch_seq} were skipped as non-finite after v${latest.version}: resuming after them`);
        lastBatchSeq = skipRecord.last_batch_seq;
      }
      let klRef: { version: number; digest: string } | undefined;
      try {
        klRef = klReferenceOf(ck.meta.extra, source);
      } catch (e) {
        throw new WorkerFatalError((e as Error).message);
      }
      const refVersion = klRef?.version;
      const refDigest = klRef?.digest;
      // the orchestrator's record as this checkpoint's announcement has it (signed meta, not in the checkpoint's bytes):
      // carried into the next announcements until a batch brings its own
      const idsMeta: unknown = latest.meta[WORKER_IDS_META_KEY];
      this.publishedIds = { version: latest.version, text: typeof idsMeta === 'string' ? idsMeta : undefined };
      if (idsMeta !== undefined) {
        const ids = parseWorkerIds(idsMeta, `${source}'s announcement meta ${WORKER_IDS_META_KEY}`);
        if (ids instanceof Error) ctx.log.warn(`${ids.message}: not carried into the next checkpoints (the next TrainBatch brings the orchestrator's)`);
        else this.workerIds = ids;
      }
      if (refVersion !== undefined && refDigest !== undefined) {
        const refCk = await this.fetchOrFail({ version: refVersion, digest: refDigest }, shapes, `the KL reference checkpoint v${refVersion}`);
        this.refCheckpoint = { meta: refCk.meta, params: refCk.params };
        this.refParams = refCk.params;
      }
      this.params = ck.params;
      // sft.ema (flow family) inside the SFT phase: the average stored with the moments continues
      const sftAverage = refVersion === undefined && ctx.config.sft.ema > 0 ? saved?.average : undefined;
      this.trainer = Trainer.create(ctx.config, this.params, { device: this.device, ...(optimizer ? { optimizerState: optimizer } : {}), ...(sftAverage ? { sftAverage } : {}) });
      if (refVersion !== undefined) this.average = this.resumeAverage(saved?.average, source);
      if (refVersion !== undefined && saved?.average) this.warnIfResumingFromPublishedAverage(ck.params, saved.average, checkpointSeq, lastBatchSeq, source);
      this.st = { version: ck.meta.version, lastBatchSeq, lastBatchId: ck.meta.lastBatchId, step: ck.meta.step, optimizerStep: 0, refVersion, refDigest: refVersion !== undefined ? refDigest : undefined, latest };
      ctx.log.info(`resumed from checkpoint v${latest.version}`, { last_batch_seq: lastBatchSeq, step: ck.meta.step, ref_version: refVersion ?? null });
    } else {
      await this.refuseToStartOver();
      this.refuseToResumeBehind(undefined);
      this.params = initialParamsOf(ctx.config);
      this.trainer = Trainer.create(ctx.config, this.params, { device: this.device });
      this.st = { version: 0, lastBatchSeq: 0, lastBatchId: null, step: 0, optimizerStep: 0, refVersion: undefined, refDigest: undefined, latest: undefined };
      this.st.latest = await this.publish(this.st);
      ctx.log.info(`initialised the policy (seed ${ctx.config.run.seed}) and published version 0`);
    }
    await this.dropReportsAfter(skipRecord, this.st.lastBatchSeq);
    if (ctx.welcome.policy_version !== this.st.version && ctx.welcome.latest_checkpoint) {
      ctx.log.warn(`the orchestrator believes the learner is at version ${ctx.welcome.policy_version}; the checkpoint store says ${this.st.version}`);
    }
    ctx.metrics.get('policy_version').set(this.st.version);
    this.work = new SerialQueue((b) => this.runBatch(b), (b) => b.batch_id);
    this.stopReconnectWatch = onNatsReconnect(ctx.nc, () => void this.checkStore());
  }

  /**
   * On every reconnection: the orchestrator acknowledged version Welcome.policy_version. Newer than this learner's
   * state, another learner trained while this one was away (its link cut, or it was refused while the other trained):
   * training on from this state would answer `gap` to the batches acknowledged meanwhile, which fails the run as lost
   * work (review24e). A fatal error instead: the restarted process loads the newest checkpoint from the store.
   */
  reconnected(w: Welcome__Output): void {
    const own = this.st?.version;
    if (own === undefined || w.policy_version <= own) return;
    throw new WorkerFatalError(`run ${this.ctx.runId}: the orchestrator acknowledged policy version ${w.policy_version}, but this learner holds version ${own} (another learner trained while it was away): not training from stale state; restart it to load the newest checkpoint from the store`);
  }

  /** Runs `fn` when no batch is being handled (and keeps later batches waiting until it is done). */
  private alone<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.exclusive.then(fn);
    this.exclusive = p.catch(() => undefined);
    return p;
  }

  /**
   * After a reconnection: is the newest checkpoint still announced? A server that came back without its store
   * has lost it (and every bucket); then the learner puts it back (restoreStore). Tried again while the server is
   * still starting: 10 attempts and at least STORE_CHECK_MS (a JetStream that comes up late on a loaded machine; with
   * a short publishRetryMs 10 attempts alone gave up within 2 s, and the store stayed lost until the next batch).
   */
  private checkStore(): Promise<void> {
    return this.alone(async () => {
      const t0 = Date.now();
      for (let attempt = 1; (attempt <= 10 || Date.now() - t0 < STORE_CHECK_MS) && !this.closed && !this.ctx.stopping; attempt++) {
        const st = this.st!;
        try {
          const latest = await this.store.latest();
          if (latest && latest.version >= st.version) return;
          this.ctx.log.warn(`the checkpoint store no longer holds v${st.version} (newest announced: ${latest ? `v${latest.version}` : 'none'}): the NATS store was lost; putting it back`);
          await this.restoreStore(true);
          return;
        } catch (e) {
          this.ctx.log.warn(`checking the checkpoint store after a reconnection failed (attempt ${attempt}): ${(e as Error).message}`);
          await sleep(this.publishRetryMs);
        }
      }
    });
  }

  /**
   * The NATS store was lost: re-creates the learner's buckets where missing, then puts back the KL reference
   * and, with `current` (no batch in progress, so the parameters are those of st.version), the newest
   * checkpoint with its AdamW state. Inside a batch the version being published supersedes the current one.
   */
  private async restoreStore(current: boolean): Promise<boolean> {
    this.stored = undefined; // listed again by the next prune
    const checkpoints = await this.store.recreate();
    const optimizer = await this.learnerState.recreate();
    if (checkpoints || optimizer) this.ctx.log.warn(`re-created the lost ${[checkpoints && this.store.bucket, optimizer && this.learnerState.bucket].filter(Boolean).join(' and ')}`);
    const st = this.st!;
    const stored = await this.store.versions();
    const ref = this.refCheckpoint;
    if (st.refVersion !== undefined && ref && !stored.includes(st.refVersion)) {
      // announced before the current one: latest() is the last announcement
      const encoded = encodeCheckpoint(ref);
      if (`sha256:${encoded.digest}` !== st.refDigest) {
        this.ctx.log.error(`cannot put back the KL reference v${st.refVersion}: re-encoded it has digest sha256:${encoded.digest}, not ${st.refDigest}`);
      } else {
        await publishCheckpoint(this.store, ref, {}, encoded);
        this.ctx.log.warn(`put back the KL reference checkpoint v${st.refVersion}`);
      }
    }
    if (current && !stored.includes(st.version)) {
      st.latest = await this.publishOnce(st);
      this.ctx.log.warn(`put back checkpoint v${st.version} and its optimizer state`);
    }
    return checkpoints || optimizer;
  }

  private async fetchOrFail(ann: Pick<Announcement, 'version' | 'digest'>, shapes: ReadonlyMap<string, readonly number[]>, what: string) {
    try {
      return await fetchCheckpoint(this.store, ann, { runId: this.ctx.runId, shapes, baseDigest: this.baseDigest });
    } catch (e) {
      if (e instanceof CheckpointIntegrityError || e instanceof CheckpointError) {
        const msg = `cannot resume from ${what} (v${ann.version}): ${(e as Error).message}. Refusing to start rather than train from unverified weights.`;
        // its own model.network files differ from the run's: a restart reads the same files (a SetupError, exit 78)
        if (e instanceof CheckpointError && e.field === BASE_DIGEST_KEY) throw new SetupError(msg, { cause: e });
        throw new WorkerFatalError(msg);
      }
      throw new RetryableWorkerError(`cannot fetch ${what} (v${ann.version}): ${(e as Error).message}`);
    }
  }

  /**
   * grpo.ema and a raised grpo.steps (review26d F1, round 26): the checkpoint resumed was the run's last GRPO batch
   * under the configuration that trained it, so it published the weight average in place of the trained weights
   * (publishAverageAtEnd), and the trained weights are stored nowhere; with more batches to train now, training goes
   * on from the average, with the trained weights' AdamW moments: not what a run configured with this grpo.steps from
   * the start would train. Warned, not refused: raising grpo.steps is how an operator extends a run on purpose, and
   * the average is the policy the run published (a refusal would need a flag for every deliberate extension).
   * Known by the checkpoint's parameters being the saved average exactly (copyTo copies it bit for bit; after any
   * other GRPO batch the average lags the parameters), so checkpoints of earlier rounds are recognised too.
   */
  private warnIfResumingFromPublishedAverage(params: TensorMap, average: AverageState, checkpointSeq: number, resumeAfter: number, source: string): void {
    const last = lastGrpoSeq(this.ctx.config);
    if (resumeAfter >= last || !sameValues(params, average.shadow)) return;
    this.ctx.log.warn(`${source} (batch ${checkpointSeq}) published the grpo.ema weight average in place of the trained weights: batch ${checkpointSeq} was the run's last GRPO batch when it was trained, and this configuration's last is batch ${last} (grpo.steps raised to ${this.ctx.config.grpo.steps}: the run is extended). Training continues from the average (the trained weights of batch ${checkpointSeq} are stored nowhere), with the trained weights' AdamW moments, and batch ${last} publishes the average again; the extended run is not the one a configuration with grpo.steps ${this.ctx.config.grpo.steps} from the start would train (docs/architecture.md)`);
  }

  /**
   * grpo.ema, resuming inside the GRPO phase: the average saved with the checkpoint's moments; without one (saved
   * before the key was set, or with the moments lost) it starts again from the current parameters, with a warning.
   */
  private resumeAverage(saved: AverageState | undefined, source: string): ParamEma | undefined {
    if (!saved && this.ctx.config.grpo.ema > 0) this.ctx.log.warn(`${source} has no saved GRPO weight average (grpo.ema): the average starts again from its parameters`);
    return grpoAverage(this.ctx.config, this.params!, saved);
  }

  /**
   * The learner's own AdamW moments of checkpoint `ann` and its GRPO weight average (null when none were stored).
   * Where announcements are verified (a signed run), only a state whose sha256 is the one `ann` records
   * (STATE_DIGEST_KEY, under the learner's signature) is used; any other is 'refused', logged as an error and counted
   * (optimizer_state_refused_total{reason}), and the learner resumes with a fresh AdamW as if the state were lost:
   * the run goes on, on the signed parameters, with nothing from an unverified writer (docs/security.md).
   */
  private async optimizerStateOf(ann: Announcement, params: TensorMap) {
    const refuse = (reason: 'missing' | 'malformed' | 'mismatch', why: string): 'refused' => {
      this.ctx.metrics.get('optimizer_state_refused_total').inc({ reason });
      this.ctx.log.error(`${why}. The optimizer state is not used: resuming checkpoint v${ann.version} with a fresh AdamW (moments and step count from zero; grpo.ema's average from its parameters)`);
      return 'refused';
    };
    let expectDigest: string | undefined;
    if (this.verifying) {
      const d = ann.meta[STATE_DIGEST_KEY];
      if (typeof d !== 'string' || !DIGEST_PATTERN.test(d)) {
        return refuse(d === undefined ? 'missing' : 'malformed', `${this.learnerState.bucket}: the signed announcement of checkpoint v${ann.version} records no ${STATE_DIGEST_KEY} (${d === undefined ? 'published by a learner before round 19' : `malformed: ${JSON.stringify(String(d).slice(0, 80))}`}), so its optimizer state cannot be verified`);
      }
      expectDigest = d;
    }
    try {
      const f = await this.learnerState.get(ann.version, ann.digest, params, expectDigest !== undefined ? { expectDigest } : {});
      return f ? { state: f.state, ...(f.average ? { average: f.average } : {}) } : null;
    } catch (e) {
      if (e instanceof UnverifiedStateError) return refuse('mismatch', e.message);
      if (e instanceof CheckpointError) throw new WorkerFatalError(`cannot resume the optimizer of checkpoint v${ann.version}: ${e.message}`);
      throw new RetryableWorkerError(`cannot read the optimizer state of checkpoint v${ann.version}: ${(e as Error).message}`);
    }
  }

  handle(msg: OrchestratorMessage__Output): void {
    this.work!.push(msg.train_batch!);
  }

  cancel(batchId: string): void {
    this.work?.cancel(batchId);
  }

  activeTaskIds(): string[] {
    return this.work?.ids() ?? [];
  }

  disconnected(): void {
    this.work?.clear();
  }

  async drain(): Promise<void> {
    await this.work?.drain();
    await this.pruning;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.work?.close();
    await this.pruning;
    this.stopReconnectWatch?.();
    await this.exclusive;
    await this.trainer?.release();
    await (await this.refRunner?.catch(() => undefined))?.release();
    await this.flowRefRunner?.release();
  }

  private async runBatch(b: TrainBatch__Output): Promise<void> {
    try {
      await this.alone(() => this.handleBatch(b));
    } catch (e) {
      if (!(e instanceof AbandonedError)) {
        this.ctx.log.error(`batch ${b.batch_id} (seq ${b.batch_seq}) failed: ${(e as Error).stack ?? e}`);
        await this.ctx.taskError(b.batch_id, 0, 'internal', `learner failed on batch seq ${b.batch_seq}: ${(e as Error).message}`, true);
      }
    }
  }

  private kindLabel(b: TrainBatch__Output): 'sft' | 'grpo' | 'unknown' {
    return b.kind === 'SFT' ? 'sft' : b.kind === 'GRPO' ? 'grpo' : 'unknown';
  }

  private result(b: TrainBatch__Output, fields: Partial<TrainResult>): TrainResult {
    const st = this.st!;
    return {
      batch_id: b.batch_id,
      batch_seq: b.batch_seq,
      applied: false,
      skipped_reason: '',
      version: st.version,
      ...(st.latest ? { checkpoint: checkpointRef(st.latest) } : {}),
      ...fields,
      // the content it answers, so a result is never taken for another batch under the same seq (a rebuilt one)
      batch_digest: trainBatchDigest(b),
    };
  }

  private async handleBatch(b: TrainBatch__Output): Promise<void> {
    const st = this.st!;
    const m = this.ctx.metrics;
    const kind = this.kindLabel(b);
    const t0 = performance.now();
    trace('batch_start', { seq: b.batch_seq });
    if (!Number.isInteger(b.batch_seq) || b.batch_seq < 1) {
      await this.ctx.taskError(b.batch_id, 0, 'bad_input', `train_batch.batch_seq: must be >= 1, got ${b.batch_seq}`, false);
      return;
    }
    if (b.batch_seq <= st.lastBatchSeq) {
      m.get('train_batches_total').inc({ kind, outcome: 'duplicate' });
      await this.ctx.send({ train_result: this.result(b, { skipped_reason: 'duplicate' }) });
      return;
    }
    if (b.batch_seq !== st.lastBatchSeq + 1) {
      await this.ctx.taskError(b.batch_id, 0, 'gap', `expected batch_seq ${st.lastBatchSeq + 1} (the last one handled is ${st.lastBatchSeq}), got ${b.batch_seq}; nothing changed`, true);
      return;
    }
    this.takeWorkerIds(b);
    if (isEmptyGrpoBatch(b)) return this.recordEmpty(b, kind, t0);
    let batch: DecodedBatch;
    try {
      batch = decodeTrainBatch(b, {
        height: this.height, width: this.width, mode: this.ctx.config.grpo.advantageMode, family: this.ctx.config.model.family,
        flowSteps: this.ctx.config.flow.steps, identity: this.ctx.config.grpo.identityAnchor > 0, maxBatch: this.maxBatch,
      });
    } catch (e) {
      if (!(e instanceof BatchError)) throw e;
      await this.ctx.taskError(b.batch_id, 0, e.code, e.message, false);
      return;
    }
    if (batch.nonFinite) return this.skipNonFinite(b, kind, `input ${batch.nonFinite}`, {}, t0);

    const versionBefore = st.version;
    trace('train_start', { seq: b.batch_seq });
    let fields: StepFields;
    let applied: boolean;
    let reason = '';
    if (batch.kind === 'sft') {
      this.keepForStaleCheck(b.batch_seq, versionBefore);
      const r = await this.trainer!.sftStep(batch.images, batch.targets, batch.n, sftLearningRate(this.ctx.config.sft, b.batch_seq));
      applied = r.step.applied;
      if (!r.step.applied) reason = r.step.reason;
      fields = { loss: r.loss, grad_norm: r.step.gradNorm };
    } else {
      if (st.refVersion === undefined) this.startGrpo();
      // the flow family trains over its rows (action, trained step); each row's behaviour version is its action's
      const trainer = this.trainer!;
      const rowVersions = batch.flow && batch.behaviourVersions.length ? Array.from(batch.flow.actionIndex, (i) => batch.behaviourVersions[i]!) : batch.behaviourVersions;
      // the stale-row check takes its forged rows out before the step's forward (rows: the flow family's, per step)
      const { excluded: stale, unchecked: staleUnchecked } = await this.staleRowCheck(b, batch, rowVersions, versionBefore);
      trace('stale_checked', { seq: b.batch_seq });
      this.keepForStaleCheck(b.batch_seq, versionBefore);
      const actionOf = batch.flow ? (row: number) => batch.flow!.actionIndex[row]! : undefined;
      const fieldsOf = (x: GrpoBatchInputs) => ({ advantages: x.advantages, ...(x.advantageMap ? { advantageMap: x.advantageMap } : {}), logpOld: x.flow ? x.flow.logpOld : x.logpOld });
      let checked = batch;
      if (stale.length) {
        const { logpOld, ...perAction } = excludeRows(fieldsOf(batch), stale, rowVersions.length, actionOf);
        checked = batch.flow ? { ...batch, ...perAction, flow: { ...batch.flow, logpOld } } : { ...batch, ...perAction, logpOld };
      }
      let excluded: number[] = [];
      const screen = sameVersionScreen({
        batch: fieldsOf(checked),
        rowVersions, version: versionBefore, tolerance: this.ctx.config.grpo.logpTolerance,
        ...(actionOf ? { actionOf } : {}),
        excluded: (rows) => (excluded = rows),
      });
      const flowResult = trainer instanceof FlowTrainer ? await flowGrpoUpdate(trainer, this.flowReference(), { ...checked, flow: checked.flow! }, this.hyper, screen) : undefined;
      const r = flowResult ?? await grpoUpdate(trainer as PolicyTrainer, this.reference(), checked, this.hyper, screen);
      applied = r.step.applied;
      if (!r.step.applied) reason = r.step.reason;
      // a row is either stale or at the learner's version: the two lists do not meet
      if (stale.length) excluded = [...stale, ...excluded].sort((x, y) => x - y);
      if (excluded.length) this.reportExcluded(b, batch, excluded, stale.length);
      // the batch's actions whose rows were excluded, for the orchestrator to name their rollout worker (each once)
      const excludedActions = [...new Set(batch.flow ? excluded.map((row) => batch.flow!.actionIndex[row]!) : excluded)].sort((x, y) => x - y);
      // the actions with a row no check examined (TrainResult.check_coverage, for the orchestrator's quarantine window):
      // every action when the batch carries no behaviour versions; else the stale rows the stale check left out, and
      // any row above the learner's version (the orchestrator refuses those: none expected)
      const uncheckedRows = rowVersions.length !== (batch.flow ? batch.flow.rows : batch.n)
        ? null
        : [...staleUnchecked, ...rowVersions.flatMap((v, row) => (v > versionBefore ? [row] : []))];
      const uncheckedActions = uncheckedRows === null
        ? b.sample_ids.map((_, i) => i)
        : [...new Set(batch.flow ? uncheckedRows.map((row) => batch.flow!.actionIndex[row]!) : uncheckedRows)].sort((x, y) => x - y);
      const mismatch = logpMismatch(r.logp, batch.logpOld, rowVersions, versionBefore);
      fields = {
        loss: r.loss,
        kl: r.kl,
        clip_fraction: r.clipFraction,
        grad_norm: r.step.gradNorm,
        ratio_mean: r.ratio.reduce((a, x) => a + x, 0) / r.ratio.length,
        logp_mismatch: mismatch,
        ...(excludedActions.length ? { excluded_actions: excludedActions } : {}),
        check_coverage: { unchecked_actions: uncheckedActions },
        ...(flowResult ? { flow_steps: flowResult.perStep.map((s) => ({ index: s.step, rows: s.rows, ratio_mean: s.ratio, clip_fraction: s.clipFraction, kl: s.kl })) } : {}),
      };
      if (applied) {
        m.get('kl').set(r.kl);
        m.get('clip_fraction').set(r.clipFraction);
        if (Number.isFinite(mismatch)) m.get('logp_mismatch').set(mismatch);
        for (const s of fields.flow_steps ?? []) {
          const step = String(s.index);
          m.get('flow_step_clip_fraction').set({ step }, s.clip_fraction);
          m.get('flow_step_kl').set({ step }, s.kl);
          m.get('flow_step_ratio').set({ step }, s.ratio_mean);
        }
        for (const v of batch.behaviourVersions) m.get('staleness').observe(versionBefore - v);
      }
    }
    trace('train_end', { seq: b.batch_seq });
    // the batch's excluded results, kept for an orchestrator that acknowledges it without this TrainResult: written
    // before the version is published (or the skip recorded), so whoever sees either can read it
    if (fields.excluded_actions?.length) await this.keepExclusionReport(b, fields.excluded_actions, fields.check_coverage?.unchecked_actions ?? b.sample_ids.map((_, i) => i), applied);
    if (!applied) return this.skipNonFinite(b, kind, reason, fields, t0);
    if (batch.kind !== 'sft') this.average?.update(this.params!);
    // sft.ema (flow family): the last SFT batch publishes the SFT average, as the loop's finishSft
    if (batch.kind === 'sft' && b.batch_seq === this.ctx.config.sft.steps && this.trainer instanceof FlowTrainer) this.trainer.finishSft();
    this.publishAverageAtEnd(b.batch_seq);

    const next: LearnerState = {
      ...st,
      version: st.version + 1,
      lastBatchSeq: b.batch_seq,
      lastBatchId: b.batch_id || `${this.ctx.runId}-b${b.batch_seq}`,
      step: st.step + 1,
    };
    next.latest = await this.publish(next);
    trace('published', { seq: b.batch_seq, version: next.version });
    this.st = next;
    m.get('policy_version').set(next.version);
    m.get('train_steps_total').inc({ kind });
    m.get('train_batches_total').inc({ kind, outcome: 'applied' });
    m.get('loss').set({ kind }, fields.loss);
    m.get('grad_norm').set(fields.grad_norm);
    await this.ctx.send({ train_result: this.result(b, { ...fields, applied: true, compute_ms: performance.now() - t0 }) });
    trace('result_sent', { seq: b.batch_seq });
    if (batch.kind === 'sft' && b.batch_seq === this.ctx.config.sft.steps) await this.prepareGrpo();
    // Pruning is housekeeping: after the acknowledgement, beside the next batch rather than before it. One runs at
    // a time; a batch that finds one running leaves its state for the next round of the same loop.
    this.pruneFor = next;
    this.pruning ??= (async () => {
      for (let s = this.pruneFor; s; s = this.pruneFor) {
        this.pruneFor = undefined;
        trace('prune_start', { version: s.version });
        await this.prune(s);
        trace('prune_end', { version: s.version });
      }
    })().finally(() => (this.pruning = undefined));
  }

  /**
   * grpo.maxStaleness > 0: a copy of the parameters at `version`, before batch `seq` changes them (and after its own
   * stale-row check, which reads only older versions), for the stale-row check of the batches after it. Only
   * versions a GRPO row can carry are kept: GRPO batch s (s > sft.steps) is dispatched once the learner acknowledged
   * batch s - 1 - maxStaleness, so its rows are of the versions from there on.
   */
  private keepForStaleCheck(seq: number, version: number): void {
    if (this.history && seq + this.ctx.config.grpo.maxStaleness > this.ctx.config.sft.steps) this.history.keep(version, this.params!);
  }

  /**
   * The stale-row check (lib/grpo/stale-check.ts) of a GRPO batch trained at `version`, over its training rows
   * (`rowVersions`: per row; the flow family's rows are an action's steps): the rows it finds forged, counted with
   * the rows it checked and could not check.
   */
  private async staleRowCheck(b: TrainBatch__Output, batch: GrpoBatchInputs, rowVersions: readonly number[], version: number): Promise<{ excluded: number[]; unchecked: number[] }> {
    // the check off (maxStaleness 0, or staleCheckFraction 0): every stale row is unchecked
    if (!this.history) return { excluded: [], unchecked: rowVersions.flatMap((v, row) => (v < version ? [row] : [])) };
    const g = this.ctx.config.grpo;
    const flow = batch.flow;
    const recompute = flow
      ? flowRecompute({ ...batch, flow }, MIN_STEP_STD, async (params, rows) => (await this.flowReference().runner()).stepMeanStd(params, rows))
      : policyRecompute(batch, LOG_STD, async (params, images, n) => (await this.referenceRunner()).mean(params, images, n));
    const r = await staleCheck({
      batch: { rows: rowVersions.length, versions: rowVersions, groups: Array.from({ length: rowVersions.length }, (_, row) => b.sample_ids[flow ? flow.actionIndex[row]! : row] ?? `row ${row}`), logpOld: flow ? flow.logpOld : batch.logpOld },
      version, seq: b.batch_seq, history: this.history, tolerance: g.logpTolerance, fraction: g.staleCheckFraction, key: this.staleKey!, recompute,
    });
    const m = this.ctx.metrics.get('logp_stale_rows_total');
    if (r.checked) m.inc({ outcome: 'checked' }, r.checked);
    if (r.notSampled) m.inc({ outcome: 'not_sampled' }, r.notSampled);
    if (r.notHeld) m.inc({ outcome: 'not_held' }, r.notHeld);
    return { excluded: r.excluded, unchecked: r.unchecked };
  }

  /**
   * Rows the same-version check (lib/grpo/logp-check.ts) and the stale-row check (stale-check.ts: `stale` of them)
   * took out of the step: counted, and logged with their sample ids. The batch does not say which worker produced a
   * row: the TrainResult's excluded_actions tells the orchestrator, which names, counts and quarantines that worker
   * (orchestrator/quarantine.ts).
   */
  private reportExcluded(b: TrainBatch__Output, batch: DecodedBatch & { kind: 'grpo' }, rows: number[], stale: number): void {
    this.ctx.metrics.get('logp_rows_excluded_total').inc(rows.length);
    const sample = (row: number) => {
      const i = batch.flow ? batch.flow.actionIndex[row]! : row;
      // sample ids are quoted and cut (lib/log/quote.ts), as any text a peer chose
      return `${b.sample_ids[i] === undefined ? `row ${i}` : quoteForLog(b.sample_ids[i]!, 64)}${b.group_indices[i] === undefined ? '' : `#${b.group_indices[i]}`}${batch.flow ? ` step ${batch.flow.stepIndex[row]}` : ''}`;
    };
    this.ctx.log.warn(`batch ${b.batch_id} (seq ${b.batch_seq}): excluded ${rows.length} of ${batch.flow ? batch.flow.rows : batch.n} rows whose logp_old disagrees with the learner's own at their behaviour version beyond grpo.logpTolerance ${this.ctx.config.grpo.logpTolerance} (forged or broken rollouts; ${stale} of them behind the learner's version v${this.st!.version}): ${rows.slice(0, 16).map(sample).join(', ')}${rows.length > 16 ? ', ...' : ''}`);
  }

  /**
   * A GRPO batch whose every group was dropped: nothing to train. Its seq is recorded like an applied batch's,
   * as version + 1 with the same parameters (so version v still holds batch seq v, and a restarted learner
   * resumes after it), and answered applied=false, skipped_reason 'empty'.
   */
  private async recordEmpty(b: TrainBatch__Output, kind: 'sft' | 'grpo' | 'unknown', t0: number): Promise<void> {
    const st = this.st!;
    this.keepForStaleCheck(b.batch_seq, st.version);
    const next: LearnerState = { ...st, version: st.version + 1, lastBatchSeq: b.batch_seq, lastBatchId: b.batch_id || `${this.ctx.runId}-b${b.batch_seq}` };
    this.publishAverageAtEnd(b.batch_seq);
    next.latest = await this.publish(next);
    this.st = next;
    this.ctx.metrics.get('policy_version').set(next.version);
    this.ctx.metrics.get('train_batches_total').inc({ kind, outcome: 'empty' });
    this.ctx.log.warn(`batch ${b.batch_id} (seq ${b.batch_seq}) has no samples (every group was dropped): recorded as v${next.version} with the parameters unchanged`);
    await this.ctx.send({ train_result: this.result(b, { applied: false, skipped_reason: 'empty', compute_ms: performance.now() - t0 }) });
  }

  /**
   * No announcement, yet the store holds versions past 0: the announcements were lost (purged, or evicted by a
   * credential that could flood the stream: docs/security.md), not a new run. Starting over from version 0 would
   * replace announced checkpoints and answer `gap` to every batch the orchestrator re-sends, so refuse instead (the
   * same start fails the same way). Version 0 alone is a learner killed between storing v0 and announcing it: the
   * seed gives the same bytes again.
   */
  private async refuseToStartOver(): Promise<void> {
    let past: number[];
    let announcements = 0;
    try {
      past = (await this.store!.versions()).filter((v) => v > 0);
      if (past.length > 0) announcements = await this.store!.announcementCount();
    } catch (e) {
      throw new RetryableWorkerError(`cannot list the checkpoints or announcements of run ${this.ctx!.runId}: ${(e as Error).message}`, { cause: e });
    }
    if (past.length === 0) return;
    // announcements there but none read as backed: junk or announcements whose objects are gone, or ones not signed by
    // this learner's key (a read that fails makes latest() throw); not a reason to stop the run for good
    if (announcements > 0) {
      throw new RetryableWorkerError(
        `run ${this.ctx!.runId}: the announcement stream holds ${announcements} announcement(s) but none read as backed by its checkpoint${this.verifying ? ' and signed by the learner\'s key' : ''} (a failed read, or tampering); not starting over, trying again`,
      );
    }
    throw new SetupError(
      `run ${this.ctx!.runId}: the checkpoint store holds ${past.length} version(s) up to v${past[past.length - 1]} but no announcement of any: the announcements were lost; refusing to start the run over from version 0 (it would replace announced checkpoints). Restore the announcement stream, or start a new run id`,
    );
  }

  /**
   * The orchestrator acknowledged version Welcome.policy_version, and every version it acknowledges was announced
   * first: a learner that would resume below it (from version `found`, undefined: none announced) has not found its newest checkpoint (a read that
   * failed, a store rolled back), and would answer `gap` to every batch the orchestrator re-sends, for ever
   * (review24d). Tried again on the next connection instead, saying so.
   */
  private refuseToResumeBehind(found: number | undefined): void {
    const acked = this.ctx.welcome.policy_version;
    if (acked <= (found ?? 0)) return;
    // kept retrying (a failed read heals), but saying what an operator must do if it does not: a store lost with the
    // learner never comes back by itself (review24e)
    throw new RetryableWorkerError(`run ${this.ctx.runId}: the orchestrator acknowledged policy version ${acked}, but the newest checkpoint this learner finds is ${found !== undefined ? `v${found}` : 'none (no announcement)'}: not resuming behind the run; trying again. If this repeats, the checkpoint store lost the newest checkpoints (a store lost with the learner cannot be rebuilt): restore the NATS store (its JetStream directory) from a backup, or start a new run id`);
  }

  /** The first GRPO batch: the current parameters become the frozen KL reference; AdamW starts afresh (startGrpoPhase). */
  private startGrpo(): void {
    const st = this.st!;
    st.refVersion = st.version;
    st.refDigest = st.latest!.digest;
    const atStart = startGrpoPhase(this.params!, this.trainer!.optimizer);
    this.average = grpoAverage(this.ctx.config, this.params!);
    // the checkpoint of st.version as it was published (no reference yet), kept to put back after a store loss
    this.refCheckpoint = trainingCheckpoint({ ...this.position(st), refVersion: undefined, refDigest: undefined }, atStart);
    this.refParams = atStart;
    this.ctx.log.info(`GRPO starts from version ${st.version}: it is the KL reference from now on (kept in the store)`);
  }

  /** grpo.ema: the run's last GRPO batch publishes the average in place of the trained weights. */
  private publishAverageAtEnd(seq: number): void {
    if (seq === lastGrpoSeq(this.ctx.config)) this.average?.copyTo(this.params!);
  }

  private reference(): ReferencePolicy {
    return {
      params: this.refParams!,
      runner: () => this.referenceRunner(),
    };
  }

  private referenceRunner(): Promise<PolicyRunner> {
    if (!this.refRunner) {
      this.refRunner = PolicyRunner.create(this.ctx.config, this.device);
      this.refRunner.catch(() => (this.refRunner = undefined)); // tried again by the next step
    }
    return this.refRunner;
  }

  /**
   * After the last SFT batch is acknowledged: the GRPO graph's session and the reference policy's, created while the
   * first GRPO batch is rolled out and scored instead of inside its step, where they were on the critical path (~130
   * ms; docs/performance-history/pipeline.md "Round 10: pipe10"), and their first runs on zeros (learner/warm-up.ts; "Round 12: pipe12").
   * Every value the steps compute is as before.
   */
  private async prepareGrpo(): Promise<void> {
    const trainer = this.trainer;
    if (!(trainer instanceof PolicyTrainer) || this.ctx.config.grpo.steps === 0) return;
    // the acknowledgement leaves first: building the graph and loading the session hold the event loop
    await new Promise<void>((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      await trainer.prepareGrpo();
      const reference = needsReferenceForward(this.hyper) ? { runner: await this.referenceRunner(), params: this.params! } : undefined;
      // the graphs' first runs too (~0.5 s on the critical path otherwise): the reference's parameters are not taken
      // yet, the current ones have its shapes; nothing is trained, the outputs are dropped
      await warmUpGrpo(this.ctx.config, trainer, this.hyper, reference);
    } catch (e) {
      // the first GRPO step creates them (and reports a failure) as before
      this.ctx.log.warn(`preparing the GRPO sessions failed (the first GRPO step tries again): ${(e as Error).message}`);
    }
  }

  private flowReference() {
    return {
      params: this.refParams!,
      runner: async () => (this.flowRefRunner ??= await FlowRunner.create(this.ctx.config, this.device)),
    };
  }

  private async skipNonFinite(b: TrainBatch__Output, kind: 'sft' | 'grpo' | 'unknown', why: string, fields: Partial<TrainResult>, t0: number): Promise<void> {
    const st = this.st!;
    // Durable before the acknowledgement, like an applied batch: a restarted learner must not expect it again.
    await this.retrying(`recording skipped batch ${b.batch_seq}`, () =>
      this.skips!.modify((cur) => ({ version: st.version, digest: st.latest!.digest, last_batch_seq: b.batch_seq, ...(cur?.exclusion_reports !== undefined ? { exclusion_reports: cur.exclusion_reports } : {}) })));
    st.lastBatchSeq = b.batch_seq;
    const m = this.ctx.metrics;
    m.get('nonfinite_steps_skipped_total').inc();
    m.get('train_batches_total').inc({ kind, outcome: 'skipped' });
    this.ctx.log.warn(`batch ${b.batch_id} (seq ${b.batch_seq}) skipped, nothing applied: ${why}`);
    await this.ctx.send({ train_result: this.result(b, { ...fields, applied: false, skipped_reason: 'non_finite', compute_ms: performance.now() - t0 }) });
  }

  /**
   * Keeps the report of batch `b`'s checked results per rollout worker (lib/grpo/exclusion-reports.ts) in the learner's
   * run-state record, beside its skip fields (writeReports). A batch without TrainBatch.rollout_workers (an older orchestrator) has none (said once).
   */
  private async keepExclusionReport(b: TrainBatch__Output, excluded: readonly number[], unchecked: readonly number[], applied: boolean): Promise<void> {
    const report = buildExclusionReport(b.batch_seq, b.sample_ids, b.rollout_workers ?? [], excluded, unchecked, applied);
    if (!report) {
      if (!this.warnedNoAttribution && (b.rollout_workers?.length ?? 0) !== b.sample_ids.length) {
        this.warnedNoAttribution = true;
        this.ctx.log.warn(`batch ${b.batch_id} (seq ${b.batch_seq}) carries no rollout_workers for its ${b.sample_ids.length} actions (an older orchestrator): its excluded results are not kept for an orchestrator that acknowledges it without its TrainResult (docs/security.md)`);
      }
      return;
    }
    await this.writeReports(`keeping the exclusion report of batch ${b.batch_seq}`, (kept) => keepExclusionReport(kept, report));
  }

  /**
   * Rewrites the kept exclusion reports of the learner's record as `next` makes them from the record's, its skip
   * fields left as they are (a record not yet written gets the current checkpoint's, which resume nothing).
   */
  private async writeReports(what: string, next: (kept: unknown) => KeptReports): Promise<void> {
    const st = this.st!;
    await this.retrying(what, () =>
      this.skips!.modify((cur) => ({
        ...(cur ? { version: cur.version, digest: cur.digest, last_batch_seq: cur.last_batch_seq } : { version: st.version, digest: st.latest!.digest, last_batch_seq: st.lastBatchSeq }),
        exclusion_reports: next(cur?.exclusion_reports),
      })));
  }

  /**
   * At start: the kept exclusion reports of batches after `seq` (the one this learner resumes after) are dropped, one
   * write (review32 F6): such a report was kept by a learner killed before it published that batch's version, and the
   * batch this one trains under that seq may be another (an orchestrator restarted meanwhile builds it anew) with no
   * excluded row, hence no report to replace the old one, which an orchestrator acknowledging it would count.
   */
  private async dropReportsAfter(record: SkipRecord | null, seq: number): Promise<void> {
    const held = record?.exclusion_reports;
    // the seqs of reports dropped to the bound too (round 33): an orchestrator would say those batches' reports were lost
    const after = [...readDroppedReports(held), ...readExclusionReports(held).map((r) => r.seq)].filter((s) => s > seq).sort((a, b) => a - b);
    if (!after.length) return;
    await this.writeReports(`dropping the kept exclusion reports of batches after ${seq}`, (kept) => reportsUpTo(kept, seq));
    this.ctx.log.info(`dropped the kept exclusion reports of batches ${after.slice(0, 16).join(', ')}${after.length > 16 ? ', ...' : ''}, after batch ${seq} this learner resumes from (not in its checkpoint: trained again, or another batch under that seq)`);
  }

  private position(s: LearnerState) {
    return { runId: this.ctx.runId, configHash: this.ctx.configHash, batchLayout: this.layout, version: s.version, step: s.step, lastBatchSeq: s.lastBatchSeq, lastBatchId: s.lastBatchId, refVersion: s.refVersion, refDigest: s.refDigest, baseDigest: this.baseDigest };
  }

  /**
   * Takes batch `b`'s worker_ids (the orchestrator's quarantine and bindings) for the next checkpoints, cut to the
   * bounds (WORKER_ID_RECORD_*_MAX; entries off the worker-id patterns left out), said once per process when cut.
   * A batch without it (an older orchestrator) leaves the record as it was.
   */
  private takeWorkerIds(b: TrainBatch__Output): void {
    const ids = workerIdsFromWire(b.worker_ids);
    if (!ids) return;
    const { ids: kept, cut } = boundWorkerIds(ids);
    if (cut && !this.warnedWorkerIdsCut) {
      this.warnedWorkerIdsCut = true;
      this.ctx.log.warn(`batch ${b.batch_id} (seq ${b.batch_seq}) carries ${ids.quarantined.length} quarantined worker id(s) and ${Object.keys(ids.boundIds).length} binding(s): ${cut} left out of the checkpoints' announcement meta ${WORKER_IDS_META_KEY} (at most ${WORKER_ID_RECORD_QUARANTINED_MAX} and ${WORKER_ID_RECORD_BOUND_MAX}, valid ids only; logged once)`);
    }
    this.workerIds = kept;
  }

  /**
   * The announcement meta of a checkpoint: its optimizer state's digest and the orchestrator's worker-id record `ids`.
   * The record is announcement meta only (signed with the rest), never in the checkpoint's bytes: those stay a
   * function of the seed and the batches (parity with the single-process loop, determinism).
   */
  private announceMeta(moments: { digest: string }, ids: string | undefined): Record<string, string> {
    return { ...stateDigestMeta(moments), ...(ids !== undefined ? { [WORKER_IDS_META_KEY]: ids } : {}) };
  }

  /**
   * Publishes the checkpoint of `s`, retrying until it is stored and announced (or the learner stops). A write
   * that finds the store gone re-creates it first (restoreStore) and is tried again at once.
   */
  private async publish(s: LearnerState): Promise<Announcement> {
    const ids = this.workerIds ? workerIdsText(this.workerIds) : undefined;
    const ckpt = trainingCheckpoint(this.position(s), this.params!);
    const encoded = encodeCheckpoint(ckpt);
    const restore = () => this.restoreStore(false);
    // encoded once from the optimizer's live moments (no copy of them first): every attempt writes these bytes
    const moments = encodeOptimizerState({ version: s.version, checkpointDigest: encoded.digest, state: this.trainer!.optimizer.stateView(), ...this.averageState() });
    trace('encoded', { version: s.version });
    // The moments are stored beside the checkpoint's bytes, and the checkpoint is announced only once both are, so
    // every published checkpoint has them (learner-state.ts). In sequence they were on the critical path of every
    // batch (docs/performance-history/pipeline.md, "Round 8: pipe8").
    // The checkpoint's put goes first: its lookup (os.info) was sent behind the moments' chunks on the same
    // connection and waited for them (12.5 ms median at staleness 0 under load, round 15: s015); the moments' chunks
    // start on the next turn of the loop, after that request is on the wire.
    const write = async () => {
      let gate!: (p: Promise<unknown>) => void;
      const beforeAnnounce = new Promise<unknown>((r) => (gate = r));
      beforeAnnounce.catch(() => undefined); // adopts the moments' outcome: a put that failed first never awaits it
      const published = publishCheckpoint(this.store, ckpt, this.announceMeta(moments, ids), encoded, { beforeAnnounce });
      published.catch(() => undefined); // handled: awaited below
      await new Promise<void>((r) => setImmediate(r));
      const stored = this.learnerState.putEncoded(s.version, moments).then(() => trace('moments_stored', { version: s.version }));
      stored.catch(() => undefined); // handled: put awaits it before announcing, and finally below
      gate(stored);
      try {
        return await published;
      } finally {
        await stored.catch(() => undefined); // a retry never writes the moments beside an earlier attempt
      }
    };
    const ann = await this.retrying(`publishing checkpoint v${s.version}`, () => recreatingOnLoss(write, restore));
    this.stored?.add(s.version);
    this.publishedIds = { version: s.version, text: ids };
    return ann;
  }

  /** Puts the checkpoint of `s` (the current parameters) and its optimizer state once, no retries. */
  private async publishOnce(s: LearnerState): Promise<Announcement> {
    const ids = this.publishedIds?.version === s.version ? this.publishedIds.text : this.workerIds ? workerIdsText(this.workerIds) : undefined;
    const ckpt = trainingCheckpoint(this.position(s), this.params!);
    const encoded = encodeCheckpoint(ckpt);
    const moments = encodeOptimizerState({ version: s.version, checkpointDigest: encoded.digest, state: this.trainer!.optimizer.exportState(), ...this.averageState() });
    await this.learnerState.putEncoded(s.version, moments);
    return publishCheckpoint(this.store, ckpt, this.announceMeta(moments, ids), encoded);
  }

  /**
   * The weight average to store beside the moments (a copy: the next batch updates the live one): grpo.ema's in
   * the GRPO phase, sft.ema's (flow family) before it; one slot, the phase says which.
   */
  private averageState(): { average?: AverageState } {
    const sftEma = this.st?.refVersion === undefined && this.trainer instanceof FlowTrainer ? this.trainer.sftEma : undefined;
    const a = this.average ?? sftEma;
    return a ? { average: a.exportState() } : {};
  }

  /** Runs `fn` until it succeeds; gives up (AbandonedError) only when the learner stops. */
  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (this.ctx.stopping || this.closed) throw new AbandonedError(`${what} abandoned: stopping`);
        this.ctx.log.warn(`${what} failed (attempt ${attempt}), retrying: ${(e as Error).message}`);
        // a request lost to a dropped NATS connection is tried again at once: the retry's requests wait for the
        // reconnect themselves (lib/transport/nats-disconnect.ts); the pause is for a server that answered with an error
        if (!(e instanceof NatsDisconnectedError)) await sleep(this.publishRetryMs);
      }
    }
  }

  private async prune(s: LearnerState): Promise<void> {
    try {
      // a version published after this prune began is added to the same record; the record is only read here
      const stored = (this.stored ??= new Set(await this.store.versions()));
      stored.add(s.version);
      const deleted = await this.store.prune(checkpointsToKeep(this.ctx.config), { keep: s.refVersion !== undefined ? [s.refVersion] : [], stored });
      for (const v of deleted) stored.delete(v);
      await this.learnerState.prune(s.version);
    } catch (e) {
      this.stored = undefined; // which deletes went through is not known: the next prune lists the bucket again
      this.ctx.log.warn(`pruning old checkpoints failed (they stay; next time): ${(e as Error).message}`);
    }
  }
}

class AbandonedError extends Error {}

/** The numbers a step reports (TrainResult's diagnostics). */
interface StepFields {
  loss: number;
  grad_norm: number;
  kl?: number;
  clip_fraction?: number;
  ratio_mean?: number;
  logp_mismatch?: number;
  /** Flow family, GRPO: ratio, clip fraction and KL per trained step index. */
  flow_steps?: FlowStepMetrics__Output[];
  /** GRPO: the actions whose rows the same-version check excluded (absent: none). */
  excluded_actions?: number[];
  /** GRPO: the actions with a row no check examined (empty: every action was examined). */
  check_coverage?: { unchecked_actions: number[] };
}

/** Starts the learner (see the module comment); resolves once it is dialling the orchestrator. */
export async function runLearner(options: LearnerOptions = {}): Promise<LearnerHandle> {
  const { publishRetryMs = 1000, ...rest } = options;
  const o = resolveWorkerOptions('learner', rest);
  const role = new LearnerRole(o.device ?? 'cpu', o.maxBatch ?? LEARNER_DEFAULT_MAX_BATCH, publishRetryMs);
  const handle = await startWorker(role, o);
  return { ...handle, state: () => role.state(), params: () => role.paramsCopy() };
}

/** Whether `a` and `b` hold the same tensors with bit-for-bit the same values. */
function sameValues(a: TensorMap, b: TensorMap): boolean {
  if (a.size !== b.size) return false;
  for (const [name, t] of a) {
    const u = b.get(name);
    if (!u || u.data.length !== t.data.length) return false;
    for (let i = 0; i < t.data.length; i++) if (!Object.is(t.data[i], u.data[i])) return false;
  }
  return true;
}
