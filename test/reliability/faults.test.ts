// Fault injection, end to end: nats-server and the four roles as real processes on loopback (the local run's
// supervisor restarts whatever dies, nats-server with the same JetStream store and port). During one run,
// kill -9 each of them in turn at a seeded random moment: a rollout worker, the reward worker, the learner,
// the orchestrator and nats-server. Then audit the run from the orchestrator's event log and from the
// JetStream store itself: the run completes its steps; every batch seq is applied exactly once by the learner
// (one announced checkpoint per version, version v carries batch seq v); every GRPO sample is trained exactly
// once or dropped with a counted reason; versions only rise; the final checkpoint is fetchable and verified,
// and the last K versions are all in the store. Prints the faults injected and survived.
//
// RELIABILITY_SEED=<n> picks another fault schedule (the default is fixed, so a failure can be replayed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runLocal } from '../../lib/local/local-run.ts';
import type { Supervisor } from '../../lib/local/supervisor.ts';
import { events, lastTrainedSeq, prng, readRunStore, type Logged, type Trained } from './helpers.ts';

const SEED = Number(process.env.RELIABILITY_SEED ?? 20240607);
const SFT = 4;
const GRPO = 40;
const S = 2;
const SFT_BATCH = 4;
const KEEP = 3;
const TINY = [
  'data.source.kind=procedural', 'data.size=16', 'data.source.count=64', 'model.width=4', 'model.depth=1', `sft.batchSize=${SFT_BATCH}`, 'grpo.groupSize=4',
  `grpo.samplesPerBatch=${S}`, 'eval.samples=4', 'orchestrator.leaseSeconds=10', 'orchestrator.heartbeatSeconds=1', `nats.keepCheckpoints=${KEEP}`,
];
const TARGETS = ['rollout-0', 'reward-0', 'learner', 'orchestrator', 'nats'] as const;

interface Fault {
  target: (typeof TARGETS)[number];
  /** Batches to let through after the previous fault recovered (or after the warm start, for the first). */
  gap: number;
  /** Then wait this long: a random stage of the next batch's rollout, scoring or training. */
  delayMs: number;
  /** Filled in when injected. */
  at?: number;
  pid?: number;
  seqAtKill?: number;
  recoveredMs?: number;
}

function schedule(seed: number): Fault[] {
  const r = prng(seed);
  return TARGETS.map((target) => ({ target, gap: 1 + Math.floor(r() * 3), delayMs: Math.floor(r() * 600) }));
}

/**
 * Fault i fires `delayMs` after the event log shows `gap` more batches than when fault i-1 recovered (the first
 * batch acknowledged after its kill). One fault at a time: each must be recovered from before the next.
 */
function inject(sup: Supervisor, dir: string, faults: Fault[], log: (l: string) => void): void {
  let i = 0;
  let base = SFT - 1;
  let armed = false;
  const timer = setInterval(() => {
    const f = faults[i];
    if (!f) return clearInterval(timer);
    const seq = lastTrainedSeq(dir);
    const prev = faults[i - 1];
    if (prev && prev.recoveredMs === undefined) {
      if (seq > prev.seqAtKill!) {
        prev.recoveredMs = Date.now() - prev.at!;
        base = seq;
      }
      return;
    }
    if (armed || seq < base + f.gap) return;
    armed = true;
    setTimeout(() => {
      f.seqAtKill = lastTrainedSeq(dir);
      f.pid = sup.pid(f.target);
      f.at = Date.now();
      log(`[fault] kill -9 ${f.target} (pid ${f.pid}) after batch ${f.seqAtKill}`);
      sup.kill(f.target, 'SIGKILL');
      armed = false;
      i++;
    }, f.delayMs);
  }, 25);
  timer.unref();
}

test('kill -9 a rollout worker, the reward worker, the learner, the orchestrator and nats-server in turn: nothing lost, nothing twice', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'faults-'));
  const log: string[] = [];
  const faults = schedule(SEED);
  let runId = '';
  const logFile = join(tmpdir(), `faults-${SEED}.log`);
  try {
    const summary = await runLocal({
      out: dir,
      seed: 5,
      sftSteps: SFT,
      steps: GRPO,
      overrides: TINY,
      rolloutWorkers: 2,
      log: (l) => log.push(l),
      onStarted: (sup, info) => {
        runId = info.config.run.id;
        inject(sup, dir, faults, (l) => log.push(l));
      },
    });
    const total = SFT + GRPO;
    const tail = () => log.slice(-40).join('\n');
    assert.equal(summary.final_version, total, tail());
    // The last fault may recover only at the very end: the run's completion is its recovery.
    const last = faults.at(-1)!;
    if (last.at !== undefined && last.recoveredMs === undefined) last.recoveredMs = Date.now() - last.at;

    // ---- every fault was injected, and the process came back
    for (const f of faults) {
      assert.ok(f.at !== undefined, `fault on ${f.target} was injected (schedule ${JSON.stringify(faults)})\n${tail()}`);
      assert.ok((summary.restarts[f.target] ?? 0) >= 1, `${f.target} was restarted by the supervisor`);
    }

    // ---- the learner's record: one checkpoint per version, version v = batch seq v, versions only rise
    const store = await readRunStore(dir, runId);
    const byVersion = new Map<number, Set<string>>();
    let prev = -1;
    for (const a of store.announcements) {
      assert.ok(a.version >= prev, `announcements go up: v${a.version} after v${prev}`);
      prev = a.version;
      (byVersion.get(a.version) ?? byVersion.set(a.version, new Set()).get(a.version)!).add(a.digest);
      if (a.version > 0) assert.equal(Number(a.meta.last_batch_seq), a.version, `checkpoint v${a.version} holds batch seq ${a.meta.last_batch_seq}`);
    }
    assert.deepEqual([...byVersion.keys()].sort((a, b) => a - b), Array.from({ length: total + 1 }, (_, v) => v), 'one checkpoint per version 0..N, none missing');
    for (const [v, d] of byVersion) assert.equal(d.size, 1, `version ${v} was published with ${d.size} different digests`);

    // ---- no checkpoint lost: the final one is fetchable and verified; the last K are all stored (+ the KL reference)
    assert.equal(store.latest?.version, total);
    assert.equal(store.latestFetchedDigest, store.latest?.digest);
    for (let v = total - KEEP + 1; v <= total; v++) assert.ok(store.versions.includes(v), `v${v} (one of the last ${KEEP}) is in the store: ${store.versions.join(',')}`);
    assert.ok(store.versions.includes(SFT), `the KL reference v${SFT} is kept: ${store.versions.join(',')}`);

    // ---- the orchestrator's audit trail: applied batches rise, every sample trained once or dropped with a reason
    const ev = events(dir);
    const trained = ev.filter((e): e is Trained => e.type === 'trained');
    const applied = trained.filter((e) => e.applied);
    assert.equal(new Set(applied.map((e) => e.seq)).size, applied.length, 'no batch acknowledged as applied twice');
    for (let i = 1; i < applied.length; i++) assert.ok(applied[i].seq > applied[i - 1].seq && applied[i].version > applied[i - 1].version, 'applied batches and versions only rise');
    const dropped = ev.filter((e): e is Extract<Logged, { type: 'dropped' }> => e.type === 'dropped');
    for (const d of dropped) assert.ok(d.reason, `sample ${d.sample} dropped with a reason`);
    const droppedCursors = new Set(dropped.map((d) => cursorOf(d.sample)));
    const trainedIn = new Map<number, number>(); // cursor -> batch seq
    const caughtUp: number[] = [];
    for (let k = 0; k < GRPO; k++) {
      const seq = SFT + k + 1;
      const expected = Array.from({ length: S }, (_, j) => SFT * SFT_BATCH + k * S + j).filter((c) => !droppedCursors.has(c));
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
    assert.equal(trainedIn.size + droppedCursors.size, GRPO * S, 'every GRPO sample trained or dropped');

    // ---- the report
    const rows = faults.map((f) => [f.target, `${f.seqAtKill} (+${f.delayMs} ms)`, String(f.pid), String(summary.restarts[f.target] ?? 0), f.recoveredMs !== undefined ? `${(f.recoveredMs / 1000).toFixed(1)} s` : '-', 'yes']);
    const head = ['killed (-9)', 'after batch', 'pid', 'restarts', 'next batch after', 'survived'];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i])).join('  ');
    console.log(`fault schedule seed ${SEED}; run of ${SFT} SFT + ${GRPO} GRPO batches (${GRPO * S} GRPO samples), ${summary.wall_seconds.toFixed(0)} s`);
    console.log(line(head));
    for (const r of rows) console.log(line(r));
    console.log(`(process log: ${logFile})`);
    console.log(`faults injected ${faults.length}, survived ${faults.length}; batches applied once ${total}/${total}; GRPO samples trained once ${trainedIn.size}, dropped (counted) ${droppedCursors.size}, lost 0` +
      `${caughtUp.length ? `; batches acknowledged from the learner's Hello: ${caughtUp.join(',')}` : ''}; checkpoints in store ${store.versions.join(',')}`);
  } catch (e) {
    console.log(`${log.slice(-30).join('\n')}\n(the whole log: ${logFile})`);
    throw e;
  } finally {
    writeFileSync(logFile, log.join('\n'));
    rmSync(dir, { recursive: true, force: true });
  }
});

function cursorOf(sampleId: string): number {
  const m = /^c(\d+):/.exec(sampleId);
  assert.ok(m, `sample id ${sampleId} names its cursor`);
  return Number(m[1]);
}
