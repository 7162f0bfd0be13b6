// Interleaved runs of bench/load-one.ts: each arm (a tree, with its own environment) in turn, `pairs` times, one
// summary line per run (load average, tasks per send, p50/p99, CPU per task, both sides' pauses). Nothing runs at once.
//   node --import tsx bench/load-ab.ts <pairs> <workers> <rate> <seconds> <perMessage> <pack|spread> <arm> [<arm> ...]
// An arm is <tree>[,NAME=value...]: e.g. /work/main  .,LOAD_WORKER_PROCS=2  .,LOAD_WORKER_NODE_FLAGS=--single-threaded-gc
// (the value of a NAME=value is everything after the first '='; commas cannot appear in it).
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { LoadFigures } from './load.bench.ts';

const [pairsArg, workers, rate, seconds, perMessage, dispatch, ...armArgs] = process.argv.slice(2);
const pairs = Number(pairsArg);
if (!(Number.isInteger(pairs) && pairs >= 1 && pairs <= 50) || !dispatch || armArgs.length === 0) {
  throw new Error('usage: load-ab.ts <pairs 1-50> <workers> <rate> <seconds> <perMessage> <pack|spread> <tree[,NAME=value...]> ...');
}
const arms = armArgs.map((a) => {
  const [tree, ...sets] = a.split(',');
  const env: Record<string, string> = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new Error(`load-ab: ${JSON.stringify(s)} in arm ${JSON.stringify(a)} is not NAME=value`);
    env[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return { label: a, tree: tree === '.' ? fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '') : tree!, env };
});
const one = fileURLToPath(new URL('./load-one.ts', import.meta.url));
const f1 = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(1));
for (let p = 1; p <= pairs; p++) {
  for (const arm of arms) {
    const load = loadavg()[0]!.toFixed(1);
    const out = execFileSync(process.execPath, ['--import', 'tsx', one, arm.tree, workers!, rate!, seconds!, perMessage!, dispatch], {
      env: { ...process.env, ...arm.env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: (Number(seconds) + 120) * 1000,
    });
    const json = out.split('\n').find((l) => l.startsWith('{"tree"'));
    if (!json) throw new Error(`load-ab: no figures from ${arm.label}:\n${out.slice(-2000)}`);
    const f = JSON.parse(json) as LoadFigures;
    const w = f.workerPauses;
    const wEach = (f.workerPausesEach ?? [w]).map((x) => (x ? `${f1(x.minorMaxMs)}` : 'n/a')).join('/');
    console.log(`pair ${p} ${arm.label}: load ${load}; ${f1(f.tasksPerSend)} per send, completed ${f.completedPerSecond.toFixed(0)}/s, backlog ${f.backlog}; ` +
      `p50 ${f1(f.p50Ms)} p99 ${f1(f.p99Ms)} max ${f.maxMs.toFixed(0)} ms (queue p99 ${f1(f.queueP99Ms)}); CPU ${(f.serverCpu * 100).toFixed(0)}% ${f1(f.cpuUsPerTask)} us/task; heap growth ${f.heapGrowingPercent ? `${f.heapGrowingPercent.orchestrator}/${f.heapGrowingPercent.workers}%` : 'V8 (bench before round 22)'}; ` +
      `orch loop p99 ${f1(f.pauses.loopP99Ms)} max ${f.pauses.loopMaxMs.toFixed(0)}, scav max ${f1(f.pauses.minorMaxMs)}, other GC ${f.pauses.majorCount} (${f.pauses.majorMs.toFixed(0)} ms) max ${f1(f.pauses.majorMaxMs)}; ` +
      `workers (${f.workerProcs ?? 1} proc, ${f.workerSemiSpaceMb ? `semi ${f.workerSemiSpaceMb} MiB` : 'default semi'}) CPU ${(f.workersCpu * 100).toFixed(0)}% ${f1((f.workersCpu * 1e6) / Math.max(1, f.completedPerSecond))} us/task, loop p99 ${f1(w?.loopP99Ms)} max ${w ? w.loopMaxMs.toFixed(0) : 'n/a'}, scav ${w?.minorCount ?? 'n/a'} max ${wEach} ms, other GC ${w?.majorCount ?? 'n/a'} (${w ? w.majorMs.toFixed(0) : 'n/a'} ms) max ${f1(w?.majorMaxMs)}`);
  }
}
