// The optimised corruptions must give the same bytes as the implementation that trained every checkpoint so
// far (a changed pixel changes training and breaks the determinism and parity digests). The reference is a
// frozen copy of the old code (test/data/reference/); every type, level and a few seeds and sizes, including
// the 256x256 training resolution and odd, non-square and small images that take the other code paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CORRUPTION_TYPES, corrupt } from '../../lib/data/corruptions.ts';
import { corrupt as corruptV1 } from './reference/corruptions-v1.ts';
import { scene } from './helpers.ts';

const LEVELS = [0.23, 0.45, 0.9, 0.6, 1];
const SHAPES: [number, number][] = [[256, 256], [37, 29], [64, 64], [300, 200]];

function firstDiff(a: Uint8Array, b: Uint8Array): string {
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return `byte ${k}: ${a[k]} vs ${b[k]}`;
  return 'lengths differ';
}

for (const type of CORRUPTION_TYPES) {
  test(`${type}: same bytes as the reference implementation`, async () => {
    let n = 0;
    for (const [k, [w, h]] of SHAPES.entries()) {
      const img = scene(k + 7, w, h);
      for (const [j, level] of LEVELS.entries()) {
        // The largest images only at the named levels, to keep the test short.
        if (w * h > 70_000 && j > 2) continue;
        const seed = 1000 * k + 17 * j + 3;
        const a = await corrupt(img, type, level, seed);
        const b = await corruptV1(img, type, level, seed);
        assert.equal(a.width, b.width);
        assert.equal(a.height, b.height);
        assert.ok(Buffer.from(a.data).equals(Buffer.from(b.data)), `${type} ${w}x${h} level ${level} seed ${seed}: ${firstDiff(a.data, b.data)}`);
        n++;
      }
    }
    assert.ok(n >= 15);
  });
}
