// Child processes of bench/import.bench.ts (one role each, so memory and start-up are a role's own):
//   follower <natsUrl> <runId> <shapes.json> <versions>   fetch + verify each announced version; print "ready",
//                                                          then per version "done <v> <epoch ms> <bytes>"
//   learner <config.json> <steps>                          SFT steps of the learner's trainer; print JSON
//                                                          { importMs, stepMs (median), maxRssMB }
import { readFileSync } from 'node:fs';
import { connectNats, CheckpointStore } from '../lib/transport/index.ts';
import { fetchCheckpoint } from '../lib/worker/checkpoints.ts';
import { parseConfig } from '../lib/config/index.ts';
import { policySpecOf } from '../lib/models/bundle.ts';
import { initPolicyParams } from '../lib/models/policy.ts';
import { PolicyTrainer } from '../lib/models/trainer.ts';
import { rng } from '../lib/data/random.ts';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'follower') {
  const [url, runId, shapesFile, count] = args as [string, string, string, string];
  const shapes = new Map<string, number[]>(JSON.parse(readFileSync(shapesFile, 'utf8')));
  const baseDigest = JSON.parse(readFileSync(`${shapesFile}.base`, 'utf8')) as string;
  const nc = await connectNats({ url, name: 'bench-follower' });
  const store = await CheckpointStore.open(nc, { runId });
  const watch = await store.watch({});
  console.log('ready');
  let seen = 0;
  for await (const ann of watch) {
    const ck = await fetchCheckpoint(store, ann, { runId, shapes, baseDigest });
    console.log(`done ${ann.version} ${Date.now()} ${ck.size}`);
    if (++seen >= Number(count)) break;
  }
  await watch.stop();
  await nc.close();
} else if (mode === 'learner') {
  const [configFile, steps] = args as [string, string];
  const config = parseConfig(JSON.parse(readFileSync(configFile, 'utf8')));
  // No start-up network check (checkNetworkOf): the file is the project's own U-Net graph, serialized by the bench
  // itself (exportUnet), not a user's export, and importMs measures the import alone (a learner process's own
  // check, onnxruntime at batch 2, is a separate start-up cost).
  const t0 = performance.now();
  const params = initPolicyParams(policySpecOf(config), config.run.seed);
  const importMs = performance.now() - t0;
  const trainer = PolicyTrainer.create(config, params);
  const n = config.sft.batchSize;
  const H = config.data.size;
  const r = rng(1);
  const images = Float32Array.from({ length: n * 3 * H * H }, () => r.uniform(0, 1));
  const targets = images.map((x) => 0.9 * x + 0.05);
  const ms: number[] = [];
  for (let s = 0; s <= Number(steps); s++) {
    const t = performance.now();
    await trainer.sftStep(images, targets, n);
    if (s > 0) ms.push(performance.now() - t); // the first step builds the session
  }
  ms.sort((a, b) => a - b);
  console.log(JSON.stringify({ importMs, stepMs: ms[Math.floor(ms.length / 2)], maxRssMB: process.resourceUsage().maxRSS / 1024 }));
  await trainer.release();
} else {
  throw new Error(`bench/import-child.ts: unknown mode ${mode}`);
}
