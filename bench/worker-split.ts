// The workers' CPU split into their graph calls and everything else (round 27, workers27), from event traces
// (lib/log/trace.ts: each line carries the process's CPU ms so far). For each process in the GRPO phase (the
// first open_batch to the last persist_end): the CPU inside policy_start..policy_end (the policy forward and
// sampling) and score_start..score_end (the reward graph: SSIM and the encoder cosine), per action, and the
// process's CPU between its first and last event in the phase. The single-process loop's trace
// (`RECOVERY_GRPO_TRACE=FILE node --import tsx bench/pipeline-single.ts 1 30 40`) gives the same graphs' cost for
// the same actions in one process; a pipeline trace (`BENCH_TRACE=DIR` on bench/pipeline.bench.ts) the workers'.
// The CPU readings are whole milliseconds, so a call's figure is +-1 ms; summed over hundreds of calls the
// rounding averages out.
//
//   node --import tsx bench/worker-split.ts TRACE.jsonl [TRACE.jsonl ...]
import { readTrace } from '../lib/log/trace.ts';

interface Ev { t: number; cpu: number; pid: number; role: string; ev: string; n?: number }

function split(file: string): string {
  const evs = readTrace<Ev>(file).sort((a, b) => a.t - b.t);
  const start = evs.find((e) => e.ev === 'open_batch')?.t;
  const end = evs.filter((e) => e.ev === 'persist_end').at(-1)?.t;
  if (start === undefined || end === undefined) throw new Error(`${file}: no GRPO phase (open_batch .. persist_end)`);
  const phase = evs.filter((e) => e.t >= start && e.t <= end);
  const actions = phase.filter((e) => e.ev === 'policy_end').reduce((a, e) => a + (e.n ?? 0), 0);
  const lines = [`${file}: GRPO phase ${((end - start) / 1000).toFixed(2)} s, ${actions} actions sampled`];
  const pids = [...new Set(phase.map((e) => e.pid))];
  for (const pid of pids) {
    const mine = phase.filter((e) => e.pid === pid);
    const role = mine[0]!.role || '?';
    const sums: Record<string, { cpu: number; calls: number; n: number }> = {};
    const open: Record<string, Ev | undefined> = {};
    for (const e of mine) {
      const m = /^(policy|score)_(start|end)$/.exec(e.ev);
      if (!m) continue;
      if (m[2] === 'start') open[m[1]!] = e;
      else if (open[m[1]!]) {
        const s = (sums[m[1]!] ??= { cpu: 0, calls: 0, n: 0 });
        s.cpu += e.cpu - open[m[1]!]!.cpu;
        s.calls++;
        s.n += e.n ?? 0;
        open[m[1]!] = undefined;
      }
    }
    const total = mine.at(-1)!.cpu - mine[0]!.cpu;
    const graphs = Object.values(sums).reduce((a, s) => a + s.cpu, 0);
    const parts = Object.entries(sums).map(([k, s]) => `${k} graph ${(s.cpu / actions).toFixed(3)} ms (${s.calls} calls of ${(s.n / Math.max(1, s.calls)).toFixed(1)})`);
    if (parts.length === 0) continue;
    lines.push(`  ${role.padEnd(8)} pid ${pid}: CPU ${(total / actions).toFixed(3)} ms per action = ${parts.join(' + ')} + rest ${((total - graphs) / actions).toFixed(3)} ms`);
  }
  return lines.join('\n');
}

for (const f of process.argv.slice(2)) console.log(split(f));
