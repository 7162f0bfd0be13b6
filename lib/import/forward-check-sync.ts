// The import command's forward check (report.ts: the imported graph against onnxruntime running the original
// file, random input at batch 2), run synchronously for the loaders that import a network synchronously
// (importedPolicy): the two sessions run in a worker thread while this thread waits on an Atomics flag.

import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import type { Fetches } from '../graph/runtime.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import type { ImportedNetwork } from './onnx-import.ts';
import { compareForward, forwardPlan, type ForwardResult } from './report.ts';

/** Bound on the wait (a thread that dies before answering would otherwise hold the load forever). */
const WAIT_MS = 300_000;

export function forwardCheckSync(net: ImportedNetwork, original: Uint8Array, weights: TensorMap, batch = 2, seed = 1): ForwardResult {
  const plan = forwardPlan(net, original, weights, batch, seed);
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL('./forward-check-worker.mjs', import.meta.url), {
    workerData: { runs: [plan.ours, plan.reference], signal, port: port2 },
    transferList: [port2],
  });
  worker.unref();
  if (Atomics.wait(signal, 0, 0, WAIT_MS) === 'timed-out') {
    void worker.terminate();
    throw new Error(`${net.source}: the forward check against onnxruntime did not finish in ${WAIT_MS / 1000} s`);
  }
  const reply = receiveMessageOnPort(port1)?.message as { outputs?: [Fetches, Fetches]; error?: string } | undefined;
  port1.close();
  if (!reply?.outputs) throw new Error(`${net.source}: the forward check against onnxruntime could not run: ${reply?.error ?? 'no reply from its thread'}`);
  return compareForward(net, plan, reply.outputs[0], reply.outputs[1]);
}
