// The orchestrator's main-thread profile split by kind of work (docs/performance-history/pipeline.md, "Round 27:
// orch27"): each sample of the last WINDOW seconds before the profile's end (less its last 2 s, shutdown) goes to the
// category of the innermost frame of its stack that one names (GC, sample generation, results decoded and validated,
// advantages, tasks built, TrainBatch assembly and digest, the codecs, grpc-js, logging, metrics, the task board), else
// to node internals, else "other". Profiles come from bench/pipeline-profile.ts (every role under --cpu-prof).
//
//   node --import tsx bench/pipeline-profile.ts DIR 1                                  # PROFILE_GRPO=160
//   node --import tsx bench/orch-profile-split.ts DIR/CPU.<...>.cpuprofile [WINDOW=15] # the orchestrator's file
//   SPLIT_DETAIL='metrics' node --import tsx bench/orch-profile-split.ts FILE          # that category's stacks
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface Frame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: Frame; children?: number[] }
interface Profile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }
export type Rule = [string, (f: Frame) => boolean];

const named = (f: Frame) => f.functionName !== '';
export const RULES: readonly Rule[] = [
  ['GC', (f) => f.functionName === '(garbage collector)'],
  ['(program)', (f) => f.functionName === '(program)'],
  ['TrainBatch digest (SHA-256)', (f) => /batch-digest/.test(f.url)],
  ['logging (event log, trace, console)', (f) => /lib\/log\/|run-state\.ts/.test(f.url) || /onEvent|appendEvent|consoleCall/.test(f.functionName)],
  ['metrics', (f) => /lib\/metrics\/|prom-client|progress\.ts/.test(f.url)],
  ['tensors encoded (finiteness, views)', (f) => f.functionName === 'encodeTensor'],
  ['results decoded + validated', (f) => /logp-bounds|orchestrator\/results/.test(f.url) || f.functionName === 'decodeTensor'],
  ['advantages + rewards', (f) => /lib\/grpo\/(advantages|algorithm|reward-expression)/.test(f.url)],
  ['score/rollout tasks built (clamp)', (f) => /scoreTaskMessage|clamp01Into|rolloutTaskMessage/.test(f.functionName)],
  ['TrainBatch assembly', (f) => /lib\/grpo\/batch\.ts|shared-rows/.test(f.url) || /grpoTrainBatch|distinctImages|buildKept|buildGrpo/.test(f.functionName)],
  ['sample generation (data, corruption)', (f) => /lib\/data\/|sample-cache|sharp\/dist/.test(f.url)],
  ['own protobuf codec (wire-codec.ts)', (f) => /lib\/transport\/wire-codec/.test(f.url)],
  ['grpc-js + protobufjs (framing, copies, proto-loader)', (f) => /@grpc|protobufjs|proto-loader|grpc-(server|common|client)|lib\/transport\/(proto|messages)/.test(f.url)],
  ['timers, leases, task board, sessions', (f) => /task-board|task-index|task-queue|sessions\.ts|flow-window|pending-sends|queue\.ts|threaded-list/.test(f.url)],
  ['coordinator, groups, learner link, NATS', (f) => (/orchestrator\//.test(f.url) && named(f)) || /nats/.test(f.url)],
];
const FALLBACK: readonly Rule[] = [['node internals (sockets, streams, microtasks)', (f) => /^node:/.test(f.url)]];

export function split(file: string, windowS: number, detail?: string): string {
  return splitBy(file, windowS, RULES, FALLBACK, detail);
}

/**
 * The profile `file` split by `rules` (the innermost frame of a sample's stack that one names; else by `fallback`,
 * else "other") over the last `windowS` seconds before its end less 2 s; `detail`: that category's stacks too.
 * bench/learner-split.ts uses it with the learner's rules.
 */
export function splitBy(file: string, windowS: number, rules: readonly Rule[], fallback: readonly Rule[], detail?: string): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const find = (id: number, rules: readonly Rule[]) => {
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const r = rules.find(([, m]) => m(byId.get(n)!.callFrame));
      if (r) return r[0];
    }
    return undefined;
  };
  const byCategory = new Map<string, number>();
  const stacks = new Map<string, number>();
  const hi = p.endTime - 2e6;
  const lo = hi - windowS * 1e6;
  let t = p.startTime;
  let busy = 0;
  let idle = 0;
  p.samples.forEach((id, i) => {
    t += p.timeDeltas[i] ?? 0;
    if (t < lo || t > hi) return;
    const d = p.timeDeltas[i + 1] ?? 0;
    if (byId.get(id)!.callFrame.functionName === '(idle)') return void (idle += d);
    busy += d;
    const c = find(id, rules) ?? find(id, fallback) ?? 'other';
    byCategory.set(c, (byCategory.get(c) ?? 0) + d);
    if (c !== detail) return;
    const chain: string[] = [];
    for (let n: number | undefined = id; n !== undefined && chain.length < 4; n = parent.get(n)) {
      const f = byId.get(n)!.callFrame;
      chain.push(`${f.functionName || '(anonymous)'}@${f.url.split('/').pop()}`);
    }
    stacks.set(chain.join(' < '), (stacks.get(chain.join(' < ')) ?? 0) + d);
  });
  const lines = [`${file}: last ${windowS} s: busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms`];
  for (const [k, us] of [...byCategory].sort((a, b) => b[1] - a[1])) lines.push(`${(us / 1000).toFixed(1).padStart(9)} ms  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${k}`);
  for (const [k, us] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 20)) lines.push(`${(us / 1000).toFixed(1).padStart(9)} ms  ${k}`);
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [file, windowS] = process.argv.slice(2);
  if (!file) {
    console.error('usage: orch-profile-split.ts FILE.cpuprofile [WINDOW_S=15]   (SPLIT_DETAIL=<category> for its stacks)');
    process.exit(1);
  }
  console.log(split(file, Number(windowS ?? 15), process.env.SPLIT_DETAIL));
}
