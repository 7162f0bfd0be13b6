// Builds lib/data/wasm/mean-shift-modes.wasm (mean_shift's mode search) from its AssemblyScript source:
// `node --import tsx scripts/build-wasm.ts`. The binary is committed, so the product needs no compiler (assemblyscript
// is a devDependency, pinned: another compiler version may emit other bytes); test/data/mean-shift-wasm.test.ts
// fails while the committed file differs from what this builds.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import asc from 'assemblyscript/asc';

const root = fileURLToPath(new URL('../', import.meta.url));
export const MEAN_SHIFT_WASM_SOURCE = 'lib/data/wasm/mean-shift-modes.as.ts';
export const MEAN_SHIFT_WASM = 'lib/data/wasm/mean-shift-modes.wasm';

/** The module's bytes as the source compiles now (speed-optimised, no runtime beyond a stub, SIMD on). */
export async function buildMeanShiftWasm(): Promise<Uint8Array> {
  let wasm: Uint8Array | undefined;
  const { error, stderr } = await asc.main(
    [MEAN_SHIFT_WASM_SOURCE, '--outFile', 'out.wasm', '-O3', '--noAssert', '--runtime', 'stub', '--enable', 'simd', '--baseDir', root],
    { writeFile: (name: string, contents: Uint8Array | string) => { if (name === 'out.wasm' && typeof contents !== 'string') wasm = contents; } },
  );
  if (error) throw new Error(`asc ${MEAN_SHIFT_WASM_SOURCE}: ${error.message}\n${stderr.toString()}`);
  if (!wasm) throw new Error(`asc ${MEAN_SHIFT_WASM_SOURCE}: no module written`);
  return wasm;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const target = resolve(root, MEAN_SHIFT_WASM);
  writeFileSync(target, await buildMeanShiftWasm());
  console.log(`wrote ${target}`);
}
