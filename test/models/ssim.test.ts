// The folded SSIM filter (batch stacked into 48-channel Convs, zero images padding the count at run time)
// against the plain one over stacked channels: the same values, bit for bit, at every batch size, including
// those that need padding, and an SSIM of exactly 1 for identical images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../lib/graph/graph.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { reduceMean } from '../../lib/graph/ops.ts';
import { ssimMap } from '../../lib/models/ssim.ts';
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

test('reward graph: ssimFold false (the scorer on several lanes) filters a pair over its 12 stacked channels, the default folds into 48', async () => {
  const { buildRewardGraph } = await import('../../lib/models/graphs.ts');
  const { builtinEncoderModel, BUILTIN_ENCODER_NAME } = await import('../../lib/models/encoder.ts');
  const ssimConvChannels = (ssimFold: boolean | undefined) => {
    const g = buildRewardGraph({ height: 24, width: 20 }, { encoder: builtinEncoderModel(), encoderName: BUILTIN_ENCODER_NAME, ssimFold });
    // SSIM's vertical Gaussian pass: the only Conv with an 11x1 kernel
    return g.nodes.filter((n) => n.op === 'Conv' && String(n.attrs.kernel_shape) === '11,1').map((n) => n.inputs[1]!.shape[0]);
  };
  assert.deepEqual(ssimConvChannels(false), [12]);
  assert.deepEqual(ssimConvChannels(undefined), [48]);
});
