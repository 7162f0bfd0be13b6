// The round-6 decision rule over every point of scripts/demo-probe.ts curves (--every, --ema): for each
// candidate (a snapshot `grpo@K`, a moving average `emaD@K`, the final `grpo@N`) and each seed, GRPO - SFT and
// 0.01 + the worst per-type or per-level row (GRPO - identity) on the validation split; the candidate's margin
// is the min over seeds of their min (scripts/demo-probe-margin.ts does this for the final policy only).
//
//   node --import tsx scripts/demo-probe-curve-margin.ts a-s3.json a-s4.json ...   (one probe per seed, same setting)
import { readFileSync } from 'node:fs';

interface Scores { reward: number; count: number }
interface Report extends Scores { byType: Record<string, Scores>; byLevel: Record<string, Scores> }
interface Point { reward: number; worst: { key: string; d: number } }
interface Probe { seed: number; grpoSteps: number; curve?: Record<string, Point>; val: { identity: Report; sft: Report; grpo: Report } }

const files = process.argv.slice(2);
if (files.length === 0) throw new Error('demo-probe-curve-margin: give one probe JSON per seed');
const probes = files.map((p) => JSON.parse(readFileSync(p, 'utf8')) as Probe);

/** The final policy as a curve point: its worst type or level row against identity. */
function finalPoint(p: Probe): Point {
  let worst = { key: '', d: Infinity };
  for (const key of ['byType', 'byLevel'] as const) {
    for (const [name, id] of Object.entries(p.val.identity[key])) {
      const d = p.val.grpo[key][name]!.reward - id.reward;
      if (d < worst.d) worst = { key: name, d };
    }
  }
  return { reward: p.val.grpo.reward, worst };
}
const pointsOf = (p: Probe): Record<string, Point> => ({ ...(p.curve ?? {}), [`grpo@${p.grpoSteps}`]: finalPoint(p) });
const keys = [...new Set(probes.flatMap((p) => Object.keys(pointsOf(p))))];
// Sorted by method, then steps.
keys.sort((a, b) => { const [ma, sa] = a.split('@'); const [mb, sb] = b.split('@'); return ma === mb ? Number(sa) - Number(sb) : ma! < mb! ? -1 : 1; });
const s4 = (x: number) => (x >= 0 ? '+' : '') + x.toFixed(4);
console.log(`| candidate | ${probes.map((p) => `seed ${p.seed}: GRPO - SFT, worst row`).join(' | ')} | mean GRPO - SFT | margin |`);
console.log(`|---|${probes.map(() => '---|').join('')}---|---|`);
for (const k of keys) {
  let margin = Infinity;
  let sum = 0;
  const cells = probes.map((p) => {
    const pt = pointsOf(p)[k];
    if (!pt) { margin = NaN; return 'missing'; }
    const gain = pt.reward - p.val.sft.reward;
    sum += gain;
    margin = Math.min(margin, gain, 0.01 + pt.worst.d);
    return `${s4(gain)}, ${pt.worst.key} ${s4(pt.worst.d)}`;
  });
  console.log(`| ${k} | ${cells.join(' | ')} | ${s4(sum / probes.length)} | ${s4(margin)} |`);
}
