// The pipeline of this checkout against another checkout's (e.g. a detached worktree of main with hardlinked
// node_modules), side by side in one run, beside the single-process loop (docs/performance-history/pipeline.md, "Round 8: pipe8").
// Each arm is runLocal from its own checkout (its roles run that checkout's code) with the settings of
// bench/pipeline.bench.ts (seed 0, BENCH_SFT warm-start steps, BENCH_GRPO GRPO steps, periodic evaluation off);
// the arms alternate (the order flips every round) and each run prints actions/s and the CPU time per action of
// every process. On a loaded machine read the CPU per action; the ratios measure the scheduler there. Each pipeline
// arm runs in a child process of its own (`--child CHECKOUT STALENESS`): two checkouts' onnxruntime bindings cannot
// load into one process (the final evaluation runs in runLocal's process).
// The single-process arms (AB_SINGLE, default fresh,fresh1; 0 none): `fresh` in a new process with the roles'
// environment (bench/pipeline-single.ts, the ratios' reference since round 11), `fresh1` the same on one onnxruntime
// thread (rounds <= 14's `fresh`: onnxruntime's own thread count gave one on the 2-core VM), `process` in this one
// (rounds <= 10).
//   AB_BASE=/work/base node --import tsx bench/pipeline-ab.ts     # BENCH_STALENESS=0,1 BENCH_PIPELINE_REPS=2 AB_SINGLE=0
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg, tmpdir } from 'node:os';
import type { LocalRunOptions, Summary } from '../lib/local/local-run.ts';
import { benchOverrides, othersCores, singleInFreshProcess } from './pipeline-single.ts';

const HERE = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SFT = Number(process.env.BENCH_SFT ?? 30);
const GRPO = Number(process.env.BENCH_GRPO ?? 40);
const REPS = Number(process.env.BENCH_PIPELINE_REPS ?? 2);
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const overridesOf = benchOverrides;

type RunLocal = (o: LocalRunOptions) => Promise<Summary>;

/** Child: one pipeline run of `checkout`'s runLocal; prints its line. */
async function child(checkout: string, staleness: number): Promise<string> {
  const runLocal = (await import(resolve(checkout, 'lib/local/local-run.ts'))).runLocal as RunLocal;
  const dir = mkdtempSync(join(tmpdir(), 'bench-pipeline-ab-'));
  try {
    const s = await runLocal({ out: dir, seed: 0, sftSteps: SFT, steps: GRPO, overrides: overridesOf(staleness), log: () => undefined });
    const actions = s.samples_per_second * s.grpo_seconds;
    const by = Object.entries(s.grpo_cpu_seconds_by_process ?? {}).map(([n, c]) => `${n} ${((c * 1000) / actions).toFixed(2)}`).join(', ');
    const others = othersCores(s.grpo_machine_cpu_seconds, s.grpo_cpu_seconds, s.grpo_seconds);
    return `${s.samples_per_second.toFixed(1)} actions/s, CPU ${(((s.grpo_cpu_seconds ?? NaN) * 1000) / actions).toFixed(2)} ms per action (${by}); other processes ${others?.toFixed(2) ?? '?'} cores; final v${s.final_version}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function pipeline(checkout: string, staleness: number): string {
  return execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', checkout, String(staleness)], { cwd: HERE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').at(-1)!;
}

async function single(staleness: number): Promise<string> {
  const { loadConfig } = await import('../lib/config/index.ts');
  const { runSingleProcess } = await import('../lib/local/single-process.ts');
  const config = loadConfig(undefined, [...overridesOf(staleness), `sft.steps=${SFT}`, `grpo.steps=${GRPO}`]);
  const r = await runSingleProcess(config);
  const actions = r.grpoSteps * config.grpo.samplesPerBatch * config.grpo.groupSize;
  return `${r.actionsPerSecond.toFixed(1)} actions/s, CPU ${((r.grpoCpuSeconds * 1000) / actions).toFixed(2)} ms per action; other processes ${othersCores(r.grpoMachineCpuSeconds, r.grpoCpuSeconds, r.grpoSeconds)?.toFixed(2) ?? '?'} cores`;
}

const [flag, checkout, staleness] = process.argv.slice(2);
if (flag === '--child') {
  console.log(await child(checkout!, Number(staleness)));
  process.exit(0);
}
const BASE = process.env.AB_BASE;
if (!BASE) throw new Error('AB_BASE: the other checkout (its node_modules installed)');
function fresh(staleness: number, threads?: number): string {
  const r = singleInFreshProcess(staleness, SFT, GRPO, undefined, threads);
  return `${r.actionsPerSecond.toFixed(1)} actions/s, CPU ${r.cpuMsPerAction.toFixed(2)} ms per action (first GRPO step ${r.firstStepCpuMs.toFixed(0)} ms, a later one ${r.medianStepCpuMs.toFixed(0)}); other processes ${r.othersCores?.toFixed(2) ?? '?'} cores`;
}
const singles = (process.env.AB_SINGLE ?? 'fresh,fresh1').split(',').filter((k) => k !== '0').map((k): [string, (s: number) => Promise<string> | string] => {
  if (k === 'fresh') return ['single process (fresh)', (s) => fresh(s)];
  if (k === 'fresh1') return ['single process (fresh, 1 thread)', (s) => fresh(s, 1)];
  if (k === 'process') return ['single process (this process)', single];
  throw new Error(`AB_SINGLE: '${k}' is not fresh, fresh1, process or 0`);
});
const arms: Array<[string, (s: number) => Promise<string> | string]> = [
  ...singles,
  [`pipeline, ${BASE}`, (s) => pipeline(BASE, s)],
  ['pipeline, this checkout', (s) => pipeline(HERE, s)],
];
console.log(`pipeline A/B: ${GRPO} GRPO steps after ${SFT} SFT steps, ${REPS} alternating round(s); load average ${load()}`);
for (const staleness of (process.env.BENCH_STALENESS ?? '0,1').split(',').map(Number)) {
  for (let round = 0; round < REPS; round++) {
    const rate = new Map<string, number>();
    for (const [name, run] of round % 2 ? [...arms].reverse() : arms) {
      const line = await run(staleness);
      rate.set(name, Number.parseFloat(line)); // each line starts with its actions/s
      console.log(`  maxStaleness ${staleness}, round ${round + 1}: ${name.padEnd(30)} ${line}; load average ${load()}`);
    }
    // each pipeline against each single-process arm of the same round (the fresh one is the target's reference)
    const ratios = arms.filter(([n]) => n.startsWith('pipeline')).flatMap(([p]) => singles.map(([s]) => `${p} / ${s} ${(rate.get(p)! / rate.get(s)!).toFixed(2)}`));
    if (singles.length) console.log(`    round ${round + 1} ratios: ${ratios.join('; ')}`);
  }
}
