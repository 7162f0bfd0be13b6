// mean_shift was rewritten for speed in round 9 (ms9: unrolled 5- and 7-sample window rows, constant offsets for
// unclipped windows, a float64 copy of the searched image, the 2x2 candidate pass a band of rows at a time). Its
// bytes feed every training result, so beside corruption-parity.test.ts (one scene per shape) this compares it
// with the frozen reference on many 256x256 procedural scenes (the kind the data bench and training see), at the
// named levels and at intensities chosen for each window shape the search specialises: full resolution with
// 5- and 7-sample rows (0.1, 0.15, 0.19), coarse levels with 5- and 7-sample rows and the memo (0.23-1), and
// sizes whose windows are clipped at the edges, and a wide, short one. One call after another, so the reused
// buffers and the memo carry the previous call's contents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { corrupt } from '../../lib/data/corruptions.ts';
import { renderScene } from '../../lib/data/procedural.ts';
import { corrupt as corruptV1 } from './reference/corruptions-v1.ts';

function firstDiff(a: Uint8Array, b: Uint8Array): string {
  for (let k = 0; k < Math.min(a.length, b.length); k++) if (a[k] !== b[k]) return `byte ${k}: ${a[k]} vs ${b[k]}`;
  return `lengths ${a.length} and ${b.length}`;
}

const CASES: [number, number, number, number[]][] = [
  // width, height, scenes, levels
  [256, 256, 6, [0.23, 0.45, 0.9, 0.1, 0.15, 0.19, 0.6, 1]],
  [97, 203, 2, [0.23, 0.9, 0.15]],
  [300, 41, 2, [0.45, 0.19]],
  // Wide and short after the 256x256 cases: a coarse row wider (500 at f = 2) than any before, in a coarse image
  // smaller than theirs, so the reused buffers must grow by the row's length, not only by the image's (round 10).
  [1000, 48, 2, [1, 0.9]],
  // Searched at full resolution (sp 4) with 1400 * 512 * 3 values, above KEEP_SCRATCH_ELEMENTS: the WebAssembly
  // search's own instance, not the kept one (round 18); the 256x256 case after it is back on the kept one.
  [1400, 512, 1, [0.05]],
  [256, 256, 2, [0.9]],
];

test('mean_shift: many scenes, levels and sizes give the reference bytes', async () => {
  let n = 0, changed = 0;
  for (const [w, h, scenes, levels] of CASES) {
    for (let k = 0; k < scenes; k++) {
      const img = renderScene(`ms9-${k}`, w, h);
      for (const level of levels) {
        const seed = 31 * k + 7;
        const a = await corrupt(img, 'mean_shift', level, seed);
        const b = await corruptV1(img, 'mean_shift', level, seed);
        assert.ok(Buffer.from(a.data).equals(Buffer.from(b.data)), `${w}x${h} scene ${k} level ${level}: ${firstDiff(a.data, b.data)}`);
        if (!Buffer.from(a.data).equals(Buffer.from(img.data))) changed++;
        n++;
      }
    }
  }
  assert.equal(n, 6 * 8 + 2 * 3 + 2 * 2 + 2 * 2 + 1 + 2);
  // The comparison means something only if the filter did change the images.
  assert.ok(changed >= n - 2, `only ${changed} of ${n} outputs differ from their input`);
});
