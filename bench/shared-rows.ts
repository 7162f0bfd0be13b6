// The policy network once per distinct image (lib/graph/shared-rows.ts), side by side with the plain graphs, on
// a GRPO batch as the learner and the rollout workers get it (the default config's 4 groups of G = 8 rows, each
// group one image): the policy forward (the rollout's, and the learner's KL reference) and the GRPO graph
// (forward + backward), one onnxruntime thread (as the pipeline's roles run), interleaved, CPU time (user +
// system) per call and wall median; it checks once that both forms give the same bytes.
//   node --import tsx bench/shared-rows.ts      SHARED_ROWS_SIZES (default 32,64,128), SHARED_ROWS_REPS (default 10),
//   SHARED_ROWS_MODE=scalar|dense (default: the config's), SHARED_ROWS_DISTINCT=1: every row its own image (what the
//   shared form costs where there is nothing to share; the trainer then runs the plain form: lib/models/row-forms.ts)
import { loadConfig } from '../lib/config/index.ts';
import { GraphSession, setIntraOpThreads, type Feeds, type Fetches } from '../lib/graph/runtime.ts';
import { grpoModel, policyModel, policySpecOf } from '../lib/models/bundle.ts';
import { initPolicyParams } from '../lib/models/policy.ts';
import { paramFeeds, sharedRowFeeds } from '../lib/models/feeds.ts';
import { standardNormal } from '../lib/data/random.ts';
import { ssimMapSize } from '../lib/models/ssim.ts';

const SIZES = (process.env.SHARED_ROWS_SIZES ?? '32,64,128').split(',').map(Number);
const REPS = Number(process.env.SHARED_ROWS_REPS ?? 10);
const MODE = process.env.SHARED_ROWS_MODE;
const DISTINCT = process.env.SHARED_ROWS_DISTINCT === '1';
setIntraOpThreads(1);
const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const same = (a: Fetches, b: Fetches): boolean => Object.keys(a).every((k) => Buffer.from(a[k]!.data.buffer, a[k]!.data.byteOffset, a[k]!.data.byteLength).equals(Buffer.from(b[k]!.data.buffer, b[k]!.data.byteOffset, b[k]!.data.byteLength)));

for (const size of SIZES) {
  const config = loadConfig(undefined, [`data.size=${size}`, ...(MODE ? [`grpo.advantageMode=${MODE}`] : [])]);
  const G = config.grpo.groupSize;
  const groups = config.grpo.samplesPerBatch;
  const n = G * groups;
  const px = 3 * size * size;
  const dims = [n, 3, size, size];
  const params = initPolicyParams(policySpecOf(config), 0);
  for (const p of params.values()) if (p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.05));
  const images = new Float32Array(n * px);
  const imageOf = (seed: number) => Float32Array.from(standardNormal(px, seed), (v) => 0.5 + 0.1 * v);
  for (let g = 0; g < groups; g++) {
    const img = imageOf(g);
    for (let k = 0; k < G; k++) images.set(DISTINCT ? imageOf(100 + g * G + k) : img, (g * G + k) * px);
  }
  const distinctImages = DISTINCT ? n : groups;
  const rows = sharedRowFeeds(images, n);
  const [policy, policyShared, grpo, grpoShared] = await Promise.all([
    policyModel(config), policyModel(config, undefined, { sharedRows: true }), grpoModel(config), grpoModel(config, { sharedRows: true }),
  ].map((m) => GraphSession.create(m)));
  const policyFeeds: Feeds = { ...paramFeeds(params), image: { data: images, dims }, noise: { data: standardNormal(n * px, 2), dims } };
  const roll = await policy!.run(policyFeeds);
  const dense = config.grpo.advantageMode === 'dense';
  const m = ssimMapSize(size);
  const grpoFeeds: Feeds = {
    ...paramFeeds(params),
    image: { data: images, dims },
    action: { data: roll.action!.data, dims },
    logp_old: dense ? { data: roll.logp_map!.data, dims } : { data: roll.logp!.data, dims: [n] },
    advantage: { data: standardNormal(n, 4), dims: [n] },
    ref_mean: { data: roll.mean!.data, dims },
    clip_low: { data: Float32Array.of(config.grpo.clipLow), dims: [] },
    clip_high: { data: Float32Array.of(config.grpo.clipHigh), dims: [] },
    dual_clip: { data: Float32Array.of(3), dims: [] },
    beta: { data: Float32Array.of(0.01), dims: [] },
    ...(dense ? { advantage_map: { data: standardNormal(n * 3 * m * m, 5), dims: [n, 3, m, m] } } : {}),
  };
  const arms: Array<[string, () => Promise<Fetches>]> = [
    [`policy forward, all ${n} rows`, () => policy!.run(policyFeeds)],
    [`policy forward, shared rows (${distinctImages} distinct images)`, () => policyShared!.run({ ...policyFeeds, ...rows })],
    [`GRPO graph, all ${n} rows`, () => grpo!.run(grpoFeeds)],
    [`GRPO graph, shared rows (${distinctImages} distinct images)`, () => grpoShared!.run({ ...grpoFeeds, ...rows })],
  ];
  const first = await Promise.all(arms.map(([, f]) => f())); // warm-up, and the check
  const bytes = same(first[0]!, first[1]!) && same(first[2]!, first[3]!) ? 'the same bytes' : 'DIFFERENT BYTES';
  const wall: number[][] = arms.map(() => []);
  const cpuMs: number[] = arms.map(() => 0);
  for (let r = 0; r < REPS; r++) {
    for (const [i, [, f]] of arms.entries()) {
      const c0 = cpu();
      const t0 = performance.now();
      await f();
      wall[i]!.push(performance.now() - t0);
      cpuMs[i]! += cpu() - c0;
    }
  }
  console.log(`${size}x${size}, ${config.grpo.advantageMode}, G=${G}, ${groups} groups${DISTINCT ? ' of distinct images' : ''}, 1 thread, ${REPS} interleaved rounds (${bytes}):`);
  const med = (i: number): number => wall[i]!.sort((a, b) => a - b)[wall[i]!.length >> 1]!;
  arms.forEach(([name], i) => console.log(`  ${name}: wall median ${med(i).toFixed(1)} ms, CPU ${(cpuMs[i]! / REPS).toFixed(1)} ms per call`));
  console.log(`RESULT shared-rows ${size}px policy forward CPU ${(cpuMs[1]! / cpuMs[0]!).toFixed(2)}x, GRPO graph CPU ${(cpuMs[3]! / cpuMs[2]!).toFixed(2)}x of the plain graphs'`);
  await Promise.all([policy, policyShared, grpo, grpoShared].map((s) => s!.release()));
}
