// The export and score commands, run as a user would (the real CLI in a child process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { loadCheckpoint } from '../../lib/checkpoint/index.ts';
import { testRandom } from '../graph/gradcheck.ts';
import { cli } from '../helpers/cli.ts';

const FIX = fileURLToPath(new URL('../fixtures/ssim/', import.meta.url));

test('export writes every graph; the standalone policy runs with image and noise only and is the identity when fresh', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'export-'));
  try {
    const { stdout } = await cli('export', '--out', dir, '--set', 'data.size=16', '--set', 'model.width=4', '--set', 'model.depth=1');
    const info = JSON.parse(stdout) as { initDigest: string; encoder: string };
    for (const f of ['policy.onnx', 'train-grpo.onnx', 'train-sft.onnx', 'reward.onnx', 'policy-standalone.onnx', 'init.safetensors']) {
      assert.ok(existsSync(join(dir, f)), `${f} written`);
    }
    assert.equal(info.encoder, 'random-conv-features-v1');
    const ckpt = await loadCheckpoint(join(dir, 'init.safetensors'), { requireDigestFile: true });
    assert.equal(ckpt.digest, info.initDigest);
    const s = await GraphSession.create(new Uint8Array(readFileSync(join(dir, 'policy-standalone.onnx'))));
    assert.deepEqual([...s.inputNames].sort(), ['image', 'noise']);
    const rand = testRandom(2);
    const image = Float32Array.from({ length: 2 * 3 * 16 * 16 }, () => rand());
    const out = await s.run({ image: { data: image, dims: [2, 3, 16, 16] }, noise: { data: new Float32Array(image.length), dims: [2, 3, 16, 16] } });
    assert.deepEqual(out.mean.data, image);
    const train = await GraphSession.create(new Uint8Array(readFileSync(join(dir, 'train-grpo.onnx'))));
    assert.ok(train.outputNames.includes('grad.head.weight') && train.outputNames.includes('clip_fraction'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('score: SSIM through PNG decoding matches scikit-image; a reference of another size is resized; pairs files; bad files named', async () => {
  const cases = JSON.parse(readFileSync(join(FIX, 'cases.json'), 'utf8')) as { cases: Array<{ reference: string; distorted: string; ssim: number }> };
  const c = cases.cases.find((x) => x.distorted === 'synthetic0_64x48_blur_0.45.png')!;
  const dir = mkdtempSync(join(tmpdir(), 'score-'));
  try {
    // A reference twice the candidate's size is resized to it (bilinear) before scoring.
    const big = join(dir, 'big.png');
    await sharp(join(FIX, 'synthetic0_32x32.png')).resize(64, 64, { kernel: 'nearest' }).toFile(big);
    writeFileSync(join(dir, 'pairs.jsonl'), [
      JSON.stringify({ reference: big, candidate: join(FIX, 'synthetic0_32x32.png') }),
      JSON.stringify({ reference: join(FIX, 'synthetic0_32x32.png'), candidate: join(FIX, 'synthetic0_32x32_dark_0.9.png') }),
    ].join('\n'));
    writeFileSync(join(dir, 'broken.png'), 'not an image');
    writeFileSync(join(dir, 'bad.jsonl'), '{"reference": "a.png"}\n');
    // The four commands are independent: run together, their start-ups (onnxruntime, the encoder) overlap.
    const [single, pairs] = await Promise.all([
      cli('score', '--reference', join(FIX, c.reference), '--candidate', join(FIX, c.distorted)),
      cli('score', '--pairs', join(dir, 'pairs.jsonl')),
      assert.rejects(cli('score', '--reference', join(dir, 'broken.png'), '--candidate', join(FIX, c.distorted)), (e: { stderr: string }) => /broken\.png/.test(e.stderr)),
      assert.rejects(cli('score', '--pairs', join(dir, 'bad.jsonl')), (e: { stderr: string }) => /bad\.jsonl:1/.test(e.stderr)),
    ]);
    const line = JSON.parse(single.stdout.trim()) as { ssim: number; clip_cos: number; reward: number };
    assert.ok(Math.abs(line.ssim - c.ssim) < 1e-4, `ssim ${line.ssim} vs scikit-image ${c.ssim}`);
    const expected = 1.0 * line.ssim + 0.2 * Math.exp(-5 * (1 - Math.min(1, Math.max(0, line.clip_cos))));
    assert.ok(Math.abs(line.reward - expected) < 1e-9, 'the paper reward');

    const many = pairs.stdout.trim().split('\n').map((l) => JSON.parse(l) as { ssim: number });
    assert.equal(many.length, 2);
    assert.ok(many[0].ssim > 0.9, `resized reference scores high against the original (${many[0].ssim})`);
    assert.ok(Math.abs(many[1].ssim - cases.cases.find((x) => x.distorted === 'synthetic0_32x32_dark_0.9.png')!.ssim) < 1e-4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
