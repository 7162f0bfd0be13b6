// Whether this machine can run graphs on a device, asked when a role starts, before it joins a run: a worker told
// to use a GPU its machine lacks then ends at once with the reason (a SetupError: no restart cures it), not after
// the Welcome, nor (the learner, whose sessions are made at its first batch) at every batch.
import type { Device } from './device.ts';
import { Graph } from './graph.ts';
import { serialize } from './onnx.ts';
import { add } from './ops.ts';
import { GraphSession } from './runtime.ts';
import { SetupError } from '../config/setup-error.ts';

/** Creates and runs a one-node session on `device` (nothing for cpu); throws GraphSession.create's SetupError if it cannot. */
export async function checkDevice(device: Device): Promise<void> {
  if (device === 'cpu') return;
  const g = new Graph();
  const x = g.input('x', [1]);
  g.output('y', add(x, x));
  const session = await GraphSession.create(serialize(g), { device });
  try {
    await session.run({ x: { data: Float32Array.of(1), dims: [1] } });
  } catch (e) {
    throw new SetupError(`device ${device}: a one-node graph did not run on it: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  } finally {
    await session.release();
  }
}
