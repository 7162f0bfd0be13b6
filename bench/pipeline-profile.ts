// Where each pipeline process spends its CPU (docs/performance-history/pipeline.md, round 6): runs the local pipeline
// (runLocal, as bench/pipeline.bench.ts does) with every role under `node --cpu-prof`, then prints per process
// the functions with the most self time over the last WINDOW seconds before the run's end (the GRPO phase when
// GRPO steps are enough: ~25 s at 80 steps), garbage collection included, onnxruntime's graph calls showing as
// backend.js.
//
//   node --import tsx bench/pipeline-profile.ts DIR [staleness=0]     # PROFILE_GRPO=80 PROFILE_WINDOW=20 PROFILE_TOP=20
//   node --import tsx bench/pipeline-profile.ts --summarise FILE.cpuprofile
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runLocal } from '../lib/local/local-run.ts';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

const WINDOW_S = Number(process.env.PROFILE_WINDOW ?? 20);
const TOP = Number(process.env.PROFILE_TOP ?? 20);

/** Self time per function over the window [end - WINDOW_S - 2 s, end - 2 s] (the last 2 s are shutdown). */
export function summarise(file: string): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const hi = p.endTime - 2e6;
  const lo = hi - WINDOW_S * 1e6;
  const self = new Map<string, number>();
  const roles = new Set<string>();
  let t = p.startTime;
  let busy = 0;
  let idle = 0;
  p.samples.forEach((id, i) => {
    t += p.timeDeltas[i] ?? 0;
    const cf = byId.get(id)!.callFrame;
    const role = /\/(orchestrator|learner|rollout-worker|reward-worker)\//.exec(cf.url)?.[1];
    if (role) roles.add(role);
    if (t < lo || t > hi) return;
    const d = p.timeDeltas[i + 1] ?? 0;
    if (cf.functionName === '(idle)') return void (idle += d);
    busy += d;
    const key = `${cf.functionName || '(anonymous)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + d);
  });
  const lines = [`${file}: ${[...roles].join(', ') || '?'}; last ${WINDOW_S} s: busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms`];
  for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) lines.push(`${(us / 1000).toFixed(1).padStart(9)} ms  ${(100 * us / busy).toFixed(1).padStart(5)}%  ${k}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const [a, b] = process.argv.slice(2);
  if (a === '--summarise' && b) return void console.log(summarise(b));
  if (!a) throw new Error('usage: pipeline-profile.ts DIR [staleness] | --summarise FILE.cpuprofile');
  mkdirSync(a, { recursive: true });
  const out = mkdtempSync(join(tmpdir(), 'pipeline-profile-'));
  try {
    const s = await runLocal({
      out, seed: 0, sftSteps: 30, steps: Number(process.env.PROFILE_GRPO ?? 80), log: () => undefined,
      overrides: [`grpo.maxStaleness=${Number(b ?? 0)}`, 'eval.samples=8', 'eval.everyVersions=0'],
      nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${a}`],
    });
    const actions = s.samples_per_second * s.grpo_seconds;
    console.log(`${s.samples_per_second.toFixed(1)} actions/s; CPU ms per action: ${Object.entries(s.grpo_cpu_seconds_by_process ?? {}).map(([n, c]) => `${n} ${((c * 1000) / actions).toFixed(2)}`).join(', ')}`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  // the main threads' profiles (a role's tsx loader thread writes a second, smaller one)
  for (const f of readdirSync(a).filter((f) => f.endsWith('.0.001.cpuprofile')).sort()) console.log(`\n${summarise(join(a, f))}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
