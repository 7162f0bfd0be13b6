// Where a broadcast round's milliseconds go, from a trace of the broadcast bench (lib/log/trace.ts):
//   RECOVERY_GRPO_TRACE=/tmp/bc.jsonl BENCH_BROADCAST_SIZES=1.2 BENCH_BROADCAST_REPS=10 node --import tsx bench/index.ts broadcast
//   node --import tsx bench/broadcast-phases.ts /tmp/bc.jsonl
// Per measured version (one arm: run without BENCH_BROADCAST_BEFORE), ms from the bench's put(): the learner's steps
// (put.start after its sha256, the lookup's reply, the chunks' acknowledgement, the commit's, the announcement's) and
// the followers' (push held, announcement backed, decoded; first and last of the 4), then medians and ranges; and how
// many followers per version fetched the checkpoint from the store because they did not hold its push.
import { readTrace } from '../lib/log/trace.ts';

interface Ev { t: number; role: string; ev: string; version?: number; held?: boolean }
const file = process.argv[2];
if (!file) throw new Error('usage: broadcast-phases.ts <trace.jsonl> (a trace of bench/index.ts broadcast)');
const events = readTrace<Ev>(file);
const byVersion = new Map<number, Ev[]>();
for (const e of events) if (e.version !== undefined) byVersion.set(e.version, [...(byVersion.get(e.version) ?? []), e]);
const rows = new Map<string, number[]>();
const MISSED = 'pushes missed (store reads)';
const add = (k: string, x: number | undefined) => x !== undefined && Number.isFinite(x) && rows.set(k, [...(rows.get(k) ?? []), x]);
const versions = [...byVersion.keys()].sort((a, b) => a - b);
// the first two versions are the followers' join and the bench's warm-up
for (const v of versions.slice(2)) {
  const es = byVersion.get(v)!;
  const t0 = es.find((e) => e.ev === 'bench.put')?.t;
  if (t0 === undefined) continue;
  const learner = (ev: string) => es.find((e) => e.role === 'learner' && e.ev === ev)?.t;
  const followers = (ev: string) => es.filter((e) => e.role !== 'learner' && e.ev === ev).map((e) => e.t - t0);
  const [start, info, chunks, commit, announced, all] = ['put.start', 'put.info', 'put.chunks', 'put.commit', 'put.announced', 'bench.all_held'].map(learner);
  add('sha256 (put.start)', start! - t0);
  add('lookup reply', info! - start!);
  add('chunks acknowledged', chunks! - info!);
  add('commit acknowledged', commit! - chunks!);
  add('announcement acknowledged', announced! - commit!);
  for (const ev of ['push.held', 'watch.backed', 'decoded']) {
    const xs = followers(ev);
    if (xs.length) {
      add(`${ev}, first follower`, Math.min(...xs));
      add(`${ev}, last follower`, Math.max(...xs));
    }
  }
  add('all held (bench)', all! - t0);
  // a follower that did not hold the push when the announcement was backed read the checkpoint from the store (round
  // 20: an announcement overtaking the push)
  add(MISSED, es.filter((e) => e.ev === 'get.push' && e.held === false).length);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
for (const [k, xs] of rows) {
  if (k === MISSED) console.log(`${k.padEnd(28)} ${xs.reduce((a, b) => a + b, 0)} in ${xs.filter((x) => x > 0).length} of ${xs.length} versions`);
  else console.log(`${k.padEnd(28)} median ${median(xs).toFixed(1).padStart(6)} ms  [${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}] n ${xs.length}`);
}
