// Builds the WebAssembly modules under lib/data/wasm from their AssemblyScript sources:
// `node --import tsx scripts/build-wasm.ts`. The binaries are committed, so the product needs no compiler
// (assemblyscript is a devDependency, pinned: another compiler version may emit other bytes);
// test/data/wasm-build.test.ts fails while a committed file differs from what this builds.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import asc from 'assemblyscript/asc';

const root = fileURLToPath(new URL('../', import.meta.url));

/** Each module: its source and the committed binary (mean_shift's mode search; libvips' exact convolution; lineBlur's rows). */
export const WASM_MODULES = [
  { source: 'lib/data/wasm/mean-shift-modes.as.ts', wasm: 'lib/data/wasm/mean-shift-modes.wasm' },
  { source: 'lib/data/wasm/convolve-exact.as.ts', wasm: 'lib/data/wasm/convolve-exact.wasm' },
  { source: 'lib/data/wasm/line-blur.as.ts', wasm: 'lib/data/wasm/line-blur.wasm' },
] as const;

/** A module's bytes as its source compiles now (speed-optimised, no runtime beyond a stub, SIMD on). */
export async function buildWasm(source: string): Promise<Uint8Array> {
  let wasm: Uint8Array | undefined;
  const { error, stderr } = await asc.main(
    [source, '--outFile', 'out.wasm', '-O3', '--noAssert', '--runtime', 'stub', '--enable', 'simd', '--baseDir', root],
    { writeFile: (name: string, contents: Uint8Array | string) => { if (name === 'out.wasm' && typeof contents !== 'string') wasm = contents; } },
  );
  if (error) throw new Error(`asc ${source}: ${error.message}\n${stderr.toString()}`);
  if (!wasm) throw new Error(`asc ${source}: no module written`);
  return wasm;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  for (const { source, wasm } of WASM_MODULES) {
    const target = resolve(root, wasm);
    writeFileSync(target, await buildWasm(source));
    console.log(`wrote ${target}`);
  }
}
