// The WebAssembly modules run from committed binaries (lib/data/wasm/*.wasm: mean_shift's mode search, round 18 ms18;
// libvips' exact convolution, round 18 mb18): each must be what its AssemblyScript source compiles to, or a change to
// the source would not reach the product (their behaviour is pinned by the parity tests against the frozen reference).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { buildWasm, WASM_MODULES } from '../../scripts/build-wasm.ts';
import { meanShiftModes } from '../../lib/data/mean-shift-modes.ts';

// All three compiled at once, by one compiler (scripts/build-wasm.ts): a real -O3 build, compared byte for byte.
let builds: ReturnType<typeof buildWasm> | undefined;
WASM_MODULES.forEach(({ source, wasm }, i) => {
  test(`the committed ${wasm} is what its source builds`, async () => {
    const committed = readFileSync(new URL(`../../${wasm}`, import.meta.url));
    const built = (await (builds ??= buildWasm(WASM_MODULES.map((m) => m.source))))[i]!;
    if (built instanceof Error) throw built;
    assert.ok(Buffer.from(built).equals(committed), `${wasm} differs from what ${source} builds: run node --import tsx scripts/build-wasm.ts`);
  });
});

test('meanShiftModes names buffers too short for the image', () => {
  assert.throws(() => meanShiftModes(new Float64Array(11), 2, 2, 1, 1), /meanShiftModes: buffers of 11 and 12 values for 2x2/);
  assert.throws(() => meanShiftModes(new Float64Array(12), 2, 2, 1, 1, new Float32Array(6)), /buffers of 12 and 6 values/);
});
