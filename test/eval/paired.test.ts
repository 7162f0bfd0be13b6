// Paired intervals per row (policy - identity over the row's images, an image's draws averaged first), checked
// against a case computed by hand, and the report tables that show them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EvalReport, PerSample } from '../../lib/eval/evaluate.ts';
import { crossedMeanCI } from '../../lib/eval/crossed.ts';
import { formatPaired, pairedRows, type PairedRow } from '../../lib/eval/paired.ts';
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
  const one: PairedRow = { images: 1, draws: 1, ci: { n: 1, mean: -0.0128, sd: 0, half: NaN, lo: NaN, hi: NaN } };
  assert.equal(formatPaired(one), '-0.0128 [-]');
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

/** scripts/demo-table.ts's output for summaries whose GRPO policies are `policies` (identity: `identity`; SFT: `sfts`, else `identity`). */
function demoTable(policies: EvalReport[], sfts?: EvalReport[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'demo-table-'));
  try {
    const files = policies.map((after, k) => {
      const file = join(dir, `run${k}.json`);
      const ids = after.perSample!.id;
      const id = { ...identity, perSample: { ...identity.perSample!, id: ids } };
      writeFileSync(file, JSON.stringify({ identity: id, before: sfts?.[k] ?? id, after, wall_seconds: 1, sft_steps: 4, steps: 2, eval_draws: 'every-type', eval_images: 3, eval_samples: 5 }));
      return file;
    });
    return execFileSync(process.execPath, ['--import', 'tsx', 'scripts/demo-table.ts', ...files], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const pooledRow = (out: string, name: string) => {
  const line = out.split('\n').find((l) => l.startsWith(`| ${name} | `) && !l.includes('(3) |'));
  assert.ok(line, `no pooled row ${name} in\n${out}`);
  const m = /\| ([+-][0-9.]+) \[([+-][0-9.]+), ([+-][0-9.]+)\] \| (ok|HARMS) \|$/.exec(line);
  assert.ok(m, `no interval in ${line}`);
  return { line, mean: Number(m[1]), lo: Number(m[2]), hi: Number(m[3]), half: (Number(m[3]) - Number(m[2])) / 2 };
};

test('scripts/demo-table.ts: copies of one run do not narrow the pooled interval (the photograph is the unit, not the run\'s photograph)', () => {
  const out = demoTable([policy, policy, policy]);
  // Per run: t1 over its 3 photographs +0.01, -0.02, +0.04: +0.010 [-0.065, +0.085]; level y holds 2 photographs in
  // 2 draws, the overall 3 in 5.
  assert.match(out, /\| t1 \| \+0\.010 \[-0\.065, \+0\.085\] \(3\) \| \+0\.010 \[-0\.065, \+0\.085\] \(3\) \| \+0\.010 \[-0\.065, \+0\.085\] \(3\) \|/);
  assert.match(out, /\| every-type, 3 photographs, 5 draws \| 4 \/ 2 \|/);
  assert.match(out, /\+0\.0167 \[/);
  // Pooled: three copies carry no more information than one run, so the interval is at least the run's (it was
  // 1/sqrt(3) of it with each run's photograph a unit of its own).
  const t1 = pooledRow(out, 't1');
  assert.ok(t1.half >= 0.075 - 0.0005, `pooled half ${t1.half} narrower than one run's 0.075`);
  // Copies: no run spread, no residual, so the photographs' 2 df.
  assert.match(t1.line, /\| t1 \| 3 photographs x 3 runs \(df 2\) \| 0\.700 \| 0\.700 \| 0\.710 \|/);
  assert.match(t1.line, /\+0\.010 \[-0\.065, \+0\.085\] \| ok \|$/);
  assert.match(pooledRow(out, 'x').line, /\| x \| 3 photographs x 3 runs \(df 2\) \|/);
});

test('scripts/demo-table.ts: pooled rows of runs on the same photographs use the crossed interval; other photographs, the t over runs', () => {
  const doubled = report(idReward.map((r, i) => r + 2 * diff[i]!));
  // Same photographs, run 2's differences twice run 1's: t1 cells +0.01, -0.02, +0.04 and +0.02, -0.04, +0.08.
  const c = crossedMeanCI([[0.01, -0.02, 0.04], [0.02, -0.04, 0.08]]);
  const crossed = pooledRow(demoTable([policy, doubled]), 't1');
  assert.match(crossed.line, new RegExp(`\\| t1 \\| 3 photographs x 2 runs \\(df ${c.df}\\) \\|`));
  assert.ok(crossed.line.endsWith(`${formatPaired({ ci: c }, 3)} | ok |`), crossed.line);
  // Run 2 on other photographs (d, e, f): independent samples, so the t interval over the 2 runs' row means
  // 0.01 and 0.02: mean 0.015, sd 0.01 / sqrt(2), half 12.706 * sd / sqrt(2) = 0.0635.
  const other = report(idReward.map((r, i) => r + 2 * diff[i]!));
  other.perSample = { ...other.perSample!, id: ['d', 'd', 'e', 'e', 'f'] };
  const t = pooledRow(demoTable([policy, other]), 't1');
  assert.match(t.line, /\| t1 \| t over 2 runs' means \(photographs differ between runs: 0 of 6 in every run; 6 draws\) \|/);
  assert.ok(t.line.endsWith('| +0.015 [-0.049, +0.079] | ok |'), t.line);
});

test('scripts/demo-table.ts: overall GRPO - SFT, SFT - identity and GRPO - identity pooled over runs with the crossed interval (by hand)', () => {
  const times = (c: number) => report(idReward.map((r, i) => r + c * diff[i]!));
  // Both runs' SFT is identity + diff; GRPO is identity + 2 diff in run 1, + 3 diff in run 2. Photograph means of
  // diff over their draws: a +0.02, b -0.01, c +0.04.
  const out = demoTable([times(2), times(3)], [times(1), times(1)]);
  const row = (label: string) => {
    const line = out.split('\n').find((l) => l.startsWith(`| ${label} | `));
    assert.ok(line, `no overall row ${label} in\n${out}`);
    const m = /^\| [^|]+ \| 3 photographs x 2 runs \(10 draws; df (\d+)\) \| ([+-][0-9.]+) \[([+-][0-9.]+), ([+-][0-9.]+)\] \|/.exec(line);
    assert.ok(m, `no crossed interval in ${line}`);
    return { df: Number(m[1]), mean: Number(m[2]), lo: Number(m[3]), hi: Number(m[4]) };
  };
  const near = (x: number, y: number, what: string) => assert.ok(Math.abs(x - y) <= 1.01e-4, `${what}: ${x} against ${y}`);
  // GRPO - SFT: cells +0.02, -0.01, +0.04 (run 1) and twice that (run 2). Grand mean 0.025; run means 1/60, 1/30:
  // MS_run 6 (1/120)^2 = 4.1667e-4; photograph means 0.03, -0.015, 0.06: MS_photo 0.00285; residuals -1/600, +1/75,
  // -7/600 and their negatives: MS_resid 3.1667e-4. Var = (MS_run + MS_photo - MS_resid) / 6 = 4.9167e-4, se 0.022174;
  // df (0.00295)^2 / (MS_run^2 / 1 + MS_photo^2 / 2 + MS_resid^2 / 2) = 2.03 -> 2; half 4.303 se = 0.0954.
  // (scipy, /tmp/review25b-style: +0.0250 [-0.0704, +0.1204] df 2.) The per-run intervals would say +0.017 and +0.033.
  const gs = row('GRPO - SFT');
  assert.equal(gs.df, 2);
  near(gs.mean, 0.025, 'GRPO - SFT mean');
  near(gs.lo, 0.025 - 4.303 * Math.sqrt(0.00295 / 6), 'GRPO - SFT lo');
  near(gs.hi, 0.025 + 4.303 * Math.sqrt(0.00295 / 6), 'GRPO - SFT hi');
  // SFT - identity: the same cells in both runs, so one run's t interval over its 3 photographs: mean 1/60, sd 0.025166.
  const si = row('SFT - identity');
  assert.equal(si.df, 2);
  near(si.mean, 1 / 60, 'SFT - identity mean');
  near(si.hi, 1 / 60 + (4.303 * 0.025166) / Math.sqrt(3), 'SFT - identity hi');
  // GRPO - identity: cells twice and three times +0.02, -0.01, +0.04 (scipy: +0.0417 [-0.1156, +0.1989] df 2).
  const gi = row('GRPO - identity');
  const c = crossedMeanCI([[0.04, -0.02, 0.08], [0.06, -0.03, 0.12]]);
  assert.equal(gi.df, c.df);
  near(gi.mean, c.mean, 'GRPO - identity mean');
  near(gi.lo, c.lo, 'GRPO - identity lo');
});
