// One broadcast round end to end, per follower, from a trace of the broadcast bench (round 27):
//   RECOVERY_GRPO_TRACE=/tmp/bc.jsonl BENCH_BROADCAST_SIZES=1.2 BENCH_BROADCAST_REPS=10 node --import tsx bench/index.ts broadcast
//   node --import tsx bench/broadcast-timeline.ts /tmp/bc.jsonl
// Per measured version (one arm: run without BENCH_BROADCAST_BEFORE), ms from the bench's put(): the learner's steps,
// then each follower's, the followers ordered by when they held the push (1st..4th): its first socket read of the
// push (push.recv: the server has started writing to it), the push parsed (push.first: its last byte read), hashed and
// held (push.held), the announcement arriving (watch.arrived, its callback) and backed (watch.backed), decoded (the
// report to the bench follows at once); and the CPU each follower spent from push.recv to decoded. Medians over the
// measured versions [min-max]. broadcast-phases.ts prints the first/last summary.
import { readTrace } from '../lib/log/trace.ts';

interface Ev { t: number; cpu: number; pid: number; role: string; ev: string; version?: number }
const file = process.argv[2];
if (!file) throw new Error('usage: broadcast-timeline.ts <trace.jsonl> (a trace of bench/index.ts broadcast)');
const events = readTrace<Ev>(file);
// watch.arrived carries no version: it belongs to the next watch.backed of the same process (one announcement each)
const pending = new Map<number, Ev[]>();
for (const e of events) {
  if (e.ev === 'watch.arrived') pending.set(e.pid, [...(pending.get(e.pid) ?? []), e]);
  else if (e.ev === 'watch.backed' && e.version !== undefined) {
    const a = pending.get(e.pid)?.shift();
    if (a && a.t <= e.t) a.version = e.version;
  }
}
const byVersion = new Map<number, Ev[]>();
for (const e of events) if (e.version !== undefined && e.version >= 0) byVersion.set(e.version, [...(byVersion.get(e.version) ?? []), e]);
const rows = new Map<string, number[]>();
const add = (k: string, x: number | undefined) => x !== undefined && Number.isFinite(x) && rows.set(k, [...(rows.get(k) ?? []), x]);
const versions = [...byVersion.keys()].sort((a, b) => a - b);
for (const v of versions.slice(2)) {
  const es = byVersion.get(v)!;
  const t0 = es.find((e) => e.ev === 'bench.put')?.t;
  if (t0 === undefined) continue;
  for (const ev of ['put.start', 'put.info', 'put.chunks', 'put.commit', 'put.announced', 'bench.all_held']) add(`learner ${ev}`, (es.find((e) => e.role === 'learner' && e.ev === ev)?.t ?? NaN) - t0);
  const pids = [...new Set(es.filter((e) => e.role.startsWith('follower')).map((e) => e.pid))];
  const at = (pid: number, ev: string) => es.find((e) => e.pid === pid && e.ev === ev);
  pids.sort((a, b) => (at(a, 'push.held')?.t ?? Infinity) - (at(b, 'push.held')?.t ?? Infinity));
  pids.forEach((pid, i) => {
    for (const ev of ['push.recv', 'push.first', 'push.held', 'watch.arrived', 'watch.backed', 'decoded']) add(`follower ${i + 1} ${ev}`, (at(pid, ev)?.t ?? NaN) - t0);
    const r = at(pid, 'push.recv');
    const d = at(pid, 'decoded');
    if (r && d) add(`follower ${i + 1} CPU recv..decoded`, d.cpu - r.cpu);
  });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
for (const [k, xs] of rows) console.log(`${k.padEnd(34)} median ${median(xs).toFixed(1).padStart(6)} ms  [${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}] n ${xs.length}`);
