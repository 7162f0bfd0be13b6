// A TrainBatch of the default run through the wire codecs (docs/performance-history/pipeline.md, "Round 29: wire29"):
// the orchestrator's encode and the learner's decode + decodeTrainBatch, with proto-loader's serialisers (what round
// 28 used for every TrainBatch: its envelope codec left them to proto-loader) against the direct codec (round 29),
// in this process, the arms interleaved. A GRPO batch of 32 actions at 32 px, dense advantages (distinct_images 4 of
// [3,32,32], actions and per-element logp_old [32,3,32,32], advantage_map [32,3,22,22], advantages [32]): ~1 MB.
// The bytes decoded are framed as grpc-js hands them over (5 bytes into a buffer of their own), so the direct codec's
// padding aligns the tensors there. Printed: CPU microseconds per batch (process.cpuUsage, user + system), the median
// of ROUNDS rounds of ITERS batches each, and which decoded tensors are views.
//
//   nice -n 10 node --import tsx bench/train-batch-codec.ts   # TB_ROUNDS=15 TB_ITERS=40
import * as protoLoader from '@grpc/proto-loader';
import { loadavg } from 'node:os';
import { LOADER_OPTIONS, PROTO_PATH, type OrchestratorMessage__Output, type TrainBatch } from '../lib/transport/proto.ts';
import { envelopeCodec } from '../lib/transport/wire-codec.ts';
import { encodeTensor } from '../lib/transport/tensor.ts';
import { decodeTrainBatch } from '../learner/batch.ts';

const ROUNDS = Number(process.env.TB_ROUNDS ?? 15);
const ITERS = Number(process.env.TB_ITERS ?? 40);
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const H = 32;
const N = 32;
const MAP = H - 10;
const f32 = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7 + i));
const t = (data: Float32Array, shape: number[]) => encodeTensor({ dtype: 'float32', shape, data }, { share: true });
const pix = 3 * H * H;
const batch: TrainBatch = {
  batch_id: 'run-b123', batch_seq: 123, kind: 'GRPO', lease_ms: 60000,
  distinct_images: t(f32(4 * pix, 1), [4, 3, H, H]), image_rows: Array.from({ length: N }, (_, i) => i >> 3),
  actions: t(f32(N * pix, 2), [N, 3, H, H]), logp_old: t(f32(N * pix, 3), [N, 3, H, H]), advantages: t(f32(N, 4), [N]),
  advantage_map: t(f32(N * 3 * MAP * MAP, 5), [N, 3, MAP, MAP]), behaviour_versions: Array(N).fill(122),
  sample_ids: Array.from({ length: N }, (_, i) => `run-s${1000 + i}`), group_indices: Array.from({ length: N }, (_, i) => i >> 3),
};
const msg = { train_batch: batch };

const def = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
const connect = (def['recovery.v1.Orchestrator'] as unknown as Record<string, protoLoader.MethodDefinition<unknown, unknown>>)['Connect']!;
const loader = { encode: connect.responseSerialize, decode: connect.responseDeserialize };
const direct = envelopeCodec(PROTO_PATH, 'recovery.v1.OrchestratorMessage', loader);
const arms = { 'proto-loader (round 28)': loader, 'direct codec (round 29)': direct } as const;
type Arm = keyof typeof arms;

const framed = (b: Buffer) => {
  const f = Buffer.allocUnsafe(b.length + 5);
  b.copy(f, 5);
  return f.subarray(5);
};
const cpuUs = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};
const learnerSide = (arm: Arm, bytes: Buffer) => {
  const m = arms[arm].decode(bytes) as OrchestratorMessage__Output;
  return decodeTrainBatch(m.train_batch!, { height: H, width: H, mode: 'dense' });
};

const received = new Map<Arm, Buffer[]>();
for (const arm of Object.keys(arms) as Arm[]) {
  received.set(arm, Array.from({ length: ITERS }, () => framed(arms[arm].encode(msg))));
  const d = learnerSide(arm, received.get(arm)![0]!);
  if (d.kind !== 'grpo') throw new Error('not a GRPO batch');
  const views = (['actions', 'logpOld', 'advantages', 'advantageMap'] as const).filter((k) => d[k]!.buffer === received.get(arm)![0]!.buffer);
  console.log(`${arm}: ${received.get(arm)![0]!.length} bytes; views of the message: ${views.join(', ') || 'none'}`);
}
const enc = new Map<Arm, number[]>();
const dec = new Map<Arm, number[]>();
for (let r = 0; r < ROUNDS + 2; r++) {
  const order = (Object.keys(arms) as Arm[])[r % 2 ? 'reverse' : 'slice']();
  for (const arm of order) {
    let t0 = cpuUs();
    for (let i = 0; i < ITERS; i++) arms[arm].encode(msg);
    const e = (cpuUs() - t0) / ITERS;
    t0 = cpuUs();
    for (const b of received.get(arm)!) learnerSide(arm, b);
    const d = (cpuUs() - t0) / ITERS;
    if (r < 2) continue; // warm-up
    (enc.get(arm) ?? enc.set(arm, []).get(arm)!).push(e);
    (dec.get(arm) ?? dec.set(arm, []).get(arm)!).push(d);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`TrainBatch of ${N} actions at ${H} px (dense), CPU us per batch, median of ${ROUNDS} rounds x ${ITERS}; load average ${load()}`);
for (const arm of Object.keys(arms) as Arm[]) {
  console.log(`  ${arm.padEnd(26)} orchestrator encode ${median(enc.get(arm)!).toFixed(0).padStart(5)}   learner decode + decodeTrainBatch ${median(dec.get(arm)!).toFixed(0).padStart(5)}`);
}
