// One onnxruntime session in a worker thread (lib/graph/graph-thread.ts). onnxruntime-node runs a graph
// synchronously on the calling thread, so a session here leaves the process's event loop free while it runs, and
// several of them run at once. Plain JavaScript: a worker does not inherit the tsx loader when the CLI registers it
// through the API.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

let session;
try {
  session = await ort.InferenceSession.create(workerData.model, workerData.options);
} catch (e) {
  parentPort.postMessage({ error: e instanceof Error ? e.message : String(e) });
  parentPort.close();
}

async function handle(msg) {
  if (msg.kind === 'close') {
    // Release the session here, on its own thread, and let the thread end by itself: terminating a thread while it
    // is inside an onnxruntime run aborts the process (Napi::Error at teardown).
    if (workerData.options.enableProfiling) session.endProfiling();
    await session.release();
    parentPort.close();
    return;
  }
  try {
    const feeds = {};
    for (const [name, f] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor('float32', new Float32Array(msg.buffer, f.offset, f.length), f.dims);
    const result = msg.outputs ? await session.run(feeds, msg.outputs) : await session.run(feeds);
    const out = {};
    const transfer = [];
    for (const [name, t] of Object.entries(result)) {
      if (!(t.data instanceof Float32Array)) throw new Error(`output ${name}: expected float32, got ${t.type}`);
      const data = new Float32Array(t.data); // own buffer: transferable
      out[name] = { data, dims: t.dims };
      transfer.push(data.buffer);
    }
    // The input buffer goes back, to be filled with a later call's feeds.
    parentPort.postMessage({ id: msg.id, out, buffer: msg.buffer }, [...transfer, msg.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: msg.id, error: e instanceof Error ? e.message : String(e), buffer: msg.buffer }, [msg.buffer]);
  }
}

if (session) {
  // One message after another (a close waits for the runs queued before it); the main thread queues the next meanwhile.
  let queue = Promise.resolve();
  parentPort.on('message', (msg) => {
    queue = queue.then(() => handle(msg));
  });
  parentPort.postMessage({ ready: true, inputNames: session.inputNames, outputNames: session.outputNames });
}
