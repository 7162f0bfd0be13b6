// A follower's CPU per checkpoint, step by step, from a trace of the broadcast bench (round 28):
//   RECOVERY_GRPO_TRACE=/tmp/bc.jsonl BENCH_BROADCAST_SIZES=1.2 BENCH_BROADCAST_REPS=16 node --import tsx bench/index.ts broadcast
//   node --import tsx bench/broadcast-cpu-split.ts /tmp/bc.jsonl
// For each pair of consecutive trace events of one process (the followers' push.recv, push.first, push.held,
// watch.arrived, watch.msg, watch.backed, get.start, get.push, decoded; the learner's put.* steps), the CPU the process
// spent between them (lib/log/trace.ts: ms to 0.01): medians and means over every follower and version. The trace
// calls themselves cost some (an appendFileSync each, ~0.02-0.04 ms), so the sum is above an untraced follower's.
import { readTrace } from '../lib/log/trace.ts';

interface Ev { cpu: number; pid: number; role: string; ev: string }
const file = process.argv[2];
if (!file) throw new Error('usage: broadcast-cpu-split.ts <trace.jsonl> (a trace of bench/index.ts broadcast)');
const byPid = new Map<number, Ev[]>();
for (const e of readTrace<Ev>(file)) if (e.role.startsWith('follower-nats') || e.role === 'learner') byPid.set(e.pid, [...(byPid.get(e.pid) ?? []), e]);
const rows = new Map<string, number[]>();
for (const es of byPid.values()) {
  for (let i = 1; i < es.length; i++) {
    const who = es[i]!.role === 'learner' ? 'learner ' : 'follower';
    if (who === 'learner ' && !es[i]!.ev.startsWith('put.')) continue;
    const k = `${who} ${es[i - 1]!.ev} -> ${es[i]!.ev}`;
    rows.set(k, [...(rows.get(k) ?? []), es[i]!.cpu - es[i - 1]!.cpu]);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
for (const [k, xs] of [...rows].sort((a, b) => b[1].length - a[1].length)) {
  if (xs.length < 4) continue;
  console.log(`${k.padEnd(44)} n ${String(xs.length).padStart(4)}  CPU ms median ${median(xs).toFixed(3)}  mean ${mean(xs).toFixed(3)}`);
}
