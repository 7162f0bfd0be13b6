// `recovery-grpo sweep --methods`: the four training methods from the same warm start at equal wall-clock
// compute, on a tiny config through the real CLI; the report's numbers follow from its per-seed rows; bad
// method lists and a sweep axis are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import { parseMethods, separated } from '../../lib/experiments/compare.ts';
import { meanCI } from '../../lib/eval/stats.ts';
import { cli } from '../helpers/cli.ts';


const TINY_YAML = `
data: { size: 16, source: { count: 64 } }
model: { width: 4, depth: 1 }
sft: { steps: 4, batchSize: 4 }
grpo: { groupSize: 4, samplesPerBatch: 2 }
eval: { samples: 6 }
`;

test('method lists: known names, at least two, none repeated; disjoint intervals', () => {
  assert.deepEqual(parseMethods('dense, sft'), ['dense', 'sft']);
  assert.throws(() => parseMethods('dense,ppo'), /unknown 'ppo' \(choose among dense, scalar, sft, backprop\)/);
  assert.throws(() => parseMethods('dense'), /at least two/);
  assert.throws(() => parseMethods('sft,sft'), /repeated/);
  assert.equal(separated(meanCI([1, 1.1, 0.9]), meanCI([0, 0.1, -0.1])), true);
  assert.equal(separated(meanCI([1, 2, 0]), meanCI([0, 0.1, -0.1])), false);
});

test('sweep --methods: dense, scalar, continued SFT and direct backprop from one warm start per seed, at equal budget', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'compare-'));
  try {
    const cfg = join(dir, 'tiny.yaml');
    writeFileSync(cfg, TINY_YAML);
    const out = join(dir, 'out');
    const { stdout } = await cli('sweep', '--config', cfg, '--methods', 'dense,scalar,sft,backprop', '--seeds', '2', '--budget', '1.5', '--out', out);
    assert.match(stdout, /compared dense, scalar, sft, backprop over 2 seed\(s\)/);
    const r = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8'));
    assert.deepEqual(r.methods, ['dense', 'scalar', 'sft', 'backprop']);
    assert.equal(r.sft_steps, 4);
    assert.equal(r.seeds.length, 2);
    for (const s of r.seeds) {
      assert.deepEqual(s.runs.map((x: { method: string }) => x.method), r.methods);
      for (const x of s.runs) {
        assert.ok(x.steps >= 1 && Number.isInteger(x.steps));
        // Each trains until its clock reaches the budget: the last step crosses it. A step here takes
        // milliseconds, the first one (graph start-up) up to a few seconds on a slow machine.
        assert.ok(x.seconds >= 1.5 && x.seconds < 1.5 + 10, `${x.method}: ${x.seconds} s for a 1.5 s budget`);
        for (const k of ['reward', 'ssim', 'clip_cos', 'psnr']) assert.ok(Math.abs(x.gain[k] - (x.final[k] - s.start[k])) < 1e-9, `${x.method} ${k} gain`);
      }
    }
    // The summary and the paired differences follow from the rows.
    const gains = (m: string) => r.seeds.map((s: { runs: Array<{ method: string; gain: Record<string, number> }> }) => s.runs.find((x) => x.method === m)!.gain.reward);
    assert.ok(Math.abs(r.summary.sft.reward.mean - (gains('sft')[0] + gains('sft')[1]) / 2) < 1e-12);
    const diff = gains('dense').map((g: number, i: number) => g - gains('backprop')[i]);
    assert.ok(Math.abs(r.paired_against_dense.backprop.reward.mean - (diff[0] + diff[1]) / 2) < 1e-12);
    const md = readFileSync(join(out, 'compare.md'), 'utf8');
    for (const label of ['dense GRPO', 'scalar GRPO', 'continued SFT', 'direct reward backprop']) assert.match(md, new RegExp(`\\| ${label} \\|`));
    assert.match(md, /\| dense GRPO minus \| reward \| SSIM \| reward intervals disjoint \|/);
    // The grid: six rows of corrupted | warm start | four methods | clean.
    const meta = await sharp(join(out, 'grid.png')).metadata();
    assert.ok(meta.width! > meta.height!, `grid ${meta.width}x${meta.height}`);

    // Run again with one more seed: the two seeds done are reused, only the third trains.
    const more = await cli('sweep', '--config', cfg, '--methods', 'dense,scalar,sft,backprop', '--seeds', '3', '--budget', '1.5', '--out', out);
    assert.equal(more.stdout.match(/done before with the same settings, reusing/g)?.length, 2);
    const r3 = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8'));
    assert.deepEqual(r3.seeds.slice(0, 2), r.seeds);
    assert.equal(r3.seeds.length, 3);

    await assert.rejects(cli('sweep', '--config', cfg, '--methods', 'dense,sft', '--set', 'grpo.beta=0,0.1', '--out', out), /compares methods under one configuration/);
    await assert.rejects(cli('sweep', '--config', cfg, '--methods', 'dense,bogus', '--out', out), /unknown 'bogus'/);
    await assert.rejects(cli('sweep', '--methods', 'dense,sft', '--k8s', '--out', out), /does not combine with --k8s/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
