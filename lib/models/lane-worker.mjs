// One lane of SessionLanes (lib/models/lanes.ts), in a worker thread: its own onnxruntime session with one
// thread per operator. onnxruntime-node runs a graph synchronously on the calling thread, so sessions in
// worker threads are the only way one process runs two graph calls at once. Plain JavaScript: a worker
// does not inherit the tsx loader when the CLI registers it through the API.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

const session = await ort.InferenceSession.create(workerData.model, {
  executionProviders: ['cpu'],
  graphOptimizationLevel: 'all',
  intraOpNumThreads: 1,
  extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
});

// Messages are handled one at a time (each run is synchronous), so the main thread can queue the next one.
parentPort.on('message', async (msg) => {
  if (msg.kind === 'close') {
    // Release the session here, on its own thread, and let the thread end by itself: terminating a thread
    // that still holds an onnxruntime session aborts the process (Napi::Error at teardown).
    await session.release();
    parentPort.close();
    return;
  }
  try {
    const feeds = {};
    for (const [name, f] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor('float32', new Float32Array(msg.buffer, f.offset, f.length), f.dims);
    const result = await session.run(feeds, msg.outputs);
    const out = {};
    const transfer = [];
    for (const [name, t] of Object.entries(result)) {
      if (!(t.data instanceof Float32Array)) throw new Error(`output ${name}: expected float32, got ${t.type}`);
      const data = new Float32Array(t.data); // own buffer: transferable
      out[name] = { data, dims: t.dims };
      transfer.push(data.buffer);
    }
    // The input buffer goes back to be filled with the next slice.
    parentPort.postMessage({ id: msg.id, out, buffer: msg.buffer }, [...transfer, msg.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: msg.id, error: e instanceof Error ? e.message : String(e), buffer: msg.buffer }, [msg.buffer]);
  }
});
parentPort.postMessage({ ready: true });
