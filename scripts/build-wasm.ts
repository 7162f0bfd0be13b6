// Builds the WebAssembly modules under lib/data/wasm from their AssemblyScript sources:
// `node --import tsx scripts/build-wasm.ts`. The binaries are committed, so the product needs no compiler
// (assemblyscript is a devDependency, pinned: another compiler version may emit other bytes);
// test/data/wasm-build.test.ts fails while a committed file differs from what this builds.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

const root = fileURLToPath(new URL('../', import.meta.url));

/** Each module: its source and the committed binary (mean_shift's mode search; libvips' exact convolution; lineBlur's rows). */
export const WASM_MODULES = [
  { source: 'lib/data/wasm/mean-shift-modes.as.ts', wasm: 'lib/data/wasm/mean-shift-modes.wasm' },
  { source: 'lib/data/wasm/convolve-exact.as.ts', wasm: 'lib/data/wasm/convolve-exact.wasm' },
  { source: 'lib/data/wasm/line-blur.as.ts', wasm: 'lib/data/wasm/line-blur.wasm' },
] as const;

type Compiled = { source: string; wasm: Uint8Array } | { source: string; error: string };

/**
 * The modules' bytes as their sources compile now (speed-optimised, no runtime beyond a stub, SIMD on), in the
 * order given; a source that does not compile gives an Error naming it in its place. One compiler serves them all,
 * in a worker thread without tsx's loader hooks (scripts/wasm-compiler.mjs): loading the compiler under them took
 * most of the ~7-10 s the three builds took.
 */
export async function buildWasm(sources: readonly string[]): Promise<Array<Uint8Array | Error>> {
  const jobs = sources.map((source) => ({
    source,
    args: [source, '--outFile', 'out.wasm', '-O3', '--noAssert', '--runtime', 'stub', '--enable', 'simd', '--baseDir', root],
  }));
  const worker = new Worker(new URL('./wasm-compiler.mjs', import.meta.url), {
    execArgv: [],
    workerData: { asc: import.meta.resolve('assemblyscript/asc'), jobs },
  });
  const results = await new Promise<Compiled[]>((done, fail) => {
    worker.once('message', done);
    worker.once('error', fail);
    worker.once('exit', (code) => fail(new Error(`the AssemblyScript compiler's worker exited (code ${code}) before it answered`)));
  });
  await worker.terminate();
  return results.map((r) => ('error' in r ? new Error(`asc ${r.source}: ${r.error}`) : r.wasm ?? new Error(`asc ${r.source}: no module written`)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const built = await buildWasm(WASM_MODULES.map((m) => m.source));
  WASM_MODULES.forEach(({ wasm }, i) => {
    const bytes = built[i]!;
    if (bytes instanceof Error) throw bytes;
    const target = resolve(root, wasm);
    writeFileSync(target, bytes);
    console.log(`wrote ${target}`);
  });
}
