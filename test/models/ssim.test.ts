// The folded SSIM filter (the planes of all statistics and images stacked into Conv groups of 16 planes, zero
// planes padding the count at run time) against the plain one over stacked channels: the same values, bit for
// bit, at every batch size, including those that need padding, and an SSIM of exactly 1 for identical images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../lib/graph/graph.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { reduceMean } from '../../lib/graph/ops.ts';
import { ssimMap, SSIM_FOLD_PLANES } from '../../lib/models/ssim.ts';
import { testRandom } from '../../lib/graph/gradcheck.ts';

async function ssimSession(h: number, w: number, fold: boolean): Promise<GraphSession> {
  const g = new Graph();
  const x = g.input('x', ['N', 3, h, w]);
  const y = g.input('y', ['N', 3, h, w]);
  const map = ssimMap(x, y, { fold });
  g.output('map', map);
  g.output('ssim', reduceMean(map, [1, 2, 3]));
  return GraphSession.create(serialize(g));
}

test('folded SSIM filter: bit-identical to the plain filter for batch sizes 1-7 and non-square images', async () => {
  const [h, w] = [23, 17];
  const plain = await ssimSession(h, w, false);
  const folded = await ssimSession(h, w, true);
  try {
    for (let n = 1; n <= 7; n++) {
      const size = n * 3 * h * w;
      const rand = testRandom(n);
      const x = Float32Array.from({ length: size }, () => rand());
      const y = Float32Array.from(x, (v) => Math.min(1, Math.max(0, v + 0.2 * (rand() - 0.5))));
      const feeds = { x: { data: x, dims: [n, 3, h, w] }, y: { data: y, dims: [n, 3, h, w] } };
      const a = await plain.run(feeds);
      const b = await folded.run(feeds);
      assert.deepEqual(b.map.dims, [n, 3, h - 10, w - 10]);
      assert.deepEqual(b.map.data, a.map.data, `SSIM map at batch ${n}`);
      assert.deepEqual(b.ssim.data, a.ssim.data, `SSIM at batch ${n}`);
      const same = await folded.run({ x: feeds.x, y: feeds.x });
      for (const s of same.ssim.data) assert.ok(Math.abs(s - 1) < 1e-6, `SSIM of an image with itself is ${s}`);
    }
  } finally {
    await plain.release();
    await folded.release();
  }
});

test('folded SSIM filter: Conv groups of 16 planes, so a single pair (12 planes) is filtered as 16, not 48', () => {
  const g = new Graph();
  ssimMap(g.input('x', ['N', 3, 32, 32]), g.input('y', ['N', 3, 32, 32]));
  const convs = g.nodes.filter((n) => n.op === 'Conv');
  assert.equal(convs.length, 2, 'one vertical and one horizontal Conv');
  for (const c of convs) {
    assert.deepEqual(c.inputs[1]!.shape, [SSIM_FOLD_PLANES, 1, ...(c === convs[0] ? [11, 1] : [1, 11])]);
    assert.equal(c.attrs.group, SSIM_FOLD_PLANES);
  }
  assert.equal(SSIM_FOLD_PLANES, 16);
});
