// Garbage collection per pipeline process over the GRPO phase (docs/performance-history/pipeline.md, "Round 7 (pipe7)"): runs the
// local pipeline (runLocal, as bench/pipeline.bench.ts does) with every role under `node --trace-gc`, arms
// alternating round by round, and sums per process the main thread's collection time (pauses plus incremental
// marking steps, as V8 prints them) of the lines that arrive between the last SFT batch's acknowledgement and
// the last GRPO batch's, per GRPO action. Its figure does not depend on how many cores the process got, so it
// stays readable on a loaded machine where CPU per action does not.
//
//   node --import tsx bench/pipeline-gc.ts              # GC_ARMS=heap:0,auto GC_REPS=2 GC_GRPO=40 GC_STALENESS=0
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg, tmpdir } from 'node:os';
import { runLocal } from '../lib/local/local-run.ts';
import { HEAP_GROWTH_ENV } from '../lib/deploy/heap-growth.ts';

const SFT = 30;
const GRPO = Number(process.env.GC_GRPO ?? 40);
const REPS = Number(process.env.GC_REPS ?? 2);
const STALENESS = Number(process.env.GC_STALENESS ?? 0);
const ARMS = (process.env.GC_ARMS ?? 'heap:0,auto').split(',');
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');

interface Tally { scavenges: number; markCompacts: number; ms: number }

// `[pid:0xisolate]  1234 ms: Mark-Compact 61.0 (99.3) -> 59.4 (99.5) MB, 60.88 / 0.04 ms  (+ 76.0 ms in 72 steps ...`
const GC_LINE = /^(?:\[([\w-]+)\] )?\[\d+:0x[0-9a-f]+\]\s+\d+ ms: (Scavenge|Mark-Compact|Mark-Compact \(reduce\)|Minor Mark-Compact)\b.*?MB, ([\d.]+) \/ [\d.]+ ms(?:\s+\(\+ ([\d.]+) ms in \d+ steps)?/;

async function runArm(arm: string): Promise<{ actions: number; by: Map<string, Tally>; cpu: Record<string, number> }> {
  const heap = /^heap:(\d+)$/.exec(arm)?.[1];
  if (arm !== 'auto' && heap === undefined) throw new Error(`GC_ARMS: '${arm}' is not auto or heap:P`);
  const saved = process.env[HEAP_GROWTH_ENV];
  if (heap !== undefined) process.env[HEAP_GROWTH_ENV] = heap;
  const out = mkdtempSync(join(tmpdir(), 'pipeline-gc-'));
  const by = new Map<string, Tally>();
  let inGrpo = false;
  try {
    const s = await runLocal({
      out, seed: 0, sftSteps: SFT, steps: GRPO, nodeArgs: ['--trace-gc'],
      overrides: [`grpo.maxStaleness=${STALENESS}`, 'eval.samples=8', 'eval.everyVersions=0'],
      log: (line) => {
        const progress = /^\[grpo\] batch (\d+)\/(\d+) /.exec(line);
        if (progress) inGrpo = Number(progress[1]) >= SFT && Number(progress[1]) < Number(progress[2]);
        const m = GC_LINE.exec(line);
        if (!m || !inGrpo) return;
        const who = m[1] ?? 'orchestrator';
        const t = by.get(who) ?? { scavenges: 0, markCompacts: 0, ms: 0 };
        if (m[2] === 'Scavenge') t.scavenges++;
        else t.markCompacts++;
        t.ms += Number(m[3]) + Number(m[4] ?? 0);
        by.set(who, t);
      },
    });
    const actions = s.samples_per_second * s.grpo_seconds;
    const cpu = Object.fromEntries(Object.entries(s.grpo_cpu_seconds_by_process ?? {}).map(([n, c]) => [n, (c * 1000) / actions]));
    return { actions, by, cpu };
  } finally {
    if (saved === undefined) delete process.env[HEAP_GROWTH_ENV];
    else process.env[HEAP_GROWTH_ENV] = saved;
    rmSync(out, { recursive: true, force: true });
  }
}

console.log(`GC per GRPO action by process, maxStaleness ${STALENESS}, ${GRPO} GRPO steps, arms ${ARMS.join(' / ')}, ${REPS} round(s); load average ${load()}`);
for (let round = 0; round < REPS; round++) {
  for (const arm of round % 2 === 0 ? ARMS : [...ARMS].reverse()) {
    const r = await runArm(arm);
    const gc = [...r.by].sort().map(([n, t]) => `${n} ${(t.ms / r.actions).toFixed(2)} ms (${t.markCompacts} MC, ${t.scavenges} scavenges)`).join(', ');
    const cpu = Object.entries(r.cpu).map(([n, ms]) => `${n} ${ms.toFixed(2)}`).join(', ');
    console.log(`  round ${round + 1}, ${arm.padEnd(7)} GC per action: ${gc}\n      CPU ms per action: ${cpu}; load average ${load()}`);
  }
}
