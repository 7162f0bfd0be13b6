// Round 6's decision rule over scripts/demo-probe.ts results (--json), per setting: for each seed GRPO - SFT and
// the worst per-type or per-level row (GRPO - identity) on the validation split, and the margin
// min over seeds of min(GRPO - SFT, 0.01 + worst row): how far the seed closest to failing a demo criterion
// (GRPO > SFT, do no harm within 0.01) is from failing it.
//
//   node --import tsx scripts/demo-probe-margin.ts LABEL=a-s0.json,a-s1.json [LABEL=b-s0.json,...]
import { readFileSync } from 'node:fs';

interface Scores { reward: number; count: number }
interface Report extends Scores { byType: Record<string, Scores>; byLevel: Record<string, Scores> }
interface Probe { seed: number; val: { identity: Report; sft: Report; grpo: Report } }

console.log('| setting | per seed: GRPO - SFT, worst row GRPO - identity (draws) | margin |');
console.log('|---|---|---|');
for (const arg of process.argv.slice(2)) {
  const at = arg.indexOf('=');
  if (at < 1) throw new Error(`demo-probe-margin: '${arg}' is not LABEL=FILE[,FILE...]`);
  const probes = arg.slice(at + 1).split(',').map((p) => JSON.parse(readFileSync(p, 'utf8')) as Probe);
  let margin = Infinity;
  const cells = probes.map((p) => {
    const gain = p.val.grpo.reward - p.val.sft.reward;
    let worst = { name: '', d: Infinity, n: 0 };
    for (const key of ['byType', 'byLevel'] as const) {
      for (const [name, id] of Object.entries(p.val.identity[key])) {
        const d = p.val.grpo[key][name]!.reward - id.reward;
        if (d < worst.d) worst = { name, d, n: id.count };
      }
    }
    margin = Math.min(margin, gain, 0.01 + worst.d);
    return `seed ${p.seed}: ${gain >= 0 ? '+' : ''}${gain.toFixed(4)}, ${worst.name} ${worst.d.toFixed(4)} (${worst.n})`;
  });
  console.log(`| ${arg.slice(0, at)} | ${cells.join('; ')} | ${margin.toFixed(4)} |`);
}
