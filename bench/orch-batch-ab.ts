// The orchestrator's own CPU per GRPO batch, A/B in one process (docs/performance-history/pipeline.md, "Round 13: orch13"): the
// per-batch work of orchestrator/grpo-groups.ts that round 13 changed, on a default batch (32 px, G = 8, 4 groups,
// dense), with the modules of this checkout and of a base tree (ORCH_AB_BASE, default /work/main) alternated
// round by round, so that a loaded machine slows both arms alike. Per batch: 4 rollout results decoded (action and
// log-density map of 8 actions), 4 score tasks built and encoded, 4 score results decoded (float32 SSIM maps, as the reward workers send them since round 24),
// 4 groups' rewards and dense advantages (lib/grpo/algorithm.ts), the TrainBatch's tensors encoded, 9 event-log lines (4 rollout, 4 scored, 1 trained).
//
//   node --import tsx bench/orch-batch-ab.ts        # ORCH_AB_BASE=/work/main ORCH_AB_ROUNDS=6 ORCH_AB_BATCHES=300
import { mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { parseConfig } from '../lib/config/index.ts';

const BASE = resolve(process.env.ORCH_AB_BASE ?? '/work/main');
const ROUNDS = Number(process.env.ORCH_AB_ROUNDS ?? 6);
const BATCHES = Number(process.env.ORCH_AB_BATCHES ?? 300);
const H = 32, G = 8, GROUPS = 4, h = H - 10, PIX = 3 * H * H, MAP = 3 * h * h;

interface Arm {
  name: string;
  results: typeof import('../orchestrator/results.ts');
  messages: typeof import('../orchestrator/messages.ts');
  algorithm: typeof import('../lib/grpo/algorithm.ts');
  tensor: typeof import('../lib/transport/tensor.ts');
  events: typeof import('../lib/log/event-log.ts');
}

async function arm(name: string, root: string): Promise<Arm> {
  const m = (p: string) => import(join(root, p));
  return { name, results: await m('orchestrator/results.ts'), messages: await m('orchestrator/messages.ts'), algorithm: await m('lib/grpo/algorithm.ts'), tensor: await m('lib/transport/tensor.ts'), events: await m('lib/log/event-log.ts') };
}

let seed = 7;
const rnd = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
/** Bytes at an odd offset of a larger buffer, as a tensor arrives inside a received message. */
const wire = (bytes: Uint8Array, offset: number) => {
  const b = Buffer.alloc(bytes.length + offset + 16);
  b.set(bytes, offset);
  return b.subarray(offset, offset + bytes.length);
};

const config = parseConfig({});
const f32 = (n: number) => Float32Array.from({ length: n }, () => rnd() * 2 - 1);
const rollouts = Array.from({ length: GROUPS }, (_, k) => ({
  task_id: `r${k}`, attempt: 0, policy_version: 3, compute_ms: 1,
  items: Array.from({ length: G }, (_, i) => ({
    sample_id: `s${k}`, group_index: i, logp: -rnd(),
    action: { dtype: 'float32', shape: ['3', `${H}`, `${H}`], data: wire(new Uint8Array(f32(PIX).buffer), 1 + i) },
    logp_map: { dtype: 'float32', shape: ['3', `${H}`, `${H}`], data: wire(new Uint8Array(f32(PIX).buffer), 3 + i) },
  })),
}));
const ssimMaps = Float32Array.from({ length: G * MAP }, () => rnd() * 0.8);
const scores = Array.from({ length: GROUPS }, (_, k) => ({ task_id: `s${k}`, attempt: 0, compute_ms: 1, clip_encoder: '', components: [] as { ssim: number; clip_cos: number }[], ssim_map: null as unknown }));
const clean = f32(PIX);
const images = f32(GROUPS * G * PIX);

async function main(): Promise<void> {
  const arms = [await arm('base ' + BASE, BASE), await arm('this checkout', resolve(import.meta.dirname, '..'))];
  // the score results' maps travel as float32; their means are the ssim components (the dense consistency check)
  const maps = arms[0]!.tensor.encodeTensor({ dtype: 'float32', shape: [G, 3, h, h], data: ssimMaps });
  for (const s of scores) {
    s.ssim_map = { dtype: 'float32', shape: [G, 3, h, h].map(String), data: wire(maps.data as Uint8Array, 2 + s.task_id.length) };
    s.components = Array.from({ length: G }, (_, i) => {
      let m = 0;
      for (let l = 0; l < MAP; l++) m += ssimMaps[i * MAP + l]!;
      return { ssim: m / MAP, clip_cos: rnd() };
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'orch-batch-ab-'));
  const times = new Map<string, number[]>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const a of round % 2 ? [...arms].reverse() : arms) {
        const file = join(dir, `${round}-${a.name.length}.jsonl`);
        const log = 'openEventLog' in a.events ? a.events.openEventLog(file) : { append: (e: object) => a.events.appendEventLine(file, e), close: () => undefined };
        const algo = a.algorithm.compileAlgorithm(config); // the default: dense
        const t0 = process.cpuUsage();
        for (let b = 0; b < BATCHES; b++) {
          const actions: Float32Array[] = [];
          const logps: Float32Array[] = [];
          const adv: Float32Array[] = [];
          for (let k = 0; k < GROUPS; k++) {
            // the base may predate the policy argument (round 25: logp bounds); its 5th was then the flow plan
            const policy = 'rolloutPolicy' in a.results ? a.results.rolloutPolicy(config, `s${k}`) : undefined;
            const d = a.results.decodeRolloutResult(rollouts[k] as never, G, H, true, policy as never);
            actions.push(...d.actions);
            logps.push(...d.logpMaps!);
            log.append({ type: 'rollout', sample: `s${k}`, worker: 'rollout-0', version: 3, attempt: 0, compute_ms: 12.5 });
            const task = a.messages.scoreTaskMessage(config, { taskId: `s${k}`, actions: d.actions, clean, dense: true })(0, 1000);
            if (!task.score_task) throw new Error('no score task');
            const s = a.results.decodeScoreResult(scores[k] as never, G, H, true);
            const rewards = a.algorithm.rewardsOf(algo, s.components);
            const r = a.algorithm.advantagesOf(algo, { components: s.components, rewards, ssimMaps: s.ssimMaps! });
            if (!r.kept) throw new Error('dropped');
            adv.push(...r.advantageMaps!);
            log.append({ type: 'scored', sample: `s${k}`, worker: 'reward-0', reward: 0.5, compute_ms: 40.1 });
          }
          const n = GROUPS * G;
          const cat = (xs: Float32Array[], L: number) => { const o = new Float32Array(n * L); xs.forEach((x, i) => o.set(x, i * L)); return o; };
          a.messages.grpoTrainBatch(config, 40 + b, {
            n, images, actions: cat(actions, PIX), logpOld: cat(logps, PIX), advantages: new Float32Array(n), advantageMap: cat(adv, MAP),
            behaviourVersions: Array(n).fill(3), sampleIds: Array(n).fill('s'), groupIndices: Array.from({ length: n }, (_, i) => i % G),
          });
          log.append({ type: 'trained', seq: 40 + b, kind: 'grpo', applied: true, version: 4 + b, samples: Array.from({ length: GROUPS }, (_, k) => `sample-${k}`), compute_ms: 55 });
        }
        const u = process.cpuUsage(t0);
        log.close();
        const ms = (u.user + u.system) / 1000 / BATCHES;
        (times.get(a.name) ?? times.set(a.name, []).get(a.name)!).push(ms);
        console.log(`round ${round + 1}: ${a.name.padEnd(22)} ${ms.toFixed(3)} ms CPU per batch (user ${(u.user / 1000 / BATCHES).toFixed(3)}, system ${(u.system / 1000 / BATCHES).toFixed(3)})`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
  const [base, mine] = arms.map((a) => med(times.get(a.name)!));
  console.log(`median ms CPU per batch: base ${base!.toFixed(3)}, this checkout ${mine!.toFixed(3)} (${(mine! / base!).toFixed(2)}x)`);
}

await main();
