// Pipeline figure (issue: the distributed pipeline), measured side by side in one run: the local pipeline's GRPO
// throughput (actions/s) against a single-process loop running the same graphs back to back with no gRPC or NATS.
// (Checkpoint broadcast is bench/broadcast.bench.ts; the orchestrator's dispatch rate is bench/load.bench.ts.)
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg, tmpdir } from 'node:os';
import { loadConfig } from '../lib/config/index.ts';
import { runSingleProcess } from '../lib/local/single-process.ts';
import { runLocal } from '../lib/local/local-run.ts';

const SFT = Number(process.env.BENCH_SFT ?? 30);
const GRPO = Number(process.env.BENCH_GRPO ?? 40);

async function throughput(): Promise<void> {
  console.log(`GRPO throughput, default model and group (G=8, 4 samples per batch), ${GRPO} steps after a ${SFT}-step warm start; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}:`);
  const rows: Array<[string, number]> = [];
  const target: Record<number, number> = { 0: 1.0, 1: 1.2 }; // issue #15
  const stalenesses = (process.env.BENCH_STALENESS ?? '0,1').split(',').map(Number);
  for (const staleness of stalenesses) {
    const overrides = [`grpo.maxStaleness=${staleness}`, 'eval.samples=8'];
    const config = loadConfig(undefined, [...overrides, `sft.steps=${SFT}`, `grpo.steps=${GRPO}`]);
    const single = await runSingleProcess(config);
    const dir = mkdtempSync(join(tmpdir(), 'bench-pipeline-'));
    try {
      const s = await runLocal({ out: dir, seed: 0, sftSteps: SFT, steps: GRPO, overrides, log: () => undefined });
      rows.push([`maxStaleness ${staleness}`, s.samples_per_second / single.actionsPerSecond]);
      console.log(
        `  maxStaleness ${staleness}: pipeline ${s.samples_per_second.toFixed(1)} actions/s, single process ${single.actionsPerSecond.toFixed(1)} actions/s: ratio ${(s.samples_per_second / single.actionsPerSecond).toFixed(2)} (target >= ${target[staleness]?.toFixed(1) ?? '?'}); load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

export async function run(): Promise<void> {
  const only = process.env.BENCH_ONLY;
  if (!only || only === 'throughput') await throughput();
}
