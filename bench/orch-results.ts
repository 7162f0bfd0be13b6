// The orchestrator's per-group data path in one process, CPU per GRPO batch (4 groups of 8, 32 px, dense), for an
// interleaved A/B of two checkouts (docs/performance-history/pipeline.md, "Round 28: orch28"): a rollout result and a
// score result as a worker encodes them (the direct codec, so the tensors lie where the wire puts them), decoded and
// checked (decodeRolloutResult, decodeScoreResult), the score task built and encoded, and the TrainBatch assembled,
// encoded and digested; and beside them (rewardWorkerDecode, not the orchestrator's) the score task as the reward
// worker decodes it. Each checkout runs in its own child process (two module trees in one process compile
// differently: round 27's orch27), the arms alternate.
//
//   ORCH_AB_BASE=/tmp/round27-main nice -n 10 node --import tsx bench/orch-results.ts     # ORCH_AB_ROUNDS=6 ORCH_AB_BATCHES=300
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.env.ORCH_AB_ROUNDS ?? 6);
const BATCHES = Number(process.env.ORCH_AB_BATCHES ?? 300);

async function child(checkout: string): Promise<void> {
  const imp = async <T>(p: string) => (await import(resolve(checkout, p))) as T;
  const { parseConfig } = await imp<typeof import('../lib/config/index.ts')>('lib/config/index.ts');
  const T = await imp<typeof import('../lib/transport/index.ts')>('lib/transport/index.ts');
  const gc = await imp<typeof import('../lib/transport/grpc-common.ts')>('lib/transport/grpc-common.ts');
  const R = await imp<typeof import('../orchestrator/results.ts')>('orchestrator/results.ts');
  const M = await imp<typeof import('../orchestrator/messages.ts')>('orchestrator/messages.ts');
  const { assembleGrpoBatch } = await imp<typeof import('../lib/grpo/batch.ts')>('lib/grpo/batch.ts');
  const { policyLogStdRange } = await imp<typeof import('../lib/grpo/logp-bounds.ts')>('lib/grpo/logp-bounds.ts');
  const { ssimMapSize } = await imp<typeof import('../lib/models/ssim.ts')>('lib/models/ssim.ts');
  const H = 32, G = 8, GROUPS = 4, pix = 3 * H * H, h = ssimMapSize(H), L = 3 * h * h;
  const config = parseConfig({ run: { id: 'bench-orch-results', seed: 0 }, data: { size: H }, grpo: { groupSize: G, samplesPerBatch: GROUPS, advantageMode: 'dense' } });
  let seed = 1;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const arr = (n: number, f: () => number) => Float32Array.from({ length: n }, f);
  const policy = { logStd: policyLogStdRange(config.model) };
  const f32 = (data: Float32Array, shape: number[]) => T.encodeTensor({ dtype: 'float32', shape, data });
  // the bytes a worker sends, decoded as the orchestrator's server does (the request deserializer)
  const wire = (msg: object) => {
    const buf = gc.serializeRequest(msg);
    const framed = Buffer.concat([Buffer.alloc(5), buf]).subarray(5); // grpc-js: the message 5 bytes into its frame
    return (T as unknown as { __d?: never }) && deser(framed);
  };
  const svc = gc.orchestratorServiceDefinition() as unknown as { Connect: { requestDeserialize: (b: Buffer) => unknown } };
  const deser = (b: Buffer) => svc.Connect.requestDeserialize(b) as Record<string, never>;
  const rollouts = Array.from({ length: GROUPS }, (_, k) => wire({ rollout_result: {
    task_id: `bench-orch-results-r${k}-0000000${k}`, attempt: 1, policy_version: 3, compute_ms: 1,
    items: Array.from({ length: G }, (_, g) => ({ sample_id: `s${k}`, group_index: g, action: f32(arr(pix, () => rnd() * 1.2 - 0.1), [3, H, H]), logp: -20 + rnd(), logp_map: f32(arr(pix, () => -10 + rnd() * 4), [3, H, H]) })),
  } }).rollout_result);
  const scores = Array.from({ length: GROUPS }, (_, k) => wire({ score_result: {
    task_id: `bench-orch-results-s${k}-0000000${k}`, attempt: 1, compute_ms: 1, clip_encoder: 'toy',
    components: Array.from({ length: G }, () => ({ ssim: rnd(), clip_cos: rnd() })), ssim_map: f32(arr(G * L, () => rnd()), [G, 3, h, h]),
  } }).score_result);
  const clean = arr(pix, rnd);
  const cpu = { decodeRollout: 0, decodeScore: 0, scoreTask: 0, rewardWorkerDecode: 0, assemble: 0, trainBatch: 0, trainBatchEncode: 0, digest: 0 };
  const t = () => process.cpuUsage();
  const us = (a: NodeJS.CpuUsage) => { const b = process.cpuUsage(a); return b.user + b.system; };
  let sink = 0;
  for (let b = 0; b < BATCHES + 20; b++) {
    const count = b >= 20;
    const groups = [];
    for (let k = 0; k < GROUPS; k++) {
      let a = t();
      const d = R.decodeRolloutResult(rollouts[k] as never, G, H, true, policy);
      if (count) cpu.decodeRollout += us(a);
      a = t();
      const task = M.scoreTaskMessage(config, { taskId: `bench-orch-results-s${k}-0000000${k}`, actions: d.actions, clean, dense: true });
      const buf = gc.preserialize('response', task(1, 60000), 'score_task', 64 << 20);
      if (count) cpu.scoreTask += us(a);
      // the reward worker's side: the task as its client's deserializer gets it, its two tensors decoded
      const bytes = Object.getOwnPropertySymbols(buf).map((k) => (buf as unknown as Record<symbol, Buffer>)[k]!)[0]!;
      const framed = Buffer.concat([Buffer.alloc(5), bytes]).subarray(5);
      a = t();
      const got = gc.deserializeResponse(framed) as { score_task: { candidates: never; references: never } };
      sink += T.decodeTensor(got.score_task.candidates).data.length + T.decodeTensor(got.score_task.references).data.length;
      if (count) cpu.rewardWorkerDecode += us(a);
      a = t();
      const s = R.decodeScoreResult(scores[k] as never, G, H, true);
      if (count) cpu.decodeScore += us(a);
      sink += s.components.length + (buf ? 1 : 0);
      groups.push({ image: clean, actions: d.actions, logps: d.logps, versions: d.actions.map(() => 3), sampleId: `s${k}`, advantages: arr(G, rnd), advantageMaps: s.ssimMaps!.map((m) => m.slice()), logpMaps: d.logpMaps });
    }
    let a = t();
    const assembled = assembleGrpoBatch(groups as never, H, true);
    if (count) cpu.assemble += us(a);
    a = t();
    const batch = M.grpoTrainBatch(config, 100 + b, assembled);
    if (count) cpu.trainBatch += us(a);
    a = t();
    sink += gc.preserialize('response', { train_batch: batch }, 'train_batch', 64 << 20) ? 1 : 0;
    if (count) cpu.trainBatchEncode += us(a);
    a = t();
    sink += T.trainBatchDigest(batch).length;
    if (count) cpu.digest += us(a);
  }
  const per = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, +(v / BATCHES / 1000).toFixed(3)]));
  console.log(JSON.stringify({ ...per, orchestrator: +(Object.entries(cpu).filter(([k]) => k !== 'rewardWorkerDecode').reduce((x, [, y]) => x + y, 0) / BATCHES / 1000).toFixed(3), sink }));
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]!);
  const base = process.env.ORCH_AB_BASE;
  const arms = base ? [['base', resolve(base)], ['this', HERE]] : [['this', HERE]];
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, dir] of r % 2 ? [...arms].reverse() : arms) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', dir!], { cwd: dir, encoding: 'utf8' }).trim();
      console.log(`round ${r + 1} ${name.padEnd(4)} ms CPU per batch ${out}  load ${loadavg()[0]!.toFixed(1)}`);
    }
  }
}

await main();
