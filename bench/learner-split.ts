// The learner's CPU split by kind of work (docs/performance-history/pipeline.md, "Round 28: lcpu28"), two ways:
//
// - `trace FILE`: the learner's trace (lib/log/trace.ts: each event carries the process's CPU, every thread, in whole
//   ms), from bench/learner-grpo.ts's LEARNER_GRPO_TRACE_OUT or a pipeline run's RECOVERY_GRPO_TRACE: per GRPO batch,
//   the CPU between its events, averaged over the batches after the first WARM: batch_start -> train_start (the
//   TrainBatch decoded and validated), -> stale_checked (the stale-row check, its forwards included), -> ref_forward
//   (the KL reference's forward, lib/grpo/update.ts), -> train_end (the GRPO graph on its two shards, the
//   same-version screen, AdamW), -> encoded (the EMA, the checkpoint and the AdamW moments encoded, their sha256),
//   -> published (the NATS puts and the announcement, signing), -> result_sent (the batch digest, metrics, the
//   TrainResult's send), -> the next batch_start (whatever runs between batches: prune, receiving the next batch
//   when it was not already in, GC). Work that runs concurrently (the next batch's receive during a step) lands in
//   the window it ran in; the profile below says which code it was.
// - `profile FILE [WINDOW_S=15]`: the learner's main-thread CPU profile (bench/learner-grpo.ts LEARNER_GRPO_PROFILE or
//   bench/pipeline-profile.ts), each sample of the window attributed to the kind of the innermost frame that one
//   names (bench/orch-profile-split.ts's method). onnxruntime's synchronous runs show as backend.js under
//   processImmediate (the caller's stack is lost there), so the graphs are one line here and told apart by the trace;
//   the graph thread's shard is not in this profile at all. Sampled time is inflated by load: read shares.
//
//   LEARNER_GRPO_TRACE_OUT=/tmp/l.jsonl LEARNER_GRPO_KINDS=learner nice -n 10 node --import tsx bench/learner-grpo.ts
//   node --import tsx bench/learner-split.ts trace /tmp/l.jsonl [WARM=5] [ACTIONS=32]
//   LEARNER_GRPO_PROFILE=/tmp/p LEARNER_GRPO_KINDS=learner ... ; node --import tsx bench/learner-split.ts profile /tmp/p/CPU.<...>.0.001.cpuprofile 12
//   SPLIT_DETAIL='<kind>' ... profile ...   that kind's stacks
import { readTrace } from '../lib/log/trace.ts';
import { splitBy, type Rule } from './orch-profile-split.ts';

/** The learner's kinds of work, by the innermost frame of a sample's stack that a rule names (first rule first). */
export const LEARNER_RULES: readonly Rule[] = [
  ['GC', (f) => f.functionName === '(garbage collector)'],
  ['(program)', (f) => f.functionName === '(program)'],
  ['TrainBatch digest (SHA-256)', (f) => /batch-digest/.test(f.url)],
  ['stale-row check (JS)', (f) => /lib\/grpo\/stale-check/.test(f.url)],
  ['logging, trace', (f) => /lib\/log\//.test(f.url) || /consoleCall|writeFileUtf8|appendFileSync/.test(f.functionName)],
  ['metrics', (f) => /lib\/metrics\/|prom-client/.test(f.url)],
  ['AdamW (lib/optim)', (f) => /lib\/optim\//.test(f.url)],
  ['checkpoint + moments encode (safetensors, sha256)', (f) => /lib\/checkpoint\/(safetensors|checkpoint|optimizer-state|digest|tensors)/.test(f.url)],
  ['signing', (f) => /lib\/checkpoint\/sign/.test(f.url)],
  ['TrainBatch decode + validate (learner/batch.ts, decodeTensor, finiteness)', (f) => /learner\/batch\.ts/.test(f.url) || /^(decodeTensor|firstNonFinite)$/.test(f.functionName)],
  ['onnxruntime graph runs (sync part, feeds, outputs)', (f) => /onnxruntime|lib\/graph\/|lib\/models\/(batch-shards|row-forms|lanes|feeds|runner|trainer)/.test(f.url)],
  ['same-version screen, GRPO update (lib/grpo)', (f) => /lib\/grpo\//.test(f.url)],
  ['NATS puts, KV, announcements (nats.js, lib/transport nats/store)', (f) => /nats|jetstream|lib\/transport\/(checkpoint|object|direct-get|owned-stream|store-loss|read-memory)|lib\/worker\/(learner-state|checkpoints)/.test(f.url)],
  ['gRPC receive/send (grpc-js, wire codec, messages)', (f) => /@grpc|protobufjs|proto-loader|lib\/transport\/(grpc|wire-codec|messages|proto|pending-sends|queue|flow-window)/.test(f.url)],
  ['worker runtime, learner role', (f) => /lib\/worker\/|learner\//.test(f.url)],
];
const FALLBACK: readonly Rule[] = [['node internals (sockets, streams, microtasks, crypto)', (f) => /^node:/.test(f.url) || f.url === '']];

interface Ev { t: number; cpu: number; ev: string; seq?: number; role?: string }
/** The phases of a GRPO batch, by the event that ends each (the first starts at batch_start). */
export const PHASES: ReadonlyArray<[event: string, name: string]> = [
  ['train_start', 'TrainBatch decoded + validated'],
  ['stale_checked', 'stale-row check (its forwards included)'],
  ['ref_forward', 'KL reference forward'],
  ['train_end', 'GRPO graph (2 shards) + screen + AdamW'],
  ['encoded', 'EMA, checkpoint + moments encoded (sha256)'],
  ['published', 'NATS puts + announcement (signing)'],
  ['result_sent', 'batch digest, metrics, TrainResult sent'],
];

/** CPU ms per phase per GRPO batch (batches with every event, after the first `warm`), and the total. */
export function traceSplit(evs: readonly Ev[], warm: number): { batches: number; phases: Array<[string, number]>; between: number; total: number } {
  const starts = evs.map((e, i) => [e, i] as const).filter(([e]) => e.ev === 'batch_start');
  const sums = new Map<string, number>(PHASES.map(([, n]) => [n, 0]));
  let between = 0;
  let batches = 0;
  let total = 0;
  starts.forEach(([s, i], k) => {
    const next = starts[k + 1];
    if (!next) return; // the last batch: no next start to close "between"
    const window = evs.slice(i, next[1]);
    if (!window.some((e) => e.ev === 'ref_forward')) return; // SFT, or a GRPO step without a reference forward
    if (k < warm) return;
    let at = s.cpu;
    const got: number[] = [];
    for (const [ev] of PHASES) {
      const e = window.find((x) => x.ev === ev);
      if (!e) return; // a batch without every event (skipped, empty): not counted
      got.push(e.cpu - at);
      at = e.cpu;
    }
    PHASES.forEach(([, n], j) => sums.set(n, sums.get(n)! + got[j]!));
    between += next[0].cpu - at;
    total += next[0].cpu - s.cpu;
    batches++;
  });
  const per = (x: number) => (batches ? x / batches : NaN);
  return { batches, phases: [...sums].map(([n, v]) => [n, per(v)]), between: per(between), total: per(total) };
}

/**
 * The GRPO step alone (train_start -> train_end, with its KL reference forward: -> ref_forward), per GRPO step after
 * the first `warm`: the learner's and the single-process loop's (lib/local/single-process.ts traces the same events
 * around the same grpoUpdate), so the two compare directly.
 */
export function stepSplit(evs: readonly Ev[], warm: number): { steps: number; reference: number; rest: number } {
  let steps = 0;
  let reference = 0;
  let rest = 0;
  let seen = 0;
  evs.forEach((e, i) => {
    if (e.ev !== 'train_start') return;
    const end = evs.findIndex((x, j) => j > i && x.ev === 'train_end');
    const ref = evs.findIndex((x, j) => j > i && j < end && x.ev === 'ref_forward');
    if (end < 0 || ref < 0) return; // SFT, or no reference forward
    if (seen++ < warm) return;
    steps++;
    reference += evs[ref]!.cpu - e.cpu;
    rest += evs[end]!.cpu - evs[ref]!.cpu;
  });
  return { steps, reference: reference / steps, rest: rest / steps };
}

const [mode, file, a, b] = process.argv.slice(2);
if (mode === 'trace' && file) {
  // a pipeline's trace holds every role's lines: the learner's, or the single process's (role '' or 'single')
  const evs = readTrace<Ev>(file).filter((e) => !e.role || e.role === 'learner' || e.role === 'single');
  const actions = Number(b ?? 32);
  const r = traceSplit(evs, Number(a ?? 5));
  const st = stepSplit(evs, Number(a ?? 5));
  const line = (n: string, v: number) => `${v.toFixed(2).padStart(8)} ms/batch ${(v / actions).toFixed(3).padStart(7)} ms/action  ${n}`;
  console.log(`${file}: ${r.batches} GRPO batches (CPU of the learner process, all threads, from its trace)`);
  for (const [n, v] of r.phases) console.log(line(n, v));
  console.log(line('between batches (prune, receive, GC)', r.between));
  console.log(line('total', r.total));
  // (train_start -> ref_forward includes the stale-row check in the learner)
  console.log(`GRPO steps (train_start -> train_end), ${st.steps}: up to the KL reference forward's end ${st.reference.toFixed(2)} ms, the rest ${st.rest.toFixed(2)} ms, in all ${(st.reference + st.rest).toFixed(2)} ms per step (${((st.reference + st.rest) / actions).toFixed(3)} per action)`);
} else if (mode === 'profile' && file) {
  console.log(splitBy(file, Number(a ?? 15), LEARNER_RULES, FALLBACK, process.env.SPLIT_DETAIL));
} else {
  console.error('usage: learner-split.ts trace FILE.jsonl [WARM=5] [ACTIONS=32] | profile FILE.cpuprofile [WINDOW_S=15]');
  process.exit(1);
}
