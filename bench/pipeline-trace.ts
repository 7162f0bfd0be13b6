// Reads a pipeline trace (lib/log/trace.ts: `BENCH_TRACE=FILE` on bench/pipeline.bench.ts) and prints where the
// GRPO phase's time went: per batch, the time from its dispatch (open_batch) to each hop, and over the phase,
// each process's busy time (graph calls, checkpoint work) and the critical path's idle gaps.
//   node --import tsx bench/pipeline-trace.ts FILE [--batches]
import { readTrace } from '../lib/log/trace.ts';

interface Ev { t: number; pid: number; role: string; ev: string; kind?: string; id?: string; k?: number; seq?: number; version?: number; n?: number; cpu?: number }

const [file, ...flags] = process.argv.slice(2);
if (!file) throw new Error('usage: pipeline-trace.ts TRACE_FILE [--batches]');
const evs: Ev[] = readTrace<Ev>(file).sort((a, b) => a.t - b.t);
const opens = evs.filter((e) => e.ev === 'open_batch');
if (opens.length === 0) throw new Error(`${file}: no GRPO batch was opened`);
const start = opens[0]!.t;
const lastAck = evs.filter((e) => e.ev === 'persist_end').at(-1)!.t;
const inPhase = evs.filter((e) => e.t >= start && e.t <= lastAck);
const ms = (x: number) => x.toFixed(1).padStart(7);

/** Sum of [start, end) intervals of one process's paired events. */
function busy(role: string, a: string, b: string): { total: number; n: number } {
  let total = 0;
  let n = 0;
  let open: number | undefined;
  for (const e of inPhase) {
    if (e.role !== role && e.role !== 'single') continue;
    if (e.ev === a) open = e.t;
    else if (e.ev === b && open !== undefined) {
      total += e.t - open;
      n++;
      open = undefined;
    }
  }
  return { total, n };
}

const wall = lastAck - start;
console.log(`GRPO phase: ${opens.length} batches, ${(wall / 1000).toFixed(2)} s from the first dispatch to the last acknowledgement written (${ms(wall / opens.length)} ms per batch)`);
const rows: Array<[string, string, string, string]> = [
  ['rollout', 'policy graph', 'policy_start', 'policy_end'],
  ['rollout', 'checkpoint fetch + verify + decode', 'swap_start', 'swap_end'],
  ['reward', 'reward graph', 'score_start', 'score_end'],
  ['learner', 'GRPO step (graphs + AdamW)', 'train_start', 'train_end'],
  ['learner', 'checkpoint encode (train_end -> encoded)', 'train_end', 'encoded'],
  ['learner', 'AdamW moments to the store', 'encoded', 'moments_stored'],
  ['learner', 'checkpoint put + announce', 'moments_stored', 'published'],
  ['learner', 'pruning (beside the next batch)', 'prune_start', 'prune_end'],
  ['orch', 'run-state write (persist)', 'persist_start', 'persist_end'],
];
console.log('busy time per process over the phase (ms in all, per batch, calls):');
for (const [role, what, a, b] of rows) {
  const { total, n } = busy(role, a, b);
  console.log(`  ${role.padEnd(8)} ${what.padEnd(42)} ${ms(total)} ${ms(total / opens.length)} ${String(n).padStart(4)}`);
}

// Per batch (staleness 0 is a strict chain; at staleness 1 the windows overlap and these are dispatch-relative).
const per = new Map<string, number[]>();
const add = (k: string, v: number) => per.set(k, [...(per.get(k) ?? []), v]);
for (let i = 0; i < opens.length; i++) {
  const t0 = opens[i]!.t;
  const seq = opens[i]!.seq!;
  const first = (pred: (e: Ev) => boolean) => inPhase.find((e) => e.t >= t0 && pred(e))?.t;
  const trainRecv = inPhase.find((e) => e.role === 'learner' && e.ev === 'recv' && e.kind === 'train_batch' && e.t >= t0)?.t;
  const trainStart = inPhase.find((e) => e.ev === 'train_start' && e.seq === seq)?.t;
  const trainEnd = inPhase.find((e) => e.ev === 'train_end' && e.seq === seq)?.t;
  const published = inPhase.find((e) => e.ev === 'published' && e.seq === seq)?.t;
  const resultRecv = inPhase.find((e) => e.role === 'orch' && e.ev === 'orecv' && e.kind === 'train_result' && e.t >= (published ?? t0))?.t;
  const persisted = inPhase.find((e) => e.ev === 'persist_end' && e.seq === seq)?.t;
  const sendBatch = inPhase.filter((e) => e.role === 'orch' && e.ev === 'osend' && e.kind === 'train_batch' && e.t >= t0 && e.t <= (trainRecv ?? Infinity)).at(-1)?.t;
  const marks: Array<[string, number | undefined]> = [
    ['first rollout task received', first((e) => e.role === 'rollout' && e.ev === 'recv')],
    ['first policy call starts', first((e) => e.ev === 'policy_start')],
    ['last rollout result received (orch)', inPhase.filter((e) => e.role === 'orch' && e.ev === 'orecv' && e.kind === 'rollout_result' && e.t >= t0 && e.t <= (sendBatch ?? 0)).at(-1)?.t],
    ['last score result received (orch)', inPhase.filter((e) => e.role === 'orch' && e.ev === 'orecv' && e.kind === 'score_result' && e.t >= t0 && e.t <= (sendBatch ?? 0)).at(-1)?.t],
    ['train batch sent', sendBatch],
    ['train batch received (learner)', trainRecv],
    ['train step starts', trainStart],
    ['train step ends', trainEnd],
    ['checkpoint published', published],
    ['train result received (orch)', resultRecv],
    ['acknowledgement written', persisted],
    ['next batch dispatched', opens[i + 1]?.t],
  ];
  let prev = t0;
  for (const [name, t] of marks) {
    if (t === undefined) continue;
    add(name, t - prev);
    prev = t;
  }
  if (flags.includes('--batches')) console.log(`batch seq ${seq}: ` + marks.map(([n, t]) => `${n} +${t === undefined ? '?' : (t - t0).toFixed(0)}`).join(', '));
}
console.log('per batch, time since the previous mark (median / mean ms):');
for (const [name, xs] of per) {
  const s = [...xs].sort((a, b) => a - b);
  console.log(`  ${name.padEnd(40)} ${ms(s[Math.floor(s.length / 2)]!)} ${ms(xs.reduce((a, b) => a + b, 0) / xs.length)}`);
}

// CPU per process over the phase: the cpu field of each process's first and last event inside it.
console.log('CPU time per process over the phase (ms; per batch):');
const byPid = new Map<number, Ev[]>();
for (const e of inPhase) byPid.set(e.pid, [...(byPid.get(e.pid) ?? []), e]);
let cpuAll = 0;
for (const [pid, es] of byPid) {
  if (es[0]!.cpu === undefined) continue;
  const c = es.at(-1)!.cpu! - es[0]!.cpu!;
  cpuAll += c;
  console.log(`  ${es[0]!.role.padEnd(8)} pid ${pid}: ${ms(c)} ${ms(c / opens.length)}`);
}
console.log(`  all traced processes (nats-server not included): ${ms(cpuAll)} ${ms(cpuAll / opens.length)}; wall ${ms(wall)}: ${(cpuAll / wall).toFixed(2)} cores busy on average`);

// How long a policy call's result takes to reach the orchestrator (round 9: HTTP/2 windows held it 2-3 calls).
const ends = inPhase.filter((e) => e.role === 'rollout' && e.ev === 'policy_end').map((e) => e.t);
const arrivals = inPhase.filter((e) => e.role === 'orch' && e.ev === 'orecv' && e.kind === 'rollout_result').map((e) => e.t);
if (ends.length > 0 && ends.length === arrivals.length) {
  const lags = ends.map((t, i) => arrivals[i]! - t).sort((a, b) => a - b);
  const q = (p: number) => lags[Math.floor(p * (lags.length - 1))]!.toFixed(1);
  console.log(`policy call ends -> its result at the orchestrator (one task per call): median ${q(0.5)} ms, p90 ${q(0.9)} ms over ${lags.length} calls`);
}
