import { createHash } from 'node:crypto';
const root = process.argv[2]!;
const { loadConfig } = await import(`${root}/lib/config/index.ts`);
const { runSingleProcess } = await import(`${root}/lib/local/single-process.ts`);
const { setIntraOpThreads } = await import(`${root}/lib/graph/runtime.ts`);
for (const extra of process.argv.slice(3).map((s) => s.split(' '))) {
  setIntraOpThreads(2);
  const config = loadConfig(undefined, ['sft.steps=3', 'grpo.steps=4', ...extra]);
  const r = await runSingleProcess(config);
  const h = createHash('sha256');
  for (const k of [...r.params.keys()].sort()) h.update(k).update(r.params.get(k).data);
  const s = createHash('sha256');
  for (const k of [...r.sftParams.keys()].sort()) s.update(k).update(r.sftParams.get(k).data);
  console.log(extra.join(' '), 'sft', s.digest('hex').slice(0, 16), 'final', h.digest('hex').slice(0, 16));
}
