// Runs the forward check's two models (lib/import/forward-check-sync.ts) in onnxruntime and posts their outputs,
// then wakes the loading thread that waits on `signal`. Plain JavaScript: a worker does not inherit the tsx
// loader when the CLI registers it through the API (as lib/graph/graph-thread-worker.mjs).
import { workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

const { runs, signal, port } = workerData;
try {
  const outputs = [];
  for (const { model, feeds } of runs) {
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
    const tensors = Object.fromEntries(Object.entries(feeds).map(([name, f]) => [name, new ort.Tensor('float32', f.data, f.dims)]));
    const out = await session.run(tensors);
    outputs.push(Object.fromEntries(Object.entries(out).map(([name, t]) => [name, { data: Float32Array.from(t.data, Number), dims: [...t.dims] }])));
    await session.release();
  }
  port.postMessage({ outputs });
} catch (e) {
  port.postMessage({ error: e instanceof Error ? e.message : String(e) });
}
port.close();
Atomics.store(signal, 0, 1);
Atomics.notify(signal, 0);
