// The AssemblyScript compiler in a worker thread started without tsx (scripts/build-wasm.ts starts it): under tsx's
// loader hooks importing the compiler took ~5-7 s (its binaryen module, a 13 MB ES module, goes through tsx's
// load hook), without them ~0.5 s. Plain JavaScript, as the worker has no TypeScript loader.
// workerData: { asc: the compiler's module URL, jobs: [{ source, args }] }; posts [{ source, wasm } | { source, error }].
import { parentPort, workerData } from 'node:worker_threads';

const { default: asc } = await import(workerData.asc);
const results = [];
for (const { source, args } of workerData.jobs) {
  let wasm;
  const { error, stderr } = await asc.main(args, {
    writeFile: (name, contents) => { if (name === 'out.wasm' && typeof contents !== 'string') wasm = contents; },
  });
  results.push(error ? { source, error: `${error.message}\n${stderr.toString()}` } : { source, wasm });
}
parentPort.postMessage(results);
