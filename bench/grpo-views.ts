// Does the GRPO step cost more CPU when its inputs are views of a received TrainBatch (round 29: the direct codec
// aligns them to 4 bytes inside the message's buffer) than when they are fresh arrays (round 28: ~3 in 4 copied)?
// (docs/performance-history/pipeline.md, "Round 29: wire29".) One process, one trainer: the default run's GRPO batches
// (32 actions at 32 px, dense; rolled out from the initial policy, seeded) encoded by the direct codec, framed as
// grpc-js hands them over and decoded by decodeTrainBatch (actions, logp_old and advantage_map views of the message),
// then each step either on those views or on copies of them (fresh arrays, as a decode that copies gives), the arms
// alternating step by step (ABBA). Printed: mean CPU ms per grpoUpdate (process.cpuUsage, every thread) per arm.
//
//   nice -n 10 node --import tsx bench/grpo-views.ts      # GV_STEPS=60 (per arm)
import { loadavg } from 'node:os';
import * as protoLoader from '@grpc/proto-loader';
import { parseConfig } from '../lib/config/index.ts';
import { initialParamsOf } from '../lib/models/bundle.ts';
import { PolicyRunner } from '../lib/models/runner.ts';
import { PolicyTrainer } from '../lib/models/trainer.ts';
import { ssimMapSize } from '../lib/models/ssim.ts';
import { grpoUpdate } from '../lib/grpo/update.ts';
import { grpoHyper, startGrpoPhase } from '../lib/grpo/algorithm.ts';
import { encodeTensor } from '../lib/transport/tensor.ts';
import { envelopeCodec } from '../lib/transport/wire-codec.ts';
import { LOADER_OPTIONS, PROTO_PATH, type OrchestratorMessage__Output } from '../lib/transport/proto.ts';
import { decodeTrainBatch, type GrpoBatchInputs } from '../learner/batch.ts';

const STEPS = Number(process.env.GV_STEPS ?? 60);
const WARM = 4;
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const config = parseConfig({ run: { id: 'grpo-views', seed: 0 }, grpo: { advantageMode: 'dense' } }, { overrides: [], source: 'bench' });
const H = config.data.size as number;
const G = config.grpo.groupSize as number;
const groups = config.grpo.samplesPerBatch as number;
const n = G * groups;
const per = 3 * H * H;
const h = ssimMapSize(H);

const def = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
const connect = (def['recovery.v1.Orchestrator'] as unknown as Record<string, protoLoader.MethodDefinition<unknown, unknown>>)['Connect']!;
const codec = envelopeCodec(PROTO_PATH, 'recovery.v1.OrchestratorMessage', { encode: connect.responseSerialize, decode: connect.responseDeserialize });

const params = initialParamsOf(config);
const runner = await PolicyRunner.create(config);
let s = 1;
const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
const normal = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
const views: GrpoBatchInputs[] = [];
for (let b = 0; b < 4; b++) {
  const distinct = new Float32Array(groups * per);
  for (let g = 0; g < groups; g++) distinct.set(Float32Array.from({ length: per }, (_, i) => 0.5 + 0.3 * Math.sin(i * (0.013 + 0.007 * (b * groups + g))) + 0.05 * normal()), g * per);
  const images = new Float32Array(n * per);
  for (let i = 0; i < n; i++) images.set(distinct.subarray(Math.floor(i / G) * per, (Math.floor(i / G) + 1) * per), i * per);
  const r = await runner.sample(params, images, Float32Array.from({ length: n * per }, normal), n, true);
  const t = (data: Float32Array, shape: number[]) => encodeTensor({ dtype: 'float32', shape, data }, { share: true });
  const bytes = codec.encode({
    train_batch: {
      batch_id: `b${b}`, batch_seq: b + 3, kind: 'GRPO', distinct_images: t(distinct, [groups, 3, H, H]), image_rows: Array.from({ length: n }, (_, i) => Math.floor(i / G)),
      actions: t(r.action, [n, 3, H, H]), logp_old: t(r.logpMap!, [n, 3, H, H]), advantages: t(Float32Array.from({ length: n }, normal), [n]),
      advantage_map: t(Float32Array.from({ length: n * 3 * h * h }, () => 0.1 * normal()), [n, 3, h, h]), sample_ids: [],
    },
  });
  const framed = Buffer.alloc(bytes.length + 5);
  bytes.copy(framed, 5);
  const m = codec.decode(framed.subarray(5)) as OrchestratorMessage__Output;
  const d = decodeTrainBatch(m.train_batch!, { height: H, width: H, mode: 'dense' });
  if (d.kind !== 'grpo') throw new Error('not GRPO');
  if (d.actions.buffer !== framed.buffer || d.logpOld.buffer !== framed.buffer) throw new Error('the decoded tensors are not views');
  views.push(d);
}
await runner.release();
const copies = views.map((v) => ({ ...v, actions: v.actions.slice(), logpOld: v.logpOld.slice(), advantages: v.advantages.slice(), advantageMap: v.advantageMap!.slice() }));
console.log(`views: actions at byte ${views[0]!.actions.byteOffset} (mod 64: ${views[0]!.actions.byteOffset % 64}), logp_old at ${views[0]!.logpOld.byteOffset % 64} mod 64; copies at offset 0`);

const trainer = PolicyTrainer.create(config, params);
const reference = { params: startGrpoPhase(params, trainer.optimizer), runner: async () => await PolicyRunner.create(config) };
const refRunner = await reference.runner();
const ref = { params: reference.params, runner: async () => refRunner };
const hyper = grpoHyper(config);
const cpu: Record<'views' | 'copies', number[]> = { views: [], copies: [] };
for (let k = 0; k < 2 * (STEPS + WARM); k++) {
  const arm = (k % 4 === 0 || k % 4 === 3) ? 'views' : 'copies'; // ABBA
  const b = (arm === 'views' ? views : copies)[Math.floor(k / 2) % 4]!;
  const c0 = process.cpuUsage();
  const r = await grpoUpdate(trainer, ref, b, hyper);
  const c = process.cpuUsage(c0);
  if (!r.step.applied) throw new Error(`step ${k} not applied: ${r.step.reason}`);
  if (k >= 2 * WARM) cpu[arm].push((c.user + c.system) / 1000);
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`grpoUpdate CPU ms per step, ${STEPS} steps per arm (ABBA), load average ${load()}`);
for (const arm of ['views', 'copies'] as const) console.log(`  ${arm.padEnd(7)} mean ${mean(cpu[arm]).toFixed(2)}  median ${median(cpu[arm]).toFixed(2)}`);
await refRunner.release();
process.exit(0);
