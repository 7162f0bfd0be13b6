// Pipeline figure (issue #15), measured side by side in one run: the local pipeline's GRPO throughput
// (actions/s) against a single-process loop running the same graphs back to back with no gRPC or NATS.
// (Checkpoint broadcast is bench/broadcast.bench.ts; the orchestrator's dispatch rate is bench/load.bench.ts.)
//
// Both arms time the same span, the GRPO phase (from the last SFT batch's acknowledgement to the last GRPO
// batch's), and both run without periodic evaluation (the single-process loop has none). The arms alternate,
// BENCH_PIPELINE_REPS rounds per staleness (the order flips each round), and each prints wall time and the CPU
// time (user + system) of all its processes over that span, so that load from elsewhere on a shared machine
// shows up as a gap between the two.
//
//   BENCH_STALENESS=0,1 BENCH_PIPELINE_REPS=2 BENCH_SFT=30 BENCH_GRPO=40 node --import tsx bench/index.ts pipeline
//   BENCH_PIPELINE_THREADS=auto,1   pipeline arms with these settings (auto: runLocal's defaults; 1: one onnxruntime
//                                   thread per role; learner:1 the learner alone on 1; heap:0 V8's own heap growth
//                                   in every role; '+' joins them: learner:1+heap:0 is round 6's pipeline)
//   BENCH_TRACE=DIR                 writes each pipeline run's event timeline there (bench/pipeline-trace.ts reads it)
//   BENCH_SINGLE=fresh,fresh1       the single-process arms: `fresh` a new process per run with the roles' environment
//                                   (bench/pipeline-single.ts; the targets' reference since round 11: one onnxruntime
//                                   thread per core since round 15), `fresh1` the same on one thread (what rounds
//                                   <= 14's `fresh` ran: onnxruntime's own count gave one thread on the 2-core VM),
//                                   `process` this benchmark's own process (rounds <= 10's arm)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { loadConfig } from '../lib/config/index.ts';
import { runSingleProcess } from '../lib/local/single-process.ts';
import { runLocal, type LocalRunOptions } from '../lib/local/local-run.ts';
import { TRACE_ENV } from '../lib/log/trace.ts';
import { HEAP_GROWTH_ENV } from '../lib/deploy/heap-growth.ts';
import { benchOverrides, othersCores, singleInFreshProcess } from './pipeline-single.ts';

const SFT = Number(process.env.BENCH_SFT ?? 30);
const GRPO = Number(process.env.BENCH_GRPO ?? 40);
const REPS = Number(process.env.BENCH_PIPELINE_REPS ?? 2);
const TRACE = process.env.BENCH_TRACE;
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface RunFigures {
  actionsPerSecond: number;
  cpuMsPerAction: number | undefined;
  /** Pipeline arms: CPU ms per action of each process. */
  byProcess?: Record<string, number>;
  /** Anything else the run measured, printed under its line. */
  note?: string;
  /** Cores other processes took on average during the run's GRPO phase (undefined without /proc/stat). */
  othersCores?: number;
}

interface Arm {
  name: string;
  run: (staleness: number, round: number) => Promise<RunFigures>;
}

/**
 * A pipeline arm's settings, '+'-joined: `auto` (runLocal's defaults), `N` (N onnxruntime threads per role),
 * `ROLE:N` (that role N threads, the others runLocal's default), `heap:P` ($RECOVERY_GRPO_HEAP_GROWING_PERCENT=P
 * for every role; 0: V8's own heap growth). Round 7's before/after: `learner:1+heap:0,auto`.
 */
function parseVariant(v: string): { threads?: LocalRunOptions['threads']; heap?: string } {
  const out: { threads?: LocalRunOptions['threads']; heap?: string } = {};
  for (const part of v.split('+')) {
    const one = /^(learner|rollout-worker|reward-worker):(\d+)$/.exec(part);
    const heap = /^heap:(\d+)$/.exec(part);
    if (part === 'auto') continue;
    if (one) out.threads = { ...out.threads, [one[1]!]: Number(one[2]) };
    else if (heap) out.heap = heap[1]!;
    else if (/^\d+$/.test(part)) out.threads = { ...out.threads, learner: Number(part), 'rollout-worker': Number(part), 'reward-worker': Number(part) };
    else throw new Error(`BENCH_PIPELINE_THREADS: '${part}' is not auto, N, ROLE:N or heap:P`);
  }
  return out;
}

function armsFor(): { singles: Arm[]; pipelines: Arm[] } {
  const overridesOf = benchOverrides;
  // a new process per run; `threads` its onnxruntime threads (undefined: the project's default, one per core)
  const freshArm = (name: string, threads?: number): Arm => ({
    name,
    run: async (staleness) => {
      const r = singleInFreshProcess(staleness, SFT, GRPO, undefined, threads);
      return { actionsPerSecond: r.actionsPerSecond, cpuMsPerAction: r.cpuMsPerAction, note: `CPU of the first GRPO step ${r.firstStepCpuMs.toFixed(0)} ms, of a later one (median) ${r.medianStepCpuMs.toFixed(0)} ms`, othersCores: r.othersCores };
    },
  });
  const fresh = freshArm('single process (fresh)');
  const fresh1 = freshArm('single process (fresh, 1 thread)', 1);
  const single: Arm = {
    name: 'single process (this process)',
    run: async (staleness) => {
      const config = loadConfig(undefined, [...overridesOf(staleness), `sft.steps=${SFT}`, `grpo.steps=${GRPO}`]);
      const r = await runSingleProcess(config);
      const actions = r.grpoSteps * config.grpo.samplesPerBatch * config.grpo.groupSize;
      return { actionsPerSecond: r.actionsPerSecond, cpuMsPerAction: (r.grpoCpuSeconds * 1000) / actions, othersCores: othersCores(r.grpoMachineCpuSeconds, r.grpoCpuSeconds, r.grpoSeconds) };
    },
  };
  const variants = (process.env.BENCH_PIPELINE_THREADS ?? 'auto').split(',');
  const pipelines = variants.map((v): Arm => ({
    name: v === 'auto' ? 'pipeline' : `pipeline, ${v}`,
    run: async (staleness, round) => {
      const { threads, heap } = parseVariant(v);
      const dir = mkdtempSync(join(tmpdir(), 'bench-pipeline-'));
      const savedHeap = process.env[HEAP_GROWTH_ENV];
      if (heap !== undefined) process.env[HEAP_GROWTH_ENV] = heap; // the roles inherit the environment
      // The trace file goes to the roles' environment only: this process reads $RECOVERY_GRPO_TRACE once
      // (lib/log/trace.ts), so setting it here would send its later runs' lines to the first file.
      const traceFile = TRACE ? join(TRACE, `pipeline-s${staleness}-${v}-r${round}.jsonl`) : undefined;
      if (traceFile) {
        mkdirSync(TRACE!, { recursive: true });
        rmSync(traceFile, { force: true });
      }
      try {
        const s = await runLocal({ out: dir, seed: 0, sftSteps: SFT, steps: GRPO, overrides: overridesOf(staleness), log: () => undefined, ...(threads ? { threads } : {}), ...(traceFile ? { env: { [TRACE_ENV]: traceFile } } : {}) });
        const actions = s.samples_per_second * s.grpo_seconds;
        const byProcess = Object.fromEntries(Object.entries(s.grpo_cpu_seconds_by_process ?? {}).map(([name, c]) => [name, (c * 1000) / actions]));
        return { actionsPerSecond: s.samples_per_second, cpuMsPerAction: s.grpo_cpu_seconds !== undefined ? (s.grpo_cpu_seconds * 1000) / actions : undefined, byProcess, othersCores: othersCores(s.grpo_machine_cpu_seconds, s.grpo_cpu_seconds, s.grpo_seconds) };
      } finally {
        if (savedHeap === undefined) delete process.env[HEAP_GROWTH_ENV];
        else process.env[HEAP_GROWTH_ENV] = savedHeap;
        rmSync(dir, { recursive: true, force: true });
      }
    },
  }));
  const singles = (process.env.BENCH_SINGLE ?? 'fresh,fresh1').split(',').map((k) => {
    if (k === 'fresh') return fresh;
    if (k === 'fresh1') return fresh1;
    if (k === 'process') return single;
    throw new Error(`BENCH_SINGLE: '${k}' is not fresh, fresh1 or process`);
  });
  if (singles.length === 0) throw new Error('BENCH_SINGLE: at least one single-process arm');
  return { singles, pipelines };
}

async function throughput(): Promise<void> {
  console.log(`GRPO throughput, default model and group (G=8, 4 samples per batch), ${GRPO} steps after a ${SFT}-step warm start, ${REPS} alternating round(s); load average ${load()}:`);
  const target: Record<number, number> = { 0: 1.0, 1: 1.2 }; // issue #15
  const stalenesses = (process.env.BENCH_STALENESS ?? '0,1').split(',').map(Number);
  const { singles, pipelines } = armsFor();
  const arms = [...singles, ...pipelines];
  for (const staleness of stalenesses) {
    const results = new Map<string, RunFigures[]>();
    const ratios = new Map<string, number[]>(); // key: pipeline arm + '\0' + single arm
    for (let round = 0; round < REPS; round++) {
      const order = round % 2 === 0 ? arms : [...arms].reverse();
      const got = new Map<string, number>();
      for (const arm of order) {
        const r = await arm.run(staleness, round);
        results.set(arm.name, [...(results.get(arm.name) ?? []), r]);
        got.set(arm.name, r.actionsPerSecond);
        console.log(`  maxStaleness ${staleness}, round ${round + 1}: ${arm.name.padEnd(32)} ${r.actionsPerSecond.toFixed(1).padStart(6)} actions/s, CPU ${r.cpuMsPerAction?.toFixed(2) ?? '?'} ms per action; other processes ${r.othersCores?.toFixed(2) ?? '?'} cores; load average ${load()}`);
        const by = Object.entries(r.byProcess ?? {}).map(([name, ms]) => `${name} ${ms.toFixed(2)}`).join(', ');
        if (by) console.log(`    (this run) CPU ms per action by process: ${by}`);
        if (r.note) console.log(`    (this run) ${r.note}`);
      }
      for (const p of pipelines) for (const s of singles) ratios.set(`${p.name}\0${s.name}`, [...(ratios.get(`${p.name}\0${s.name}`) ?? []), got.get(p.name)! / got.get(s.name)!]);
    }
    const cpu = (name: string) => median(results.get(name)!.map((r) => r.cpuMsPerAction ?? NaN));
    for (const arm of pipelines) {
      for (const [i, s] of singles.entries()) {
        const rs = ratios.get(`${arm.name}\0${s.name}`)!;
        console.log(
          `  maxStaleness ${staleness}: ${arm.name} / ${s.name} actions/s: ${rs.map((x) => x.toFixed(2)).join(', ')} (median ${median(rs).toFixed(2)}; ${i === 0 ? `target >= ${target[staleness]?.toFixed(1) ?? '?'}` : 'beside it'}); ` +
            `CPU per action ${cpu(arm.name).toFixed(2)} against ${cpu(s.name).toFixed(2)} ms (medians)`,
        );
      }
      // The most a pipeline at this CPU per action can run with every core busy: at staleness 1 the rate sits near it,
      // so only less CPU per action raises it (docs/performance-history/pipeline.md, "Round 15: threads15")
      const ceiling = (availableParallelism() * 1000) / cpu(arm.name);
      const reference = median(results.get(singles[0]!.name)!.map((r) => r.actionsPerSecond));
      console.log(`    ${arm.name}: ${availableParallelism()} cores fully busy at ${cpu(arm.name).toFixed(2)} ms per action would run ${ceiling.toFixed(0)} actions/s, ${(ceiling / reference).toFixed(2)}x the ${singles[0]!.name}'s median ${reference.toFixed(0)}`);
      const runs = results.get(arm.name)!;
      const names = Object.keys(runs[0]?.byProcess ?? {});
      if (names.length) console.log(`    ${arm.name}, CPU ms per action by process (medians): ${names.map((n) => `${n} ${median(runs.map((r) => r.byProcess?.[n] ?? NaN)).toFixed(2)}`).join(', ')}`);
    }
  }
}

export async function run(): Promise<void> {
  const only = process.env.BENCH_ONLY;
  if (!only || only === 'throughput') await throughput();
}
