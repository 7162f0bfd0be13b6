// Paired intervals per row (policy - identity over the row's images, an image's draws averaged first), checked
// against a case computed by hand, and the report tables that show them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EvalReport, PerSample } from '../../lib/eval/evaluate.ts';
import { formatPaired, pairedRows } from '../../lib/eval/paired.ts';
import { renderMarkdown, type EvalJson } from '../../lib/eval/report.ts';

// Five draws of three images: a (t1 x, t2 y), b (t1 y, t2 x), c (t1 x). Differences policy - identity:
// a/t1 +0.01, a/t2 +0.03, b/t1 -0.02, b/t2 0.00, c/t1 +0.04.
const base = { id: ['a', 'a', 'b', 'b', 'c'], type: ['t1', 't2', 't1', 't2', 't1'], level: ['x', 'y', 'y', 'x', 'x'] };
const idReward = [0.5, 0.6, 0.7, 0.8, 0.9];
const diff = [0.01, 0.03, -0.02, 0.0, 0.04];

function report(rewards: number[]): EvalReport {
  const ps: PerSample = { ...base, reward: rewards, ssim: rewards.map((r) => r / 2), psnr: rewards.map((r) => 20 + r) };
  const agg = (idx: number[]) => ({ reward: idx.reduce((s, i) => s + rewards[i]!, 0) / idx.length, ssim: 0, clip_cos: 0, psnr: 0, count: idx.length });
  return {
    ...agg([0, 1, 2, 3, 4]),
    byType: { t1: agg([0, 2, 4]), t2: agg([1, 3]) },
    byLevel: { x: agg([0, 3, 4]), y: agg([1, 2]) },
    perSample: ps,
  };
}
const identity = report(idReward);
const policy = report(idReward.map((r, i) => r + diff[i]!));

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-6, `${what}: ${a} against ${b}`);

test('pairedRows: per row, image means of policy - identity and the 95% t interval over images (by hand)', () => {
  const p = pairedRows(policy, identity);
  // t1: one draw per image, +0.01, -0.02, +0.04: mean 0.01, sd 0.03, half t(2) 4.303 * 0.03 / sqrt(3).
  assert.equal(p.byType.t1!.images, 3);
  assert.equal(p.byType.t1!.draws, 3);
  close(p.byType.t1!.ci.mean, 0.01, 't1 mean');
  close(p.byType.t1!.ci.sd, 0.03, 't1 sd');
  close(p.byType.t1!.ci.half, (4.303 * 0.03) / Math.sqrt(3), 't1 half');
  // y: a +0.03, b -0.02: mean 0.005, sd 0.025 * sqrt(2), half 12.706 * sd / sqrt(2) = 12.706 * 0.025.
  close(p.byLevel.y!.ci.mean, 0.005, 'y mean');
  close(p.byLevel.y!.ci.half, 12.706 * 0.025, 'y half');
  // Overall: image means a (0.01 + 0.03) / 2 = 0.02, b -0.01, c 0.04 (not the mean of the five draws, 0.012).
  assert.equal(p.overall.images, 3);
  assert.equal(p.overall.draws, 5);
  close(p.overall.ci.mean, 0.05 / 3, 'overall mean');
  const m = 0.05 / 3;
  const sd = Math.sqrt(((0.02 - m) ** 2 + (-0.01 - m) ** 2 + (0.04 - m) ** 2) / 2);
  close(p.overall.ci.half, (4.303 * sd) / Math.sqrt(3), 'overall half');
  // One image: no interval.
  assert.equal(formatPaired({ images: 1, draws: 1, ci: { n: 1, mean: -0.0128, sd: 0, half: NaN, lo: NaN, hi: NaN } }), '-0.0128 [-]');
  assert.equal(formatPaired(p.byType.t1!, 3), '+0.010 [-0.065, +0.085]');
});

test('pairedRows: refuses reports without per-draw scores or scored on other draws', () => {
  const { perSample: _, ...old } = identity;
  assert.throws(() => pairedRows(policy, old), /perSample/);
  const shuffled = report(idReward);
  shuffled.perSample = { ...shuffled.perSample!, id: ['a', 'b', 'a', 'b', 'c'] };
  assert.throws(() => pairedRows(policy, shuffled), /same draws/);
});

test('renderMarkdown: type and level rows show images, draws and policy - identity with its interval', () => {
  const e: EvalJson = {
    sources: {
      checkpoint: { path: 'final.safetensors', run_id: 'r', version: 3, digest: '0'.repeat(64) },
      reference: null, config: 'defaults', config_hash: '0'.repeat(64), data: 'eval split', samples: 3, draws: 5,
      draws_mode: 'every-type', encoder: 'enc', seed: 0, notes: [],
    },
    policy, policy_sampled: policy, reference: null, identity,
  };
  const md = renderMarkdown(e);
  assert.match(md, /\| corruption type \| images \| draws \| identity \| policy \| policy_sampled \| policy - identity \[95% CI over images\] \|/);
  assert.match(md, /\| t1 \| 3 \| 3 \| 0\.7000 \| 0\.7100 \| 0\.7100 \| \+0\.0100 \[-0\.0645, \+0\.0845\] \|/);
  assert.match(md, /\| y \| 2 \| 2 \|/);
  assert.match(md, /5 draws: each image once per corruption type/);
  assert.match(md, /reward policy - identity \+0\.0167 \[/);
});

test('scripts/demo-table.ts: photographs and intervals per run and pooled over runs (each run\'s photograph a unit)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'demo-table-'));
  try {
    const summary = { identity, before: identity, after: policy, wall_seconds: 1, sft_steps: 4, steps: 2, eval_draws: 'every-type', eval_images: 3, eval_samples: 5 };
    const files = ['a', 'b'].map((n) => join(dir, `${n}.json`));
    for (const f of files) writeFileSync(f, JSON.stringify(summary));
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'scripts/demo-table.ts', ...files], { encoding: 'utf8' });
    // Pooled t1: (run, photograph) units +0.01, -0.02, +0.04 twice: mean 0.01, sd sqrt(4 * 0.0009 / 5), t(5) 2.571.
    const half = (2.571 * Math.sqrt((4 * 0.0009) / 5)) / Math.sqrt(6);
    assert.match(out, new RegExp(`\\| t1 \\| 6 \\| 0\\.700 \\| 0\\.700 \\| 0\\.710 \\| \\+0\\.010 \\[${(0.01 - half).toFixed(3)}, \\+${(0.01 + half).toFixed(3)}\\] \\| ok \\|`));
    // Per run: the 3 photographs of t1; level y holds 2 photographs in 2 draws, the overall 3 in 5.
    assert.match(out, /\| t1 \| \+0\.010 \[-0\.065, \+0\.085\] \(3\) \| \+0\.010 \[-0\.065, \+0\.085\] \(3\) \|/);
    assert.match(out, /\| every-type, 3 photographs, 5 draws \| 4 \/ 2 \|/);
    assert.match(out, /\+0\.0167 \[/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
