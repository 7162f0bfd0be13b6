// The wire codec on the orchestrator's hot messages, without sockets: encoding a TaskBundle of CODEC_TASKS rollout
// tasks (the load bench's tasks: one item, a [3,4,4] image) and decoding a ResultBundle of as many results (a
// [3,4,4] action each), with the direct codec (lib/transport/wire-codec.ts) and with proto-loader's serialisers,
// interleaved in rounds (one timing each per round), the median per task of each and their ratio. CPU time
// (process.cpuUsage), one process.
//   CODEC_TASKS=10 CODEC_ROUNDS=5 npm run bench codec
import { cpus, loadavg } from 'node:os';
import protobuf from 'protobufjs';
import { PROTO_PATH } from '../lib/transport/proto.ts';
import { encodeTensor } from '../lib/transport/index.ts';
import { orchestratorServiceDefinition, useWireCodec, type WireCodecName } from '../lib/transport/grpc-common.ts';

type Connect = { requestSerialize: (v: unknown) => Buffer; requestDeserialize: (b: Buffer) => unknown; responseSerialize: (v: unknown) => Buffer; responseDeserialize: (b: Buffer) => unknown };

function connectOf(codec: WireCodecName): Connect {
  useWireCodec(codec);
  try {
    return (orchestratorServiceDefinition() as unknown as { Connect: Connect }).Connect;
  } finally {
    useWireCodec('direct');
  }
}

/** CPU microseconds per call of f, over enough calls for ~reps. */
function cpuPerCall(f: () => unknown, reps: number): number {
  for (let i = 0; i < reps / 10; i++) f();
  const t0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) f();
  const c = process.cpuUsage(t0);
  return (c.user + c.system) / reps;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function run(): Promise<void> {
  const n = Number(process.env.CODEC_TASKS ?? 10);
  const rounds = Number(process.env.CODEC_ROUNDS ?? 5);
  if (!(Number.isInteger(n) && n > 0 && Number.isInteger(rounds) && rounds > 0)) throw new Error('CODEC_TASKS and CODEC_ROUNDS must be positive integers');
  const image = encodeTensor({ dtype: 'float32', shape: [3, 4, 4], data: new Float32Array(48).fill(0.25) });
  const action = encodeTensor({ dtype: 'float32', shape: [3, 4, 4], data: new Float32Array(48).fill(0.5) });
  const tasks = { task_bundle: { rollout_tasks: Array.from({ length: n }, (_, i) => ({ task_id: `load-t${i}-0123456789abcdef01234567`, attempt: 1, lease_ms: 60000, policy_version_min: 0, items: [{ sample_id: `s${i}`, group_index: 0, noise_seed: String(1000 + i), image }] })), score_tasks: [] } };
  const results = { result_bundle: { rollout_results: Array.from({ length: n }, (_, i) => ({ task_id: `load-t${i}-0123456789abcdef01234567`, attempt: 1, policy_version: 0, items: [{ sample_id: `s${i}`, group_index: 0, action, logp: -1 }] })) } };
  const codecs: WireCodecName[] = ['proto-loader', 'direct'];
  const c = Object.fromEntries(codecs.map((k) => [k, connectOf(k)])) as Record<WireCodecName, Connect>;
  const resultBytes = c['proto-loader'].requestSerialize(results);
  const taskBytes = c['proto-loader'].responseSerialize(tasks);
  // Round 7's two-pass encoder against protobufjs's generated encoder on the same plain objects (the direct codec's
  // encoder before round 7), the same bytes.
  const root = new protobuf.Root();
  root.loadSync(PROTO_PATH, { keepCase: true });
  root.resolveAll();
  const orchestratorType = root.lookupType('recovery.v1.OrchestratorMessage');
  const workerType = root.lookupType('recovery.v1.WorkerMessage');
  const reps = Math.max(200, Math.round(40000 / n));
  const t: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    for (const k of codecs) {
      (t[`${k} encode tasks`] ??= []).push(cpuPerCall(() => c[k].responseSerialize(tasks), reps) / n);
      (t[`${k} decode results`] ??= []).push(cpuPerCall(() => c[k].requestDeserialize(resultBytes), reps) / n);
      (t[`${k} encode results`] ??= []).push(cpuPerCall(() => c[k].requestSerialize(results), reps) / n);
      (t[`${k} decode tasks`] ??= []).push(cpuPerCall(() => c[k].responseDeserialize(taskBytes), reps) / n);
    }
    (t['protobufjs encode tasks'] ??= []).push(cpuPerCall(() => orchestratorType.encode(tasks).finish(), reps) / n);
    (t['protobufjs encode results'] ??= []).push(cpuPerCall(() => workerType.encode(results).finish(), reps) / n);
  }
  console.log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} cores; ${n} tasks per bundle, ${rounds} rounds, CPU us per task (median):`);
  for (const what of ['encode tasks', 'decode results', 'encode results', 'decode tasks']) {
    const pl = median(t[`proto-loader ${what}`]!);
    const d = median(t[`direct ${what}`]!);
    console.log(`  ${what.padEnd(15)} proto-loader ${pl.toFixed(2)} us, direct ${d.toFixed(2)} us: ${(pl / d).toFixed(2)}x`);
  }
  for (const what of ['encode tasks', 'encode results']) {
    const pb = median(t[`protobufjs ${what}`]!);
    const d = median(t[`direct ${what}`]!);
    console.log(`  ${what.padEnd(15)} protobufjs's generated encoder (round 6's direct codec) ${pb.toFixed(2)} us, two-pass encoder ${d.toFixed(2)} us: ${(pb / d).toFixed(2)}x`);
  }
  const side = (k: WireCodecName) => median(t[`${k} encode tasks`]!) + median(t[`${k} decode results`]!);
  console.log(`  orchestrator side (encode tasks + decode results): proto-loader ${side('proto-loader').toFixed(2)} us, direct ${side('direct').toFixed(2)} us per task`);
}
