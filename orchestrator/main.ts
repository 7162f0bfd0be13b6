// The orchestrator process: gRPC server for the workers, the run's Coordinator, run state in a NATS
// JetStream key-value bucket (so a restarted orchestrator resumes where it stopped), /metrics and /health.

import { connectNatsWaiting } from './first-nats-connect.ts';
import { checkEventLogWritable, openEventLog } from '../lib/log/event-log.ts';
import { traceRole } from '../lib/log/trace.ts';
import { quoteForLog } from '../lib/log/quote.ts';
import { z } from 'zod';
import type { RunConfig } from '../lib/config/index.ts';
import { openRunDataset } from '../lib/config/dataset.ts';
import { assertBatchesFit } from '../lib/config/batch-fit.ts';
import { SetupError } from '../lib/config/setup-error.ts';
import { createMetrics, describeMetricsToken, startMetricsServer, type Health, type MetricsServer } from '../lib/metrics/index.ts';
import {
  CheckpointStore,
  checkListenAuth,
  closeNats,
  describeNatsAuth,
  forEachItem,
  CertificateExpiryWatch,
  caBundleFiles,
  clientCertificateFiles,
  isStoreLost,
  natsServerCertificate,
  onNatsReconnect,
  RevisionConflictError,
  RunStateStore,
  startOrchestratorServer,
  tokenCredentialId,
  WORKER_ID_PATTERN,
  BOUND_CREDENTIAL_PATTERN,
  BOUND_KEY_PATTERN,
  WORKER_ID_RULE,
  type NatsAuth,
  type OrchestratorServer,
  type ServerAuth,
  type WorkerSession,
} from '../lib/transport/index.ts';
import type { AwaitWorkers } from './await-workers.ts';
import { Coordinator } from './coordinator.ts';
import { BOUND_IDS_MAX } from './id-bindings.ts';
import { QUARANTINE_STORED_MAX, QUARANTINE_WINDOW_HITS_STORED_MAX, QUARANTINE_WINDOWS_STORED_MAX } from './quarantine.ts';
import { deviceOf, shutdown } from './sessions.ts';
import { lastLoggedTrained, type Progress, type RunState } from './run-state.ts';
import { LEARNER_RECORD_KEY } from '../lib/grpo/exclusion-reports.ts';
import { learnerRecordReader } from './learner-record.ts';
import { createRunMonitor, RunMonitor } from './monitor.ts';
import { recordFromMeta } from './inferred-trained.ts';
import { batchLayout } from '../lib/grpo/sampling.ts';
import { LayoutGuard } from './layout-guard.ts';
import { StateRecovery } from './state-recovery.ts';

export interface OrchestratorOptions {
  config: RunConfig;
  /** host:port for gRPC; default config.orchestrator.listen. */
  listen?: string;
  natsUrl?: string;
  /** NATS credentials and TLS (resolveNatsAuth). */
  natsAuth?: NatsAuth;
  metricsPort?: number;
  metricsHost?: string;
  /** Bearer token of the metrics port (lib/metrics startMetricsServer: every path but /health needs it). Default none. */
  metricsToken?: string;
  auth?: ServerAuth;
  onProgress?: (p: Progress) => void;
  /** Appends every RunEvent as a JSON line to this file. */
  eventsFile?: string;
  /** The run's first GRPO batch waits for these workers (--await-workers; await-workers.ts). */
  awaitWorkers?: AwaitWorkers;
  /**
   * Rollout worker ids whose quarantine, recorded in the run state, is lifted at start (--lift-quarantine): they may
   * connect again. Stored with the next acknowledgement (until then a restart without the flag keeps them refused).
   */
  liftQuarantine?: string[];
  /**
   * `<role>/<worker id>` pairs whose binding to a role token (orchestrator/id-bindings.ts), recorded in the run state,
   * is dropped at start (--unbind): the next role token granting any id that uses the id binds it. Stored with the
   * next acknowledgement (until then a restart without the flag restores the binding).
   */
  unbind?: string[];
  log?: (line: string) => void;
}

export interface RunningOrchestrator {
  readonly port: number;
  readonly address: string;
  readonly metricsUrl: string;
  readonly coordinator: Coordinator;
  /** Resolves when the run's last batch is acknowledged; rejects if the run cannot go on. */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

/** The run state is retried this many times, PERSIST_RETRY_MS apart, before the orchestrator gives up (and is restarted). */
const PERSIST_ATTEMPTS = 60;
const PERSIST_RETRY_MS = 1000;
/** The Shutdown's reason when the run is over. */
const RUN_COMPLETE = 'run complete';


/**
 * The run state as stored: RunState (its quarantined rollout worker ids: orchestrator/quarantine.ts) and the batch
 * layout (lib/grpo/sampling.ts batchLayout: the fields a batch number's samples are a function of) its batches were
 * acknowledged under: a restart under another layout would resume at the same number over other samples (round 26,
 * review26a F2), and is refused naming the fields; any other field may change (review26c F2: a hash of the whole
 * configuration refused grpo.steps raised, leases, evaluation, ...). A state stored by round 26 records configHash (a
 * hash of the whole configuration) instead, one stored before it neither: both are accepted and given the layout.
 */
const runStateSchema = z.object({
  ackedSeq: z.number().int().nonnegative(),
  learnerVersion: z.number().int().nonnegative(),
  quarantined: z.array(z.string().regex(WORKER_ID_PATTERN)).max(QUARANTINE_STORED_MAX).optional(),
  /** Round 29: the quarantine windows (RunState.quarantineWindows); absent in an older state (counts start from zero). */
  quarantineWindows: z.record(z.string().regex(WORKER_ID_PATTERN), z.array(z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)).max(QUARANTINE_WINDOW_HITS_STORED_MAX))
    .refine((w) => Object.keys(w).length <= QUARANTINE_WINDOWS_STORED_MAX, `at most ${QUARANTINE_WINDOWS_STORED_MAX} worker ids`).optional(),
  /** Round 29: worker ids bound to a role token (RunState.boundIds); absent in an older state. */
  boundIds: z.record(z.string().regex(BOUND_KEY_PATTERN), z.string().regex(BOUND_CREDENTIAL_PATTERN))
    .refine((b) => Object.keys(b).length <= BOUND_IDS_MAX, `at most ${BOUND_IDS_MAX} worker ids`).optional(),
  batchLayout: z.record(z.string(), z.unknown()).optional(),
  /** Round 33: RunState.recoveredFrom. */
  recoveredFrom: z.number().int().nonnegative().optional(),
  /** Round 26 only: read (to say so), never written. */
  configHash: z.string().optional(),
});

/**
 * Removes `ids` from the state's quarantine (--lift-quarantine), logging each; an id not quarantined is logged as such.
 * A lifted id's count starts from zero: its stored window, if any, goes too.
 */
export function liftQuarantine(state: RunState, ids: readonly string[], log: (line: string) => void): void {
  if (!ids.length) return;
  const held = new Set(state.quarantined ?? []);
  for (const id of ids) log(held.delete(id) ? `quarantine of rollout worker ${JSON.stringify(id)} lifted (--lift-quarantine): it may connect again` : `--lift-quarantine ${JSON.stringify(id)}: no such worker id is quarantined in run state`);
  if (held.size) state.quarantined = [...held].sort();
  else delete state.quarantined;
  if (state.quarantineWindows) {
    const windows = Object.fromEntries(Object.entries(state.quarantineWindows).filter(([id]) => !ids.includes(id)));
    if (Object.keys(windows).length) state.quarantineWindows = windows;
    else delete state.quarantineWindows;
  }
}

/**
 * Drops `keys` (`<role>/<worker id>`, as --unbind gives them: parseUnbind) from the state's id bindings, logging each;
 * a key not bound is logged as such.
 */
export function unbindIds(state: RunState, keys: readonly string[], log: (line: string) => void): void {
  if (!keys.length) return;
  const bound = { ...(state.boundIds ?? {}) };
  for (const key of keys) {
    const had = Object.hasOwn(bound, key);
    delete bound[key];
    log(had ? `worker id ${key} unbound (--unbind): the next role token granting any id that uses it binds it` : `--unbind ${key}: no such worker id is bound in run state`);
  }
  if (Object.keys(bound).length) state.boundIds = bound;
  else delete state.boundIds;
}

/** An --unbind value, `<role>/<worker id>` (role rollout, reward or learner, any case), as a binding key; throws naming it. */
export function parseUnbind(value: string): string {
  const m = /^([A-Za-z]+)\/(.*)$/.exec(value);
  const role = m ? m[1]!.toLowerCase() : '';
  if (!m || !['rollout', 'reward', 'learner'].includes(role) || !WORKER_ID_PATTERN.test(m[2]!)) {
    throw new Error(`--unbind ${JSON.stringify(value)}: expected <role>/<worker-id>, role rollout, reward or learner, the worker id ${WORKER_ID_RULE} (e.g. rollout/rollout-3)`);
  }
  return `${role}/${m[2]!}`;
}

/**
 * A fault point for tests (test/orchestrator/quarantine-kill-ack.test.ts): set to a batch seq, the orchestrator never
 * writes that batch's acknowledgement (it logs a line and waits), so a test can kill it between the batch's
 * TrainResult and its acknowledgement without a race. Never set outside tests.
 */
export const HOLD_ACK_ENV = 'RECOVERY_GRPO_TEST_HOLD_ACK';

export async function runOrchestrator(o: OrchestratorOptions): Promise<RunningOrchestrator> {
  const config = o.config;
  const held = process.env[HOLD_ACK_ENV];
  const holdAckOf = held !== undefined && /^[1-9][0-9]{0,8}$/.test(held) ? Number(held) : undefined;
  traceRole('orch');
  const log = o.log ?? ((l: string) => console.log(`[orchestrator] ${l}`));
  if (held !== undefined) {
    log(`WARNING: ${HOLD_ACK_ENV} is set (${quoteForLog(held, 32)}), a fault point for tests only: ${holdAckOf !== undefined ? `the acknowledgement of batch ${holdAckOf} is never written and the run stops there` : 'not a batch seq, ignored'} (docs/testing.md, "Test-only fault points"); unset it outside tests`);
  }
  const listen = o.listen ?? config.orchestrator.listen;
  // Refusals that need nothing running come first: an unauthenticated public address. (The reward expression
  // and the advantage variant were checked when the configuration was loaded: lib/config/schema.ts.)
  checkListenAuth(listen, o.auth);
  const unbind = (o.unbind ?? []).map(parseUnbind);
  assertBatchesFit(config);
  await (await import('../lib/models/bundle.ts')).checkNetworkOf(config); // imported network: its start-up check (a SetupError), before NATS
  if (o.eventsFile !== undefined) checkEventLogWritable(o.eventsFile, 'eventsFile'); // before NATS and the run state
  const metrics = createMetrics(config.run.id, 'orchestrator');
  // The training data, before NATS: a missing folder or manifest is a SetupError (exit 78), which no restart cures;
  // until round 26 it was opened after NATS and a plain error, so the local run restarted the orchestrator 5 times
  // (each time creating the run state) before it stopped the run.
  const dataset = await openRunDataset(config, 'train', (path, reason) => {
    metrics.get('bad_images_skipped_total').inc({ reason: 'unreadable' });
    log(`skipped ${path}: ${reason}`);
  }).catch((e: unknown) => {
    throw new SetupError(`data.source (${config.data.source.kind}): ${(e as Error)?.message ?? e}`, { cause: e });
  });
  const natsUrl = o.natsUrl ?? config.nats.url;
  // an outage is waited out (logged), refused credentials are a SetupError (first-nats-connect.ts)
  const nc = await connectNatsWaiting({ url: natsUrl, name: `orchestrator-${config.run.id}`, ...o.natsAuth }, log);
  log(`connected to NATS at ${natsUrl} (${describeNatsAuth(o.natsAuth ?? {})})`);
  // when its NATS client certificate, its NATS CA bundle and the certificate NATS serves expire, on /metrics, read
  // every minute from now, when NATS answers (lib/transport/certificate-expiry.ts; its own served certificate and
  // client CA bundle: onTlsReload below)
  const natsTls = o.natsAuth?.tls ?? (natsUrl.startsWith('tls://') ? {} : undefined);
  const certificates = new CertificateExpiryWatch([...clientCertificateFiles({ natsCert: natsTls?.certFile }), ...caBundleFiles({ natsCa: natsTls?.caFile }), ...(natsTls ? [natsServerCertificate(natsUrl, natsTls)] : [])], {
    onExpiry: (certificate, notAfterMs) => metrics.get('tls_certificate_expiry_timestamp_seconds').set({ certificate }, notAfterMs / 1000),
    onError: (message) => log(`certificate expiry not read: ${message}`),
  });
  const store = await RunStateStore.open(nc, { runId: config.run.id, schema: runStateSchema });
  const layout = batchLayout(config);
  /** What is written: the state and this configuration's batch layout. */
  const record = (s: RunState) => ({ ackedSeq: s.ackedSeq, learnerVersion: s.learnerVersion, ...(s.quarantined?.length ? { quarantined: s.quarantined } : {}), ...(s.quarantineWindows ? { quarantineWindows: s.quarantineWindows } : {}), ...(s.boundIds ? { boundIds: s.boundIds } : {}), ...(s.recoveredFrom !== undefined && s.ackedSeq === 0 ? { recoveredFrom: s.recoveredFrom } : {}), batchLayout: layout });
  const checkpoints = await CheckpointStore.open(nc, { runId: config.run.id, readOnly: true });
  // the learner's record (its skips and kept exclusion reports: lib/grpo/exclusion-reports.ts), read, never written
  const learnerRecord = await RunStateStore.open(nc, { runId: config.run.id, key: LEARNER_RECORD_KEY, schema: z.unknown() });
  const stored = await store.get();
  const storedLayout = stored?.value.batchLayout;
  const guard = new LayoutGuard(config.run.id, layout, metrics, log);
  if (storedLayout) {
    try {
      guard.checkStored(storedLayout, `stored run state (after batch ${stored!.value.ackedSeq})`);
    } catch (e) {
      await closeNats(nc);
      throw e;
    }
  } else {
    // No layout stored (no run state: a new run, or the state lost with the NATS store while this process was down,
    // or deleted; or one stored before the layout was): a learner's Hello would catch the new state up to the newest
    // checkpoint's last_batch_seq, so that checkpoint must number batches as this configuration does (review26c F3).
    const ann = await checkpoints.latest().catch(async (e: unknown) => {
      await closeNats(nc);
      throw e;
    });
    const checked = ann ? guard.checkpoint(ann) : { changed: [], trusted: true };
    if (checked === null) log(`the newest checkpoint v${ann!.version} records no batch layout (written by an older learner, before fix26b of round 26): not compared with this configuration's`);
    else if (checked.changed.length) {
      await closeNats(nc);
      throw guard.refusal(`${stored ? 'its stored run state records no batch layout, and ' : 'it has no run state, and '}its newest checkpoint v${ann!.version} (last_batch_seq ${String(ann!.meta['last_batch_seq'])})`, checked.changed);
    }
  }
  const state: RunState = stored
    ? { ackedSeq: stored.value.ackedSeq, learnerVersion: stored.value.learnerVersion, ...(stored.value.quarantined ? { quarantined: stored.value.quarantined } : {}), ...(stored.value.quarantineWindows ? { quarantineWindows: stored.value.quarantineWindows } : {}), ...(stored.value.boundIds ? { boundIds: stored.value.boundIds } : {}), ...(stored.value.recoveredFrom !== undefined ? { recoveredFrom: stored.value.recoveredFrom } : {}) }
    : { ackedSeq: 0, learnerVersion: 0 };
  // Round 33: no run state at all (a new run, or the state lost with the NATS store while this process was down, or
  // deleted) while the newest checkpoint shows progress is a lost state: the quarantine and bindings are taken back
  // from that checkpoint (state-recovery.ts), said and counted. A stored state is the run's own word, even one that
  // acknowledged nothing (the learner may have published batch 1 before this process restarted, review33 F3):
  // nothing is taken back over it (a lifted id stays lifted). At a catch-up of a state this process created, only a
  // checkpoint of a batch it never sent is a loss (coordinator.ts catchUp).
  const recovery = new StateRecovery({ metrics, log, lift: o.liftQuarantine ?? [], unbind });
  const fresh = !stored;
  /** The loss was found (at start or at a catch-up): the take-back is done once. */
  let lossFound = false;
  if (fresh) {
    const ann = await checkpoints.latest().catch(async (e: unknown) => {
      await closeNats(nc);
      throw e;
    });
    const seq = Number(ann?.meta['last_batch_seq']);
    // a checkpoint whose layout cannot be read is not trusted (layout-guard.ts), nor one of another layout (refused at
    // the catch-up): nothing is taken from it either
    const checked = ann ? guard.checkpoint(ann) : null;
    if (ann && Number.isSafeInteger(seq) && seq > 0 && (!checked || (checked.trusted && !checked.changed.length))) {
      lossFound = true;
      const got = recovery.read(ann.version, ann.meta, false);
      if (got.kind === 'read') {
        const quarantined = [...new Set([...(state.quarantined ?? []), ...got.ids.quarantined])].slice(0, QUARANTINE_STORED_MAX).sort();
        const boundIds = Object.fromEntries(Object.entries({ ...got.ids.boundIds, ...state.boundIds }).slice(-BOUND_IDS_MAX));
        if (quarantined.length) state.quarantined = quarantined;
        if (Object.keys(boundIds).length) state.boundIds = boundIds;
      }
      recovery.lost(ann.version, seq, got, 'at start');
      state.recoveredFrom = ann.version;
    }
  }
  let revision = stored?.revision ?? (await store.create(record(state)));
  if (stored) log(`resuming run ${config.run.id} after batch ${state.ackedSeq} (policy version ${state.learnerVersion})`);
  liftQuarantine(state, o.liftQuarantine ?? [], log);
  unbindIds(state, unbind, log);
  if (state.quarantined?.length) log(`${state.quarantined.length} rollout worker id(s) quarantined earlier in the run stay refused: ${state.quarantined.slice(0, 16).map((id) => JSON.stringify(id)).join(', ')}${state.quarantined.length > 16 ? ', ...' : ''}`);
  if (stored && !storedLayout) {
    // stored before the layout was recorded: the layout it was acknowledged under is not known; this one is taken as the run's
    revision = await store.update(record(state), revision);
    log(`the stored run state records no batch layout (${stored.value.configHash !== undefined ? `stored by a round-26 orchestrator, which recorded a hash of the whole configuration (${stored.value.configHash.slice(0, 12)}), not compared` : 'stored before round 26'}): resuming under this configuration and recording its layout; a later restart that changes run.seed, data.*, sft.steps, sft.batchSize or grpo.samplesPerBatch is refused`);
  }
  // The orchestrator owns its run state: when the server lost it (store-loss.ts), it is re-created and written
  // again from memory (create: compare-and-set against a missing value), after a write found it gone or after
  // any reconnection that finds it gone; one at a time with the acknowledgements' writes.
  let stateWrites: Promise<unknown> = Promise.resolve();
  /** Re-creates the bucket and the state when missing; true when `current` was written. */
  const restoreState = async (current: RunState): Promise<boolean> => {
    const recreated = await store.recreate();
    if (!recreated && (await store.get()) !== null) return false;
    revision = await store.create(record(current));
    log(`the run state was lost with the NATS store${recreated ? ' (bucket re-created)' : ''}: written again from memory (batch ${current.ackedSeq}, policy version ${current.learnerVersion})`);
    return true;
  };

  // A reconnecting learner's claimed progress is checked against its newest announced checkpoint whose
  // object exists (orchestrator/coordinator.ts catchUp), and only if it numbers batches as this configuration does
  // (its batch layout; a SetupError otherwise, which fails the run with exit 78). A checkpoint whose layout cannot be
  // read is not trusted (null: no catch-up), and counted once as an unverified claim (review26d F3).
  const publishedProgress = async () => {
    const ann = await checkpoints.latest();
    // the object's own record (a direct read), not a listing of the bucket: listing takes a consumer, which the
    // orchestrator's NATS user may not make (docs/security.md)
    if (!ann || (await checkpoints.storedMeta(ann.version)) === null) return null;
    const checked = guard.checkpoint(ann);
    if (checked?.changed.length) throw guard.refusal(`its newest checkpoint v${ann.version} (last_batch_seq ${String(ann.meta['last_batch_seq'])})`, checked.changed);
    if (checked && !checked.trusted) return null;
    const seq = Number(ann.meta['last_batch_seq']);
    return Number.isSafeInteger(seq) && seq >= 0 ? { version: ann.version, lastBatchSeq: seq, meta: ann.meta } : null;
  };
  // what each stored checkpoint records, for batches acknowledged without a TrainResult (inferred-trained.ts)
  const checkpointRecord = async (version: number) => recordFromMeta(version, await checkpoints.storedMeta(version));
  // the newest checkpoint a rollout worker can have used: a result claiming a newer one is refused (grpo-groups.ts)
  const announcedVersion = async () => (await checkpoints.latest())?.version ?? null;

  // The web page's history and the periodic evaluation (eval.everyVersions), fed by the coordinator's progress.
  let coordinator: Coordinator | undefined;
  // one open file for the coordinator's and the monitor's lines (lib/log/event-log.ts openEventLog), closed at stop
  const events = o.eventsFile ? openEventLog(o.eventsFile) : undefined;
  const monitor = await createRunMonitor({ config, metrics, nc, coordinator: () => coordinator, totalBatches: config.sft.steps + config.grpo.steps, events, log });
  coordinator = new Coordinator({
    config,
    dataset,
    metrics,
    state,
    log,
    publishedProgress: () => retryingNats('reading the newest checkpoint announcement', publishedProgress, (e) => e instanceof SetupError),
    checkpointRecord,
    announcedVersion,
    exclusionReports: learnerRecordReader(learnerRecord, log, retryingNats),
    // a fresh state caught up past 0 by a Hello (the checkpoint put back after this process started): the loss is
    // found there, once
    recoverWorkerIds: (p) => {
      if (!fresh || lossFound || !p.meta) return undefined;
      lossFound = true;
      const got = recovery.read(p.version, p.meta, true);
      recovery.lost(p.version, p.lastBatchSeq, got, `at learner's catch-up to batch ${p.lastBatchSeq}`);
      return got.kind === 'read' ? got.ids : undefined;
    },
    ...(o.awaitWorkers ? { awaitWorkers: o.awaitWorkers } : {}),
    ...(o.auth?.roleTokens?.length ? { roleTokenCredentials: new Set(o.auth.roleTokens.map((g) => tokenCredentialId(g.token))) } : {}),
    onProgress: (p) => {
      monitor.progress(p);
      o.onProgress?.(p);
    },
    onEvent: events ? (e) => events.append(e) : undefined,
    persist: (next) => {
      if (holdAckOf !== undefined && next.ackedSeq === holdAckOf) {
        // a fault point for tests only (HOLD_ACK_ENV): the acknowledgement is never written, and the process waits to
        // be killed between a TrainResult and its acknowledgement
        log(`${HOLD_ACK_ENV}: holding the acknowledgement of batch ${holdAckOf} before writing it`);
        return new Promise<void>(() => undefined);
      }
      const write = stateWrites.then(() => persistState(next));
      stateWrites = write.catch(() => undefined);
      return write;
    },
  });

  // A kill between persisting an acknowledgement and logging it leaves the event log a batch short: log it now,
  // before any worker connects (a learner's catch-up then starts after the stored state, as always).
  if (stored && o.eventsFile) {
    const c = coordinator;
    const last = lastLoggedTrained(o.eventsFile, (seq) => c.firstCursorAfter(seq));
    coordinator.loggedDrops(last.dropped);
    const n = await coordinator.recordUnlogged(last.seq, last.appliedVersion);
    if (n) log(`the event log missed ${n} acknowledged batch(es) up to ${state.ackedSeq} (killed between storing and logging): recorded`);
  }

  /**
   * Runs `op` until it succeeds, as long as NATS may come back (nats-server restarting, a stalled connection):
   * PERSIST_ATTEMPTS tries, PERSIST_RETRY_MS apart; an error `final` names, or any once the connection is closed for
   * good, is thrown at once. Every NATS read or write an acknowledgement waits for goes through it: the run-state write,
   * and the newest checkpoint's progress a `duplicate` answer or a Hello's catch-up is checked against (review24d: a
   * short stall there failed the whole run, where the write beside it was retried).
   */
  async function retryingNats<T>(what: string, op: (attempt: number) => Promise<T>, final: (e: unknown) => boolean = () => false): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await op(attempt);
      } catch (e) {
        if (final(e) || attempt >= PERSIST_ATTEMPTS || nc.isClosed()) throw e;
        log(`${what} failed (attempt ${attempt}; NATS down?), retrying: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, PERSIST_RETRY_MS));
      }
    }
  }

  function persistState(next: RunState): Promise<void> {
    // Compare-and-set: a second orchestrator on the same run would fail here instead of clobbering.
    // NATS unreachable (nats-server restarting): retried (retryingNats). A conflict right after such a failure
    // may be our own write whose answer was lost: if the stored value is ours, take its revision.
    return retryingNats('storing the run state', async (attempt) => {
      try {
        revision = await store.update(record(next), revision);
        return;
      } catch (err) {
        let e = err;
        if (isStoreLost(e) && !nc.isClosed()) {
          // the bucket is gone (the store lost): re-created, and this state created in it; if it was there after all
          // (re-created by another writer), the compare-and-set again on the next try
          try {
            if (await restoreState(next)) return;
          } catch (again) {
            e = again;
          }
        }
        if (e instanceof RevisionConflictError) {
          const cur = attempt > 1 ? await store.get().catch(() => null) : null;
          if (cur && cur.value.ackedSeq === next.ackedSeq && cur.value.learnerVersion === next.learnerVersion) {
            revision = cur.revision;
            return;
          }
        }
        throw e;
      }
    }, (e) => e instanceof RevisionConflictError);
  }
  const stopReconnectWatch = onNatsReconnect(nc, () => {
    const check = stateWrites.then(async () => {
      for (let attempt = 1; attempt <= 10 && !nc.isClosed(); attempt++) {
        try {
          await restoreState(coordinator!.state);
          return;
        } catch (e) {
          log(`checking the run state after a reconnection failed (attempt ${attempt}): ${(e as Error).message}`);
          await new Promise((r) => setTimeout(r, PERSIST_RETRY_MS));
        }
      }
    });
    stateWrites = check.catch(() => undefined);
  });

  /** The served certificate's and the client CA bundle's (mutual TLS) expiry, from the set in use. */
  const servedExpiry = (st: { notAfterMs: number; caNotAfterMs?: number }) => {
    const gauge = metrics.get('tls_certificate_expiry_timestamp_seconds');
    gauge.set({ certificate: 'grpc_server' }, st.notAfterMs / 1000);
    if (st.caNotAfterMs !== undefined) gauge.set({ certificate: 'grpc_ca' }, st.caNotAfterMs / 1000);
  };
  /** Set when the run completed and every connected worker was told to shut down (`done`, below). */
  let completed = false;
  const server: OrchestratorServer = await startOrchestratorServer({
    listen,
    maxMessageBytes: config.orchestrator.maxMessageBytes,
    auth: o.auth,
    heartbeatTimeoutMs: config.orchestrator.heartbeatSeconds * 3000,
    // the certificate's and the client CA bundle's expiry on /metrics
    // (recovery_grpo_tls_certificate_expiry_timestamp_seconds): set at start, moved by a renewal
    onTlsReload: (st) => {
      log(`auth.tls renewed: certificate serial ${st.serial}${st.caCertificates ? `, ${st.caCertificates} client CA certificate(s)` : ''}`);
      servedExpiry(st);
    },
    onConnect: async (session: WorkerSession) => {
      // a second learner is refused before its Welcome: a learner initialises (loads its state) on the first Welcome,
      // and one refused after it kept that state and trained from it later (review24e)
      // a worker id bound to another role token (orchestrator/id-bindings.ts) is refused first, with PERMISSION_DENIED
      const bound = coordinator.refuseBound(session);
      if (bound) {
        log(`refused ${session.role.toLowerCase()} ${session.workerId}: ${bound}`);
        return;
      }
      const refused = completed ? undefined : coordinator.refuseSecondLearner(session);
      if (refused) {
        log(`refused learner ${session.workerId}: ${refused}`);
        return;
      }
      // a quarantined worker id (orchestrator/quarantine.ts) is refused for the rest of the run, with PERMISSION_DENIED
      const quarantined = coordinator.refuseQuarantined(session);
      if (quarantined) {
        log(`refused ${session.role.toLowerCase()} ${session.workerId}: ${quarantined}`);
        return;
      }
      await session.send({
        welcome: {
          run_id: config.run.id,
          config_json: JSON.stringify(config),
          policy_version: coordinator.state.learnerVersion,
          heartbeat_interval_ms: config.orchestrator.heartbeatSeconds * 1000,
        },
      });
      log(`${session.role.toLowerCase()} ${session.workerId} connected (${quoteForLog(deviceOf(session), 64)})`); // the worker's own text: quoted (docs/security.md)
      coordinator.track(session);
      // a worker that was not connected when the run completed (reconnecting, or this orchestrator restarted after
      // storing the last acknowledgement) is told at once: otherwise it waits for work, and reconnects for ever once
      // this process stops (a Kubernetes learner Job never completes: review24d)
      if (completed) shutdown(session, RUN_COMPLETE);
      else coordinator.attach(session);
      // synchronously per message (no Promise and microtask per result; lib/transport/queue.ts)
      void forEachItem(session.messages, (msg) => coordinator.handle(session, msg));
      void session.closed.then((end) => log(`${session.role.toLowerCase()} ${session.workerId} left (${end.details || end.code})`));
    },
  });
  const tlsInUse = server.tlsStatus();
  if (tlsInUse) servedExpiry(tlsInUse);

  const metricsServer: MetricsServer = await startMetricsServer({
    port: o.metricsPort ?? config.metrics.port,
    host: o.metricsHost,
    ...(o.metricsToken !== undefined ? { token: o.metricsToken } : {}),
    registry: metrics.registry,
    routes: monitor.routes(),
    publicPaths: RunMonitor.PAGE_PATHS, // the page itself; it sends the token (from /#token=...) for its data
    // what /health answers beside `ok` is `detail` only (lib/metrics): the run's state goes there, in the workers'
    // field spelling (until round 26 these fields sat beside `ok` and were never sent: detail was null); only a request
    // with the metrics token sees it, if there is one
    health: (): Health => ({
      ok: !nc.isClosed(),
      detail: {
        role: 'orchestrator',
        run_id: config.run.id,
        phase: coordinator.phase,
        acked_batch: coordinator.state.ackedSeq,
        policy_version: coordinator.state.learnerVersion,
        workers: coordinator.workers.map((w) => ({ role: w.role.toLowerCase(), worker_id: w.workerId, device: w.device })),
      },
    }),
  });
  log(`listening on ${server.address}; metrics on ${metricsServer.url}/metrics${describeMetricsToken(o.metricsToken)}`);
  coordinator.start();
  const done = coordinator.done.then(() => {
    log(`run ${config.run.id} complete at policy version ${coordinator.state.learnerVersion}`);
    completed = true;
    coordinator.shutdownAll(RUN_COMPLETE);
  });

  let stopped = false;
  return {
    port: server.port,
    address: server.address,
    metricsUrl: metricsServer.url,
    coordinator,
    done,
    async stop() {
      if (stopped) return;
      stopped = true;
      coordinator.close();
      stopReconnectWatch();
      await server.close({ graceMs: 1000 });
      await metricsServer.close();
      await monitor.close();
      events?.close();
      certificates.close();
      await closeNats(nc); // bounded: a connection that reads nothing must not hold the orchestrator's exit
    },
  };
}
