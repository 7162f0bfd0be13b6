// Shared by the reliability tests: the orchestrator's event log, fault timing, and a look into a finished
// local run's JetStream store (nats-server started again on the run's store directory).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort } from '../../lib/local/ports.ts';
import { writeLocalNatsUsers, type LocalNatsUsers } from '../../lib/local/nats-config.ts';
import { STREAMS_ACCOUNT } from '../../lib/transport/nats-permissions.ts';
import { CheckpointStore, connectNats, spawnNatsServer, type Announcement } from '../../lib/transport/index.ts';
import { storedAnnouncements } from '../helpers/nats.ts';
import type { RunEvent } from '../../orchestrator/run-state.ts';

export type Logged = RunEvent & { t: number };
export type Trained = Extract<Logged, { type: 'trained' }>;
/** A batch the trail records as applied (its version is then known; null only where the outcome is unknown). */
export type Applied = Trained & { applied: true; version: number };
export const isApplied = (e: Logged): e is Applied => e.type === 'trained' && e.applied === true;

export function events(dir: string): Logged[] {
  const f = join(dir, 'events.jsonl');
  if (!existsSync(f)) return [];
  // Read while the orchestrator appends: a last line without its newline is still being written, not an event.
  const lines = readFileSync(f, 'utf8').split('\n');
  lines.pop(); // '' after the last complete line, or the line still being written
  return lines.filter(Boolean).map((l) => JSON.parse(l) as Logged);
}

/** The highest batch seq the event log shows acknowledged (applied or not). */
export function lastTrainedSeq(dir: string): number {
  return events(dir).reduce((m, e) => (e.type === 'trained' && e.seq > m ? e.seq : m), 0);
}

/** A small seeded PRNG (mulberry32): the fault schedule is random but reproducible from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface StoreView {
  /** Every announcement in stream order (re-announcements included). */
  announcements: Announcement[];
  latest: Announcement | null;
  /** Versions still stored (not pruned), ascending. */
  versions: number[];
  /** sha256 digest of the latest checkpoint as fetched (verified by the store against its announcement). */
  latestFetchedDigest: string | null;
}

/**
 * Opens the JetStream store a local run left in `<out>/nats` and reads its checkpoint records. The run's streams live
 * in the accounts' streams account (lib/transport/nats-permissions.ts), so the server starts with the same accounts
 * (fresh passwords of its own) and the audit reads as the learner, whose grant reads every stream.
 */
export async function readRunStore(out: string, runId: string): Promise<StoreView> {
  const port = await freePort();
  const storeDir = join(out, 'nats');
  // a store written under the accounts has an account folder for the streams; the network-fault cluster's (one user,
  // no accounts: test/faults/cluster.ts) keeps them in the global account
  let users: LocalNatsUsers | undefined;
  if (existsSync(join(storeDir, 'jetstream', STREAMS_ACCOUNT))) users = writeLocalNatsUsers(mkdtempSync(join(tmpdir(), 'reliability-audit-')), runId);
  const server = await spawnNatsServer({ port, storeDir, ...(users ? { extraArgs: ['-c', users.configFile] } : {}) });
  if (users) rmSync(dirname(users.configFile), { recursive: true, force: true }); // read at start
  const nc = await connectNats({ url: server.url, name: 'reliability-audit', ...(users ? users.credentials('learner') : {}) });
  try {
    const store = await CheckpointStore.open(nc, { runId, readOnly: true });
    const announcements = await storedAnnouncements(nc, store);
    const latest = await store.latest();
    const latestFetchedDigest = latest ? (await store.get(latest.version, { expectDigest: latest.digest })).announcement.digest : null;
    return { announcements, latest, versions: await store.versions(), latestFetchedDigest };
  } finally {
    await nc.drain().catch(() => undefined);
    await server.stop();
  }
}

export interface AuditOptions {
  /** The run's folder: events.jsonl (the orchestrator's --events) and nats/ (its JetStream store). */
  dir: string;
  runId: string;
  sftSteps: number;
  grpoSteps: number;
  samplesPerBatch: number;
  sftBatchSize: number;
  /** Checkpoints the store keeps: max(nats.keepCheckpoints, maxStaleness + 1). */
  keep: number;
  /**
   * The store was lost during the run after this version (the network-fault suite's fault e): the versions up
   * to it need not be in the store (the learner puts back its newest one and the KL reference, announced
   * before it); every later one must.
   */
  storeLostAfter?: number;
}

export interface Audit {
  /** Batches applied exactly once by the learner (= all of them, or the audit threw). */
  appliedOnce: number;
  batches: number;
  /** GRPO samples trained exactly once; dropped with a counted reason; neither (always 0, or the audit threw). */
  trainedOnce: number;
  dropped: number;
  lost: number;
  /** Batches the learner applied while the orchestrator was down, acknowledged from its Hello. */
  caughtUp: number[];
  storedVersions: number[];
}

/**
 * Audits a finished run from two independent records, the orchestrator's event log and the JetStream store
 * (asserting; throws on the first violation): the run completed its batches; every batch seq was applied
 * exactly once (one announced checkpoint per version 0..N, version v carrying batch seq v, one digest per
 * version; no batch acknowledged as applied twice); versions only rise; every GRPO sample was trained exactly
 * once or dropped with a reason (each batch's samples are its dataset cursors); the final checkpoint is fetched
 * and verified, and the last `keep` versions and the KL reference are stored.
 */
export async function auditRun(o: AuditOptions): Promise<Audit> {
  const total = o.sftSteps + o.grpoSteps;
  // ---- the learner's record: one checkpoint per version, version v = batch seq v, versions only rise
  const store = await readRunStore(o.dir, o.runId);
  const byVersion = new Map<number, Set<string>>();
  let prev = -1;
  for (const a of store.announcements) {
    assert.ok(a.version >= prev, `announcements go up: v${a.version} after v${prev}`);
    prev = a.version;
    (byVersion.get(a.version) ?? byVersion.set(a.version, new Set()).get(a.version)!).add(a.digest);
    if (a.version > 0) assert.equal(Number(a.meta.last_batch_seq), a.version, `checkpoint v${a.version} holds batch seq ${a.meta.last_batch_seq}`);
  }
  const announced = [...byVersion.keys()].sort((a, b) => a - b);
  // after a lost store the learner puts back the KL reference (v = sftSteps) before its newest checkpoint
  const refPutBack = o.storeLostAfter !== undefined && announced[0] === o.sftSteps && announced.length > 1 && announced[1]! > o.sftSteps + 1;
  const first = o.storeLostAfter !== undefined ? announced[refPutBack ? 1 : 0]! : 0;
  // storeLostAfter is the orchestrator's last acknowledged batch when the store was removed; the learner announces
  // a version before the orchestrator logs its acknowledgement, so v(s+1) may already have been stored, and lost
  // with the store: the next one, v(s+2), then supersedes it (faults run, round 7: "announces v7" after v5).
  if (o.storeLostAfter !== undefined) assert.ok(first <= o.storeLostAfter + 2, `the store lost after v${o.storeLostAfter} announces v${first} onwards`);
  assert.deepEqual(announced.slice(refPutBack ? 1 : 0), Array.from({ length: total + 1 - first }, (_, v) => first + v), `one checkpoint per version ${first}..N, none missing`);
  for (const [v, d] of byVersion) assert.equal(d.size, 1, `version ${v} was published with ${d.size} different digests`);

  // ---- no checkpoint lost: the final one is fetchable and verified; the last K are all stored (+ the KL reference)
  assert.equal(store.latest?.version, total);
  assert.equal(store.latestFetchedDigest, store.latest?.digest);
  for (let v = total - o.keep + 1; v <= total; v++) assert.ok(store.versions.includes(v), `v${v} (one of the last ${o.keep}) is in the store: ${store.versions.join(',')}`);
  if (first <= o.sftSteps || refPutBack) assert.ok(store.versions.includes(o.sftSteps), `the KL reference v${o.sftSteps} is kept: ${store.versions.join(',')}`);

  // ---- the orchestrator's audit trail: applied batches rise, every sample trained once or dropped with a reason
  const ev = events(o.dir);
  const trained = ev.filter((e): e is Trained => e.type === 'trained');
  const applied = trained.filter(isApplied);
  assert.equal(new Set(applied.map((e) => e.seq)).size, applied.length, 'no batch acknowledged as applied twice');
  for (let i = 1; i < applied.length; i++) assert.ok(applied[i].seq > applied[i - 1].seq && applied[i].version > applied[i - 1].version, 'applied batches and versions only rise');
  const dropped = ev.filter((e): e is Extract<Logged, { type: 'dropped' }> => e.type === 'dropped');
  for (const d of dropped) assert.ok(d.reason, `sample ${d.sample} dropped with a reason`);
  const droppedCursors = new Set(dropped.map((d) => cursorOf(d.sample)));
  const trainedIn = new Map<number, number>(); // cursor -> batch seq
  const caughtUp: number[] = [];
  for (let k = 0; k < o.grpoSteps; k++) {
    const seq = o.sftSteps + k + 1;
    const expected = Array.from({ length: o.samplesPerBatch }, (_, j) => o.sftSteps * o.sftBatchSize + k * o.samplesPerBatch + j).filter((c) => !droppedCursors.has(c));
    // The learner applied seq exactly once (above). Which samples it held: the orchestrator's record of that
    // batch (applied, or answered "duplicate" after a restart). A batch the learner had applied while the
    // orchestrator was down is acknowledged from its Hello and has no record: its samples are its cursors.
    const rec = trained.find((e) => e.seq === seq && e.applied) ?? trained.find((e) => e.seq === seq);
    const cursors = rec ? rec.samples.map(cursorOf) : expected;
    if (!rec) caughtUp.push(seq);
    assert.deepEqual([...cursors].sort((a, b) => a - b), expected, `batch ${seq} trained the samples of its cursors`);
    for (const c of cursors) {
      assert.ok(!trainedIn.has(c), `sample at cursor ${c} trained in batches ${trainedIn.get(c)} and ${seq}`);
      trainedIn.set(c, seq);
    }
  }
  assert.equal(trainedIn.size + droppedCursors.size, o.grpoSteps * o.samplesPerBatch, 'every GRPO sample trained or dropped');

  return {
    appliedOnce: total,
    batches: total,
    trainedOnce: trainedIn.size,
    dropped: droppedCursors.size,
    lost: o.grpoSteps * o.samplesPerBatch - trainedIn.size - droppedCursors.size,
    caughtUp,
    storedVersions: store.versions,
  };
}

function cursorOf(sampleId: string): number {
  const m = /^c(\d+):/.exec(sampleId);
  assert.ok(m, `sample id ${sampleId} names its cursor`);
  return Number(m[1]);
}
