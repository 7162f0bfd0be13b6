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

const buffers = new Map();

// Messages are handled one at a time (each run is synchronous), so the main thread can queue the next one.
parentPort.on('message', async (msg) => {
  if (msg.kind === 'close') {
    await session.release();
    parentPort.close();
    return;
  }
  try {
    const feeds = {};
    // onnxruntime refuses SharedArrayBuffer-backed arrays: copy into this slot's own buffer (kept between runs,
    // so its pages stay mapped).
    let local = buffers.get(msg.slot);
    if (!local || local.byteLength < msg.sab.byteLength) buffers.set(msg.slot, (local = new ArrayBuffer(msg.sab.byteLength)));
    new Uint8Array(local, 0, msg.sab.byteLength).set(new Uint8Array(msg.sab));
    for (const [name, f] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor('float32', new Float32Array(local, f.offset, f.length), f.dims);
    const t0 = performance.now();
    const result = await session.run(feeds, msg.outputs);
    if (process.env.LANE_TIMING) console.log('lane run', (performance.now() - t0).toFixed(2));
    const out = {};
    const transfer = [];
    for (const [name, t] of Object.entries(result)) {
      if (!(t.data instanceof Float32Array)) throw new Error(`output ${name}: expected float32, got ${t.type}`);
      const data = new Float32Array(t.data); // own buffer: transferable
      out[name] = { data, dims: t.dims };
      transfer.push(data.buffer);
    }
    parentPort.postMessage({ id: msg.id, out }, transfer);
  } catch (e) {
    parentPort.postMessage({ id: msg.id, error: e instanceof Error ? e.message : String(e) });
  }
});
parentPort.postMessage({ ready: true });
