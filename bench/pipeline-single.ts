// The pipeline benchmarks' single-process arm in a process of its own, started for the one run (round 11, pipe11).
//
// Why: every pipeline run starts fresh processes (nats-server and the four roles), and each role starts with the
// local run's allocator settings (lib/deploy/allocator-env.ts) and heap growth (lib/deploy/heap-growth.ts). The
// single-process arm used to run inside the benchmark's own process, with neither setting and after whatever that
// process had run before: its first run in a process was 20-30% slower than its later ones (round 10's idle runs:
// 160.8 then 229.7 and 237.5 actions/s; 199.8 then 251.8), so the pipeline's ratio followed the arm's position in
// the run (docs/performance-history/pipeline.md, "Round 11: pipe11"). Here it runs as a pipeline role does: a new process, the
// roles' environment, the same config, seed and span.
//
//   node --import tsx bench/pipeline-single.ts STALENESS SFT GRPO     # prints one JSON line (SingleFigures)
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { allocatorEnvFor } from '../lib/deploy/allocator-env.ts';
import { THREADS_ENV } from '../lib/graph/runtime.ts';

export interface SingleFigures {
  actionsPerSecond: number;
  cpuMsPerAction: number;
  /** CPU ms of the first GRPO step (its sessions are created there) and the median of the others. */
  firstStepCpuMs: number;
  medianStepCpuMs: number;
  /** Cores that other processes took on average over the GRPO phase (the machine's busy CPU less this process's). */
  othersCores?: number;
}

/** Cores other processes took over a phase of `seconds`: the machine's busy CPU less the arm's own. */
export function othersCores(machineCpuSeconds: number | undefined, ownCpuSeconds: number | undefined, seconds: number): number | undefined {
  if (machineCpuSeconds === undefined || ownCpuSeconds === undefined || !(seconds > 0)) return undefined;
  return Math.max(0, machineCpuSeconds - ownCpuSeconds) / seconds;
}

/** The benchmarks' config overrides for one staleness (periodic evaluation off: the single process has none). */
export const benchOverrides = (staleness: number): string[] => [`grpo.maxStaleness=${staleness}`, 'eval.samples=8', 'eval.everyVersions=0'];

/**
 * One single-process run in a new process of `checkout` (default: this one), with a role's environment; `threads`
 * sets its onnxruntime threads per operator ($RECOVERY_GRPO_THREADS; default: the project's, one per core). Rounds
 * <= 14 measured it with onnxruntime's own count, which gave one thread on the 2-core VM: `threads` 1 is that arm.
 */
export function singleInFreshProcess(staleness: number, sft: number, grpo: number, checkout?: string, threads?: number): SingleFigures {
  const script = checkout ? `${checkout}/bench/pipeline-single.ts` : fileURLToPath(import.meta.url);
  const out = execFileSync(process.execPath, ['--import', 'tsx', script, String(staleness), String(sft), String(grpo)], {
    cwd: checkout ?? fileURLToPath(new URL('..', import.meta.url)),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...allocatorEnvFor(process.env), ...(threads !== undefined ? { [THREADS_ENV]: String(threads) } : {}) },
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as SingleFigures;
}

async function child(staleness: number, sft: number, grpo: number): Promise<SingleFigures> {
  const { applyHeapGrowth } = await import('../lib/deploy/heap-growth.ts');
  const { loadConfig } = await import('../lib/config/index.ts');
  const { runSingleProcess } = await import('../lib/local/single-process.ts');
  applyHeapGrowth(); // as every role does at its start (cli/worker-options.ts)
  const config = loadConfig(undefined, [...benchOverrides(staleness), `sft.steps=${sft}`, `grpo.steps=${grpo}`]);
  const stepCpu: number[] = [];
  let last: number | undefined;
  const cpuMs = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1000; };
  const r = await runSingleProcess(config, {
    onStep: () => {
      const now = cpuMs();
      if (last !== undefined) stepCpu.push(now - last);
      last = now;
    },
  });
  const actions = r.grpoSteps * config.grpo.samplesPerBatch * config.grpo.groupSize;
  const grpoCpuMs = r.grpoCpuSeconds * 1000;
  const others = [...stepCpu].sort((a, b) => a - b);
  return {
    actionsPerSecond: r.actionsPerSecond,
    cpuMsPerAction: grpoCpuMs / actions,
    // onStep runs after each step: the first step's CPU is the phase's minus the later steps'
    firstStepCpuMs: grpoCpuMs - stepCpu.reduce((a, b) => a + b, 0),
    medianStepCpuMs: others[Math.floor(others.length / 2)] ?? NaN,
    ...(r.grpoMachineCpuSeconds !== undefined ? { othersCores: othersCores(r.grpoMachineCpuSeconds, r.grpoCpuSeconds, r.grpoSeconds) } : {}),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [staleness, sft, grpo] = process.argv.slice(2).map(Number);
  if (![staleness, sft, grpo].every((x) => Number.isInteger(x) && x! >= 0)) throw new Error('usage: pipeline-single.ts STALENESS SFT GRPO (integers)');
  console.log(JSON.stringify(await child(staleness!, sft!, grpo!)));
  process.exit(0); // onnxruntime's and the scorer lanes' threads would keep the process up
}
