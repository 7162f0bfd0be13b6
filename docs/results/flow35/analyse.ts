// Round 35's pre-registered analysis (prereg.md): from the queue's outputs (runs/f35: probe.ts logs of arms (a) (b)
// (c), the (c) sweep's seed-<k>.json, summarize-reach.ts's lines, the chains' return codes), the design checks first,
// then every seed's row, H1 (one-sided exact sign test on the largest channel error, (b) against (a)) and the
// secondary paired t intervals over seeds (lib/eval/stats.ts meanCI), and the decision prereg.md fixed.
//
//   node --import tsx docs/results/flow35/analyse.ts runs/f35 70 71 ... 85
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { formatCI, meanCI } from '../../../lib/eval/stats.ts';

const [dir, ...seedArgs] = process.argv.slice(2);
if (!dir || seedArgs.length === 0) throw new Error('usage: analyse.ts RUNS_DIR SEED...');
const seeds = seedArgs.map(Number);

/** One "eval start" / "eval final" line of probe.ts. */
interface Evaluation { reward: number; psnr: number; rgb: number[]; draws: number; line: string }
const evalLine = (text: string, which: 'start' | 'final'): Evaluation | null => {
  const m = new RegExp(`eval ${which}: reward (\\S+) ssim \\S+ psnr (\\S+) rgb error (\\S+)/(\\S+)/(\\S+) \\((\\d+) draws\\)`).exec(text);
  if (!m) return null;
  return { reward: Number(m[1]), psnr: Number(m[2]), rgb: [m[3], m[4], m[5]].map(Number), draws: Number(m[6]), line: m[0] };
};
/** max_c |e_c| at the 4 decimals probe.ts prints (its values are already rounded to them). */
const castOf = (e: Evaluation) => Math.max(...e.rgb.map(Math.abs));
const read = (file: string) => (existsSync(join(dir, file)) ? readFileSync(join(dir, file), 'utf8') : null);

// Return codes from the chains' logs ("end LABEL rc N"): a run counts only with rc 0.
const rc = new Map<string, number>();
for (const f of readdirSync(dir).filter((f) => /^chain\d+\.log$/.test(f))) {
  for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/ end (\S+) rc (\d+)/g)) rc.set(m[1]!, Number(m[2]));
}
const ok = (label: string) => rc.get(label) === 0;

interface Arm { start: Evaluation; final: Evaluation; cpu: number | null }
const probe = (label: string): Arm | null => {
  const text = read(`${label}.txt`);
  if (!ok(label) || !text) return null;
  const start = evalLine(text, 'start');
  const final = evalLine(text, 'final');
  const cpu = /done: \d+ steps, (\d+) CPU s/.exec(text);
  return start && final ? { start, final, cpu: cpu ? Number(cpu[1]) : null } : null;
};
/** summarize-reach.ts's line for runs/f35/reach-<arm><seed>.txt. */
const reachLines = read('reach-summary.txt') ?? '';
const reachOf = (label: string) => {
  if (!ok(label)) return null;
  const m = new RegExp(`${label}\\.txt: spread (\\S+), reach after the trained steps (\\S+), last step's gain (\\S+)`).exec(reachLines);
  return m ? { spread: Number(m[1]), reach: Number(m[2]), lastGain: Number(m[3]) } : null;
};
type SweepSeed = { start: { flow: { reward: number } }; runs: Array<{ method: string; steps: number; seconds: number; final: { reward: number } }> };
const sweepOf = (seed: number): SweepSeed | null => {
  const text = read(join(`sft${seed}`, `seed-${seed}.json`));
  return ok(`sft${seed}`) && text ? (JSON.parse(text) as { result: SweepSeed }).result : null;
};

console.log('## Design checks');
interface Row {
  seed: number; warm: Evaluation; a: Arm; b: Arm; c: Arm | null; cSteps: number | null; cCpu: number | null;
  reachA: ReturnType<typeof reachOf>; reachB: ReturnType<typeof reachOf>;
}
const rows: Row[] = [];
for (const seed of seeds) {
  const a = probe(`p-a${seed}`);
  const b = probe(`p-b${seed}`);
  if (!a || !b) {
    console.log(`seed ${seed}: left out, (a) ${a ? 'finished' : 'not finished'}, (b) ${b ? 'finished' : 'not finished'}`);
    continue;
  }
  if (a.start.line !== b.start.line) {
    console.log(`seed ${seed}: left out, (a) and (b) evaluated different warm starts or draws: ${a.start.line} | ${b.start.line}`);
    continue;
  }
  let c = probe(`p-c${seed}`);
  const sweep = sweepOf(seed);
  let cSteps: number | null = null;
  let cCpu: number | null = null;
  if (c && sweep) {
    const run = sweep.runs.find((r) => r.method === 'flow:sft')!;
    cSteps = run.steps;
    cCpu = run.seconds;
    const checks = [
      [c.start.line.replace('start', '') === c.final.line.replace('final', ''), '(c)\'s 0-step probe: start and final differ'],
      [sweep.start.flow.reward.toFixed(4) === a.start.reward.toFixed(4), `the (c) sweep's warm start ${sweep.start.flow.reward.toFixed(4)} is not probe.ts's ${a.start.reward.toFixed(4)}`],
      [run.final.reward.toFixed(4) === c.final.reward.toFixed(4), `the (c) sweep's final ${run.final.reward.toFixed(4)} is not the probe's ${c.final.reward.toFixed(4)}`],
    ] as const;
    const failed = checks.filter(([pass]) => !pass).map(([, why]) => why);
    if (failed.length) {
      console.log(`seed ${seed}: (c) left out: ${failed.join('; ')}`);
      c = null;
    }
  } else c = null;
  rows.push({ seed, warm: a.start, a, b, c, cSteps, cCpu, reachA: reachOf(`reach-a${seed}`), reachB: reachOf(`reach-b${seed}`) });
  console.log(`seed ${seed}: checks passed ((a) and (b) on the same warm start and ${a.start.draws} draws${c ? '; (c) on them too' : '; (c) not finished'})`);
}
const missing = seeds.filter((s) => !rows.some((r) => r.seed === s));
if (missing.length) console.log(`\n**The pre-registered N (${seeds.length}) was not reached**: seeds ${missing.join(', ')} are not in the analysis.`);

const f4 = (x: number) => (x >= 0 ? '+' : '') + x.toFixed(4);
const rgb = (e: Evaluation) => e.rgb.map(f4).join(' / ');
console.log('\n## Every seed (evaluation on each seed\'s 128 draws)\n');
console.log('| seed | warm start | (a) scalar: reward (change) | (b) end | (c) SFT | largest channel error (a) / (b) / (c) | channel errors R / G / B: (a); (b) | PSNR (a) / (b) / (c) | CPU s (a) / (b) / (c), (c) steps |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  const ch = (x: Arm | null) => (x ? `${x.final.reward.toFixed(4)} (${f4(x.final.reward - r.warm.reward)})` : 'not finished');
  console.log(`| ${r.seed} | ${r.warm.reward.toFixed(4)} | ${ch(r.a)} | ${ch(r.b)} | ${ch(r.c)} | ${castOf(r.a.final).toFixed(4)} / ${castOf(r.b.final).toFixed(4)} / ${r.c ? castOf(r.c.final).toFixed(4) : '-'} | ${rgb(r.a.final)}; ${rgb(r.b.final)} | ${r.a.final.psnr.toFixed(2)} / ${r.b.final.psnr.toFixed(2)} / ${r.c ? r.c.final.psnr.toFixed(2) : '-'} | ${r.a.cpu} / ${r.b.cpu} / ${r.cCpu?.toFixed(0) ?? '-'}, ${r.cSteps ?? '-'} |`);
}

console.log('\n## H1 (primary): largest channel error, (b) < (a); one-sided exact sign test, alpha 0.05\n');
const d = rows.map((r) => Number((castOf(r.b.final) - castOf(r.a.final)).toFixed(4)));
const k = d.filter((x) => x < 0).length;
const n = d.filter((x) => x !== 0).length;
const choose = (n: number, i: number) => { let c = 1; for (let j = 1; j <= i; j++) c = (c * (n - j + 1)) / j; return c; };
let p = 0;
for (let i = k; i <= n; i++) p += choose(n, i) / 2 ** n;
console.log(`d = cast(b) - cast(a) per seed: ${rows.map((r, i) => `${r.seed}: ${f4(d[i]!)}`).join(', ')}`);
console.log(`(b) smaller on ${k} of ${n} untied seeds (${rows.length - n} tied); p = P(Bin(${n}, 1/2) >= ${k}) = ${n > 0 ? p.toFixed(4) : '-'}`);
const h1 = n >= 5 && p < 0.05;
console.log(`H1: ${n < 5 ? 'undecided (fewer than 5 untied seeds: 4 of 4 gives p = 1/16)' : h1 ? 'CONFIRMED (p < 0.05)' : 'not confirmed (p >= 0.05)'}`);
if (rows.length >= 2) console.log(`described, not deciding: mean d ${formatCI(meanCI(d))} (paired t, df ${rows.length - 1})`);

console.log('\n## Secondary (not adjusted for multiplicity): paired t 95% intervals over seeds\n');
const diff = (name: string, xs: number[]) => {
  if (xs.length < 2) { console.log(`${name}: fewer than 2 seeds`); return null; }
  const ci = meanCI(xs);
  console.log(`${name}: ${formatCI(ci)} (n ${xs.length}; per seed ${xs.map(f4).join(', ')})`);
  return ci;
};
const s1 = diff('S1 reward (b) - (a)', rows.map((r) => r.b.final.reward - r.a.final.reward));
const withC = rows.filter((r) => r.c);
diff('S2 reward (b) - (c)', withC.map((r) => r.b.final.reward - r.c!.final.reward));
diff('S3 reward (a) - (c)', withC.map((r) => r.a.final.reward - r.c!.final.reward));
for (const [name, arm] of [['(a)', 'a'], ['(b)', 'b'], ['(c)', 'c']] as const) {
  const xs = rows.filter((r) => r[arm]).map((r) => r[arm]!.final.reward - r.warm.reward);
  if (xs.length >= 2) console.log(`described: ${name} - warm start ${formatCI(meanCI(xs))} (n ${xs.length})`);
}
if (withC.length >= 2) console.log(`described: largest channel error of (c) ${formatCI(meanCI(withC.map((r) => castOf(r.c!.final))))}; of (a) ${formatCI(meanCI(rows.map((r) => castOf(r.a.final))))}; of (b) ${formatCI(meanCI(rows.map((r) => castOf(r.b.final))))}`);
const withReach = rows.filter((r) => r.reachA && r.reachB);
console.log(`\nS4 reach after the trained steps at step 120 (${withReach.length} seeds):`);
console.log('| seed | reach (a) / (b) | last step\'s gain (a) / (b) | spread (a) / (b) |');
console.log('| --- | --- | --- | --- |');
for (const r of withReach) console.log(`| ${r.seed} | ${r.reachA!.reach.toFixed(3)} / ${r.reachB!.reach.toFixed(3)} | ${r.reachA!.lastGain.toFixed(3)} / ${r.reachB!.lastGain.toFixed(3)} | ${r.reachA!.spread.toFixed(4)} / ${r.reachB!.spread.toFixed(4)} |`);
if (withReach.length >= 2) {
  console.log(`reach (a) ${formatCI(meanCI(withReach.map((r) => r.reachA!.reach)), 3)}; (b) ${formatCI(meanCI(withReach.map((r) => r.reachB!.reach)), 3)}; (b) larger on ${withReach.filter((r) => r.reachB!.reach > r.reachA!.reach).length} of ${withReach.length}`);
}

console.log('\n## Decision (prereg.md "What result leads to what")\n');
if (n < 5) console.log('H1 undecided: no proposal.');
else if (h1 && s1 && s1.lo >= -0.005) console.log('H1 confirmed and S1\'s lower bound >= -0.005: propose flow.sde.window.start=5 as the flow family\'s default (not changed this round).');
else if (h1) console.log('H1 confirmed, S1\'s lower bound < -0.005: the cast reduction stands, a reward cost above 0.005 is not ruled out; no default proposed.');
else console.log('H1 not confirmed: round 34\'s exploratory cast reduction does not replicate at this N; no proposal.');
