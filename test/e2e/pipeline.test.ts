// End to end: nats-server and the four roles as separate processes on loopback (the local run's
// supervisor), a tiny configuration, faults injected while it trains. Reads the orchestrator's event
// log (--events) to check that every sample is trained exactly once and versions only rise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runLocal, type Summary } from '../../lib/local/local-run.ts';
import type { Supervisor } from '../../lib/local/supervisor.ts';
// the event log read while the orchestrator appends to it (a last line without its newline is not an event yet)
import { events, isApplied, type Logged } from '../reliability/helpers.ts';

const SFT = 12;
const GRPO = 8;
const S = 2;
const TINY = [
  'data.source.kind=procedural', 'data.size=16', 'data.source.count=64', 'model.width=4', 'model.depth=1', 'sft.batchSize=4', 'grpo.groupSize=4',
  `grpo.samplesPerBatch=${S}`, 'eval.samples=8', 'orchestrator.leaseSeconds=10', 'orchestrator.heartbeatSeconds=1',
  // each worker its even share of a batch's S tasks: this tiny policy's rollout tasks take under bundleMs since the
  // network runs once per group (round 12), and spread would then bundle a batch onto one worker
  'orchestrator.bundleMs=0',
];


/** Calls `fault` once the event log shows `afterSeq` trained, then returns. */
function when(dir: string, afterSeq: number, fault: () => void): void {
  const timer = setInterval(() => {
    if (events(dir).some((e) => e.type === 'trained' && e.seq >= afterSeq)) {
      clearInterval(timer);
      fault();
    }
  }, 100);
  timer.unref();
}

async function run(name: string, faults: (sup: Supervisor, dir: string) => void, rolloutWorkers = 2, onLine?: (line: string) => void): Promise<{ summary: Summary; ev: Logged[]; log: string[]; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), `e2e-${name}-`));
  const log: string[] = [];
  const summary = await runLocal({
    out: dir,
    seed: 3,
    sftSteps: SFT,
    steps: GRPO,
    overrides: TINY,
    rolloutWorkers,
    log: (l) => {
      log.push(l);
      onLine?.(l);
    },
    onStarted: (sup) => faults(sup, dir),
  });
  return { summary, ev: events(dir), log, dir };
}

/** Every batch seq applied exactly once, in order, and every GRPO sample trained exactly once. */
function checkExactlyOnce(ev: Logged[], log: string[]): void {
  const applied = ev.filter(isApplied);
  // on failure: every trained event and the run's log, so a rare interleaving can be read afterwards
  const why = () => `each batch applied once, in order\n${ev.filter((e) => e.type === 'trained' || e.type === 'dropped').map((e) => JSON.stringify(e)).join('\n')}\n--- log ---\n${log.join('\n')}`;
  assert.deepEqual(applied.map((e) => e.seq), Array.from({ length: SFT + GRPO }, (_, i) => i + 1), why());
  for (let i = 1; i < applied.length; i++) assert.ok(applied[i].version > applied[i - 1].version, 'versions only rise');
  const grpoSamples = applied.filter((e) => e.kind === 'grpo').flatMap((e) => e.samples);
  const dropped = ev.filter((e) => e.type === 'dropped');
  assert.equal(new Set(grpoSamples).size, grpoSamples.length, 'no GRPO sample trained twice');
  assert.equal(grpoSamples.length + dropped.length, GRPO * S, 'every sample trained or dropped with a reason');
}

test('pipeline: versions advance, every rollout worker runs each new version, a killed rollout worker loses no sample', { timeout: 240_000 }, async () => {
  // rollout-1 killed when the learner connects (the warm start begins; it has no rollout tasks), so it is back seconds
  // after GRPO could start (the warm start takes a fraction of a second): GRPO waits for it (the local run's
  // --await-workers), where it would start with rollout-0 alone and could end before rollout-1 was back
  let sup: Supervisor | undefined;
  let late = false;
  const { summary, ev, log, dir } = await run('rollout', (s, d) => {
    sup = s;
    when(d, SFT + 3, () => s.kill('rollout-0'));
  }, 2, (line) => {
    if (!late && /learner learner connected/.test(line)) late = sup?.kill('rollout-1') ?? false;
  });
  try {
    assert.equal(summary.final_version, SFT + GRPO, log.slice(-20).join('\n'));
    assert.ok((summary.restarts['rollout-0'] ?? 0) >= 1 && (summary.restarts['rollout-1'] ?? 0) >= 1, 'the killed workers were restarted');
    checkExactlyOnce(ev, log);
    // Before the fault, each GRPO version was rolled out by both workers (one sample each) from the first on, and
    // the rollouts of batch seq s were made by version s - 1 (synchronous: maxStaleness 0).
    const rollouts = ev.filter((e): e is Extract<Logged, { type: 'rollout' }> => e.type === 'rollout');
    const both = (v: number) => new Set(rollouts.filter((r) => r.version === v).map((r) => r.worker)).size === 2;
    // on failure: who rolled out each early version, and the run's log
    const who = Array.from({ length: 4 }, (_, i) => `v${SFT + i}: ${rollouts.filter((r) => r.version === SFT + i).map((r) => `${r.worker}#${r.attempt}`).join(' ')}`).join('; ');
    for (let v = SFT; v < SFT + 3; v++) assert.ok(both(v), `version ${v} rolled out by both workers (${who})\n--- log ---\n${log.join('\n')}`);
    assert.match(log.join('\n'), /GRPO waits for its workers \([01] of 2 rollout[,)\s]/, 'GRPO waited for rollout-1');
    const trained = ev.filter(isApplied).filter((e) => e.kind === 'grpo');
    for (const t of trained) {
      for (const s of t.samples) {
        const r = rollouts.filter((x) => x.sample === s).at(-1)!;
        assert.equal(r.version, t.seq - 1, `sample ${s} of batch ${t.seq} rolled out by version ${r.version}`);
      }
    }
    assert.ok(Number.isFinite(summary.reward_after) && Number.isFinite(summary.identity_reward));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pipeline: a killed orchestrator resumes from its key-value state; a killed learner applies no batch twice', { timeout: 240_000 }, async () => {
  const { summary, ev, log, dir } = await run('restart', (sup, d) => {
    when(d, SFT + 2, () => {
      sup.kill('orchestrator');
      when(d, SFT + 5, () => sup.kill('learner'));
    });
  }, 1);
  try {
    assert.equal(summary.final_version, SFT + GRPO, log.slice(-20).join('\n'));
    assert.ok(log.some((l) => /resuming run .* after batch \d+/.test(l)), 'the restarted orchestrator resumed from its stored state');
    assert.ok((summary.restarts.orchestrator ?? 0) >= 1 && (summary.restarts.learner ?? 0) >= 1);
    checkExactlyOnce(ev, log);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
