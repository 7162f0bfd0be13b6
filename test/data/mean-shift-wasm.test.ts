// mean_shift's mode search runs from a committed WebAssembly binary (lib/data/wasm/mean-shift-modes.wasm, round 18):
// it must be what its AssemblyScript source compiles to, or a change to the source would not reach the product
// (its behaviour is pinned by mean-shift-parity.test.ts against the frozen reference).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { buildMeanShiftWasm, MEAN_SHIFT_WASM, MEAN_SHIFT_WASM_SOURCE } from '../../scripts/build-wasm.ts';
import { meanShiftModes } from '../../lib/data/mean-shift-modes.ts';

test('the committed mean-shift-modes.wasm is what its source builds', async () => {
  const committed = readFileSync(new URL(`../../${MEAN_SHIFT_WASM}`, import.meta.url));
  const built = await buildMeanShiftWasm();
  assert.ok(Buffer.from(built).equals(committed), `${MEAN_SHIFT_WASM} differs from what ${MEAN_SHIFT_WASM_SOURCE} builds: run node --import tsx scripts/build-wasm.ts`);
});

test('meanShiftModes names buffers too short for the image', () => {
  assert.throws(() => meanShiftModes(new Float64Array(11), 2, 2, 1, 1), /meanShiftModes: buffers of 11 and 12 values for 2x2/);
  assert.throws(() => meanShiftModes(new Float64Array(12), 2, 2, 1, 1, new Float32Array(6)), /buffers of 12 and 6 values/);
});
