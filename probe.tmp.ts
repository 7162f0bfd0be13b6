import { GraphSession, setIntraOpThreads, type Feeds } from './lib/graph/runtime.ts';
import { serialize } from './lib/graph/onnx.ts';
import { buildGrpoGraph, buildPolicyGraph } from './lib/models/graphs.ts';
import { initPolicyParams, type PolicySpec } from './lib/models/policy.ts';
import { paramFeeds, sharedRowFeeds } from './lib/models/feeds.ts';
import { standardNormal } from './lib/data/random.ts';
const SIZE = 32, R = { height: SIZE, width: SIZE }, PX = 3 * SIZE * SIZE;
const spec: PolicySpec = { arch: 'unet', width: 16, depth: 4, logStd: -3, learnLogStd: true };
const params = initPolicyParams(spec, 0);
for (const p of params.values()) if (p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.05));
for (const threads of [2, 3, 4, 8]) for (const rows of [[0,0,0,0,0,0,0,0], [0,0,0,0,1,1,1,1], [0,0,0,0,0,0,0,0,1,1,1,1,1,1,1,1,2,2,2,2,2,2,2,2], [0,0,1,1,2,2,3,3,4,4]]) {
  setIntraOpThreads(threads);
  const N = rows.length, dims = [N, 3, SIZE, SIZE];
  const images = new Float32Array(N * PX);
  rows.forEach((k, i) => images.set(Float32Array.from(standardNormal(PX, 10 + k), (v) => 0.5 + 0.1 * v), i * PX));
  const [a, b] = await Promise.all([buildPolicyGraph(spec, R), buildPolicyGraph(spec, R, undefined, { sharedRows: true })].map((g) => GraphSession.create(serialize(g))));
  const feeds: Feeds = { ...paramFeeds(params), image: { data: images, dims }, noise: { data: standardNormal(N * PX, 2), dims } };
  const x = await a!.run(feeds), y = await b!.run({ ...feeds, ...sharedRowFeeds(images, N) });
  const sr = sharedRowFeeds(images, N); const d2 = Float32Array.from([...new Set([0, ...Array.from(sr.distinct_rows!.data)])].concat([1]).slice(0, Math.max(2, sr.distinct_rows!.data.length))); 
  const diff = Object.keys(x).filter((k) => !Buffer.from(x[k]!.data.buffer).equals(Buffer.from(y[k]!.data.buffer)));
  console.log('policy threads', threads, 'N', N, 'differs:', diff.join(',') || 'none');
}
