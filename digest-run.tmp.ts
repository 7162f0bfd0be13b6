import { createHash } from 'node:crypto';
const root = process.argv[2]!;
const { loadConfig } = await import(`${root}/lib/config/index.ts`);
const { runSingleProcess } = await import(`${root}/lib/local/single-process.ts`);
const { setIntraOpThreads } = await import(`${root}/lib/graph/runtime.ts`);
for (const [threads, extra] of [[1, []], [2, ['grpo.advantageMode=scalar', 'grpo.identityAnchor=0.5']], [2, ['model.arch=unet', 'grpo.maxStaleness=1']]] as const) {
  setIntraOpThreads(threads);
  const config = loadConfig(undefined, ['sft.steps=3', 'grpo.steps=4', ...extra]);
  const r = await runSingleProcess(config);
  const h = createHash('sha256');
  for (const k of [...r.params.keys()].sort()) h.update(k).update(r.params.get(k).data);
  console.log(threads, extra.join(' ') || 'defaults', h.digest('hex').slice(0, 16), r.checkpoint?.digest?.slice?.(0, 16) ?? '');
}
