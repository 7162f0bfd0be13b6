// The LoRA transform's bookkeeping: patterns, shapes, the merge, and the size of an adapter-only
// checkpoint for a network of about 20 M parameters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initLora, mergeLora, planLora, type AdaptableWeight } from '../../lib/graph/lora.ts';
import { policyParams } from '../../lib/models/policy.ts';

test('rank-8 adapters on every convolution of a ~20 M-parameter U-Net are under 5% of its bytes', () => {
  const params = policyParams({ arch: 'unet', width: 72, depth: 4, logStd: -2, learnLogStd: false });
  const total = params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  const convs: AdaptableWeight[] = params.filter((p) => p.shape.length === 4).map((p) => ({ name: p.name, shape: p.shape, layout: 'out-in' }));
  const adapters = planLora(convs, { rank: 8, alpha: 16, targets: ['*.weight'] });
  assert.equal(adapters.length, convs.length);
  const factors = initLora(adapters, 0);
  const adapterCount = [...factors.values()].reduce((s, t) => s + t.data.length, 0);
  const biases = params.filter((p) => p.shape.length === 1).reduce((s, p) => s + p.shape[0], 0);
  assert.ok(total > 19e6 && total < 21e6, `${total} parameters`);
  // Adapters plus biases (trainable too, optionally) against every parameter, both float32.
  assert.ok((adapterCount + biases) / total < 0.05, `${adapterCount + biases} of ${total}`);
});

test('merge adds scale * B A in the weight layout (out-in and in-out)', () => {
  const w: AdaptableWeight[] = [{ name: 'conv', shape: [2, 1, 1, 2], layout: 'out-in' }, { name: 'mm', shape: [2, 3], layout: 'in-out' }];
  const adapters = planLora(w, { rank: 1, alpha: 2, targets: ['*'] });
  const factors = new Map([
    ['conv.lora_A', { shape: [1, 2], data: Float32Array.from([1, 2]) }],
    ['conv.lora_B', { shape: [2, 1], data: Float32Array.from([3, 4]) }],
    ['mm.lora_A', { shape: [1, 2], data: Float32Array.from([1, -1]) }],
    ['mm.lora_B', { shape: [3, 1], data: Float32Array.from([1, 2, 3]) }],
  ]);
  const base = new Map([
    ['conv', { shape: [2, 1, 1, 2], data: new Float32Array(4) }],
    ['mm', { shape: [2, 3], data: new Float32Array(6) }],
  ]);
  const merged = mergeLora(base, adapters, factors);
  // scale 2: conv out o, in i -> 2 * B[o] A[i]
  assert.deepEqual([...merged.get('conv')!.data], [6, 12, 8, 16]);
  // matmul weight [in=2, out=3]: W[i, o] = 2 * B[o] A[i]
  assert.deepEqual([...merged.get('mm')!.data], [2, 4, 6, -2, -4, -6]);
  assert.throws(() => planLora(w, { rank: 1, alpha: 1, targets: ['nothing*'] }), /target 'nothing\*' matches none/);
});
