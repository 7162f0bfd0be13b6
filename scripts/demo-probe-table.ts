// Pools scripts/demo-probe.ts results (--json) of one setting over seeds, on the validation split: mean
// reward, SSIM and PSNR of identity / warm start / final policy, and do no harm per corruption type and level
// with the draws of all the given seeds together (each row weighted by its count), for the warm start and the
// final policy. Settings are compared on these rows, never on the evaluation split.
//
//   node --import tsx scripts/demo-probe-table.ts LABEL=a-s0.json,a-s1.json [LABEL=b-s0.json,b-s1.json ...]
import { readFileSync } from 'node:fs';

interface Scores { reward: number; ssim: number; psnr: number; count: number }
interface Report extends Scores { byType: Record<string, Scores>; byLevel: Record<string, Scores> }
interface Probe { seed: number; val: { identity: Report; sft: Report; grpo: Report } }

const f = (x: number, d = 4) => x.toFixed(d);
const sign = (x: number) => (x >= 0 ? '+' : '') + x.toFixed(3);
console.log('| setting | seeds | validation draws | reward identity / SFT / GRPO | SSIM identity / SFT / GRPO | PSNR dB identity / SFT / GRPO | rows below -0.01: SFT, GRPO (of rows) | worst row: SFT, GRPO (draws) |');
console.log('|---|---|---|---|---|---|---|---|');
for (const arg of process.argv.slice(2)) {
  const at = arg.indexOf('=');
  if (at < 1) throw new Error(`demo-probe-table: '${arg}' is not LABEL=FILE[,FILE...]`);
  const label = arg.slice(0, at);
  const probes = arg.slice(at + 1).split(',').map((p) => JSON.parse(readFileSync(p, 'utf8')) as Probe);
  const n = probes.reduce((s, p) => s + p.val.identity.count, 0);
  const mean = (which: 'identity' | 'sft' | 'grpo', k: 'reward' | 'ssim' | 'psnr') => probes.reduce((s, p) => s + p.val[which][k] * p.val[which].count, 0) / n;
  // Rows pooled over seeds: per type and per level, the count-weighted mean of each policy minus identity's.
  const rows: Array<{ name: string; count: number; sft: number; grpo: number }> = [];
  for (const key of ['byType', 'byLevel'] as const) {
    const names = [...new Set(probes.flatMap((p) => Object.keys(p.val.identity[key])))];
    for (const name of names) {
      let count = 0;
      const sum = { identity: 0, sft: 0, grpo: 0 };
      for (const p of probes) {
        const c = p.val.identity[key][name]?.count ?? 0;
        count += c;
        for (const w of ['identity', 'sft', 'grpo'] as const) sum[w] += (p.val[w][key][name]?.reward ?? 0) * c;
      }
      rows.push({ name, count, sft: (sum.sft - sum.identity) / count, grpo: (sum.grpo - sum.identity) / count });
    }
  }
  const below = (k: 'sft' | 'grpo') => rows.filter((r) => r[k] < -0.01).length;
  const worst = (k: 'sft' | 'grpo') => rows.reduce((w, r) => (r[k] < w[k] ? r : w));
  const ws = worst('sft');
  const wg = worst('grpo');
  const triple = (k: 'reward' | 'ssim' | 'psnr', d: number) => `${f(mean('identity', k), d)} / ${f(mean('sft', k), d)} / ${f(mean('grpo', k), d)}`;
  console.log(`| ${label} | ${probes.map((p) => p.seed).join(', ')} | ${n} | ${triple('reward', 4)} | ${triple('ssim', 4)} | ${triple('psnr', 2)} | ${below('sft')}, ${below('grpo')} (${rows.length}) | ${ws.name} ${sign(ws.sft)} (${ws.count}), ${wg.name} ${sign(wg.grpo)} (${wg.count}) |`);
}

// Per seed and GRPO step (snapshots of --every, then the final step): GRPO - SFT and the worst type or level
// row (GRPO - identity, that seed's draws), and their distance to failing either demo criterion on the seed
// closest to it: min over seeds of min(GRPO - SFT, 0.01 + worst row) ("margin"; docs/data-history.md, "Round 6").
interface Worst { key: string; d: number; n: number }
interface Curved extends Probe { grpoSteps: number; curve?: Record<string, { reward: number; worst: Worst }>; val: Probe['val'] & { worstGrpo: Worst } }
const curved = process.argv.slice(2).map((arg) => {
  const at = arg.indexOf('=');
  return { label: arg.slice(0, at), probes: arg.slice(at + 1).split(',').map((p) => JSON.parse(readFileSync(p, 'utf8')) as Curved) };
});
if (curved.some((c) => c.probes.some((p) => p.curve))) {
  const seeds = [...new Set(curved.flatMap((c) => c.probes.map((p) => p.seed)))];
  console.log(`\n| setting | GRPO steps | ${seeds.map((s) => `seed ${s}: GRPO - SFT, worst row (draws)`).join(' | ')} | margin |`);
  console.log(`|---|---|${seeds.map(() => '---|').join('')}---|`);
  for (const { label, probes } of curved) {
    const steps = [...new Set(probes.flatMap((p) => [...Object.keys(p.curve ?? {}).map((k) => Number(k.split('@')[1])), p.grpoSteps]))].sort((a, b) => a - b);
    for (const step of steps) {
      let margin = Infinity;
      const cells = seeds.map((s) => {
        const p = probes.find((q) => q.seed === s);
        const at = p && (step === p.grpoSteps ? { reward: p.val.grpo.reward, worst: p.val.worstGrpo } : p.curve?.[`grpo@${step}`]);
        if (!p || !at) return '-';
        const gain = at.reward - p.val.sft.reward;
        margin = Math.min(margin, gain, 0.01 + at.worst.d);
        return `${f(gain)}, ${at.worst.key} ${f(at.worst.d)} (${at.worst.n})`;
      });
      console.log(`| ${label} | ${step} | ${cells.join(' | ')} | ${f(margin)} |`);
    }
  }
}
