// Resident memory of the pipeline's learner and orchestrator, this checkout against another (docs/performance-history/
// pipeline.md, "Round 29: wire29": a TrainBatch's tensors decoded as views pin their message's buffer). Each arm is
// bench/pipeline-ab.ts's child (runLocal of that checkout, seed 0, the bench's settings) at grpo.maxStaleness
// BENCH_STALENESS (default 1) for BENCH_GRPO GRPO steps (default 300) after BENCH_SFT SFT steps (default 20); the arms
// alternate (the order flips every round). While a run lasts, every 250 ms, /proc/<pid>/status of each process whose
// command line is that checkout's bin/recovery-grpo.mjs learner / orchestrator: VmRSS, and VmHWM (the peak). Printed per
// role: the peak, and the steady RSS (median and max of VmRSS over the second half of the role's samples, when the
// run is deep in GRPO), with the load average.
//
//   AB_BASE=/tmp/round28-main nice -n 10 node --import tsx bench/pipeline-rss.ts   # BENCH_PIPELINE_REPS=2 BENCH_GRPO=300
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REPS = Number(process.env.BENCH_PIPELINE_REPS ?? 2);
const STALENESS = process.env.BENCH_STALENESS ?? '1';
const ROLES = ['learner', 'orchestrator'] as const;
type Role = (typeof ROLES)[number];
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');

/** The pids of `checkout`'s role processes now running. */
function rolePids(checkout: string): Map<number, Role> {
  const bin = resolve(checkout, 'bin/recovery-grpo.mjs');
  const out = new Map<number, Role>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const at = args.indexOf(bin);
    const role = at >= 0 ? args[at + 1] : undefined;
    if (role === 'learner' || role === 'orchestrator') out.set(Number(d), role);
  }
  return out;
}

/** VmRSS and VmHWM of `pid` in MiB; undefined once it is gone. */
function memOf(pid: number): { rss: number; hwm: number } | undefined {
  let s: string;
  try {
    s = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

async function arm(checkout: string): Promise<{ line: string; figures: Record<Role, { peak: number; median: number; max: number }> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(HERE, 'bench/pipeline-ab.ts'), '--child', checkout, STALENESS], {
    cwd: HERE, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BENCH_SFT: process.env.BENCH_SFT ?? '20', BENCH_GRPO: process.env.BENCH_GRPO ?? '300' },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const samples = new Map<Role, number[]>(ROLES.map((r) => [r, []]));
  const peak = new Map<Role, number>(ROLES.map((r) => [r, 0]));
  let pids = new Map<number, Role>();
  let scans = 0;
  const timer = setInterval(() => {
    if (scans++ % 8 === 0 || pids.size < 2) pids = rolePids(checkout); // a restarted role gets a new pid
    for (const [pid, role] of pids) {
      const m = memOf(pid);
      if (!m) continue;
      samples.get(role)!.push(m.rss);
      peak.set(role, Math.max(peak.get(role)!, m.hwm));
    }
  }, 250);
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  clearInterval(timer);
  if (code !== 0) throw new Error(`${checkout}: the pipeline run exited with ${code}`);
  const figures = {} as Record<Role, { peak: number; median: number; max: number }>;
  for (const role of ROLES) {
    const xs = samples.get(role)!;
    const late = xs.slice(Math.floor(xs.length / 2)).sort((a, b) => a - b);
    figures[role] = { peak: peak.get(role)!, median: late[Math.floor(late.length / 2)] ?? NaN, max: late.at(-1) ?? NaN };
  }
  return { line: out.trim().split('\n').at(-1) ?? '', figures };
}

const BASE = process.env.AB_BASE;
if (!BASE) throw new Error('AB_BASE: the other checkout (its node_modules installed)');
const arms: Array<[string, string]> = [[`base ${BASE}`, resolve(BASE)], ['this checkout', HERE]];
console.log(`pipeline RSS A/B: maxStaleness ${STALENESS}, ${process.env.BENCH_GRPO ?? 300} GRPO steps after ${process.env.BENCH_SFT ?? 20} SFT steps, ${REPS} alternating round(s); load average ${load()}`);
for (let round = 0; round < REPS; round++) {
  for (const [name, dir] of round % 2 ? [...arms].reverse() : arms) {
    const { line, figures } = await arm(dir);
    const f = (r: Role) => `${r} peak ${figures[r].peak.toFixed(0)} MiB, steady ${figures[r].median.toFixed(0)} (max ${figures[r].max.toFixed(0)})`;
    console.log(`  round ${round + 1}: ${name.padEnd(28)} ${f('learner')}; ${f('orchestrator')}; ${line}; load average ${load()}`);
  }
}
