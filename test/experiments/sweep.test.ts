// `recovery-grpo sweep` through the real CLI: two values of reward.weights.clip with the single-process engine on
// a tiny config, then the comparison report; the grid planning; --k8s renders through scripts/k8s-ablation.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseSets, planSweep, runSweep } from '../../lib/experiments/sweep.ts';
import { cli } from '../helpers/cli.ts';


const TINY_YAML = `
data: { size: 16, source: { count: 64 } }
model: { width: 4, depth: 1 }
sft: { steps: 3, batchSize: 4 }
grpo: { steps: 4, groupSize: 4, samplesPerBatch: 2 }
# one corruption draw per photograph: this test is about training, not eval.draws (every-type: test/eval/eval-cli.test.ts)
eval: { samples: 6, draws: one }
`;

test('sweep plan: several --set key=v1,v2 make a grid; single values are fixed overrides', () => {
  const { axes, fixed } = parseSets(['reward.weights.clip=0,0.5', 'grpo.beta=0.004', 'reward.alpha=2,5']);
  assert.deepEqual(fixed, ['grpo.beta=0.004']);
  const plan = planSweep(axes);
  assert.deepEqual(plan.map((p) => p.name), ['clip-0-alpha-2', 'clip-0-alpha-5', 'clip-0p5-alpha-2', 'clip-0p5-alpha-5']);
  assert.deepEqual(plan[1]!.overrides, ['reward.weights.clip=0', 'reward.alpha=5']);
  assert.equal(plan[2]!.label, 'clip=0.5 alpha=2');
  assert.throws(() => planSweep([]), /nothing to sweep/);
  assert.throws(() => parseSets(['reward.alpha=2,2']), /repeated/);
});

test('sweep: a refused combination is named before anything is written (no empty --out folder left behind)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sweep-refused-'));
  try {
    const out = join(dir, 'out');
    await assert.rejects(runSweep({ sets: ['reward.weights.clip=-1,0.2'], out, log: () => undefined }), /reward\.weights\.clip/);
    assert.equal(existsSync(out), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sweep: two values with the single-process engine, then sweep.md and sweep.html compare them', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sweep-'));
  try {
    const cfg = join(dir, 'tiny.yaml');
    writeFileSync(cfg, TINY_YAML);
    const out = join(dir, 'out');
    const { stdout } = await cli('sweep', '--config', cfg, '--set', 'reward.weights.clip=0,0.5', '--engine', 'single', '--out', out, '--seed', '2');
    assert.match(stdout, /2 runs; report: .*sweep\.md/);
    for (const name of ['clip-0', 'clip-0p5']) {
      const s = JSON.parse(readFileSync(join(out, name, 'summary.json'), 'utf8'));
      assert.equal(s.steps, 4);
      for (const k of ['identity', 'before', 'after']) assert.ok(Number.isFinite(s[k].reward) && Number.isFinite(s[k].ssim) && Number.isFinite(s[k].clip_cos));
      const progress = readFileSync(join(out, name, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'progress');
      assert.equal(progress.length, 4);
      assert.ok(progress.every((e) => Number.isFinite(e.reward) && Number.isFinite(e.components.ssim) && Number.isFinite(e.components.clip_cos)));
      assert.equal(JSON.parse(readFileSync(join(out, name, 'config.json'), 'utf8')).reward.weights.clip, name === 'clip-0' ? 0 : 0.5);
    }
    const md = readFileSync(join(out, 'sweep.md'), 'utf8');
    assert.match(md, /\| clip=0 \| 4 \|/);
    assert.match(md, /\| clip=0\.5 \| 4 \|/);
    // what was evaluated, in draws: eval.samples 6 at one draw each (with every-type it is 16 per image, not images)
    assert.match(md, /evaluation: 6 corrupted images per run \(eval\.samples held-out images, each drawn as eval\.draws says/);
    const html = readFileSync(join(out, 'sweep.html'), 'utf8');
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'no external assets');
    const paths = [...html.matchAll(/<path class="series" d="([^"]+)"/g)].map((m) => m[1]!.split(/[ML]/).filter(Boolean).length);
    assert.equal(paths.length, 6, 'reward, SSIM and cosine curves for both values');
    assert.ok(paths.every((n) => n === 4), `4 points each: ${paths.join(',')}`);
    // A second call reuses finished runs and rebuilds the report; --report rebuilds it from the folder alone.
    const again = await cli('sweep', '--config', cfg, '--set', 'reward.weights.clip=0,0.5', '--engine', 'single', '--out', out, '--seed', '2');
    assert.match(again.stdout, /done before, reusing/);
    rmSync(join(out, 'sweep.md'));
    await cli('sweep', '--report', out);
    assert.ok(existsSync(join(out, 'sweep.md')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sweep --k8s: one Kubernetes run per value, rendered by scripts/k8s-ablation.ts, with --config carried as overrides', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sweep-k8s-'));
  try {
    const cfg = join(dir, 'base.yaml');
    writeFileSync(cfg, 'grpo: { steps: 77 }\n');
    const out = join(dir, 'k8s');
    const { stdout } = await cli('sweep', '--k8s', '--overlay', 'cpu-dev', '--config', cfg, '--set', 'reward.weights.clip=0,0.2', '--out', out);
    assert.match(stdout, /rendered 2 Kubernetes runs/);
    assert.match(stdout, /kubectl apply -k/);
    const tsv = readFileSync(join(out, 'runs.tsv'), 'utf8').trim().split('\n');
    assert.equal(tsv.length, 3);
    const runId = tsv[2]!.split('\t')[0]!;
    assert.match(runId, /clip-0p2$/);
    const yaml = readFileSync(join(out, runId, 'run.yaml'), 'utf8');
    assert.match(yaml, /steps: 77/);
    assert.match(yaml, /clip: 0\.2/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
