// What a task index's churn promotes to old space, V8's Map against orchestrator/task-index.ts's TaskIndex (round
// 12, disp12). Each operation adds one entry (a small task-like object) and deletes the oldest, with `live` in
// flight, and allocates ~2 KB of short-lived garbage (a message's worth); bytes, not times, so a loaded machine does
// not change the figures. Each arm runs in a child with --trace-gc-nvp; the parent sums the child's scavenges'
// `promoted` bytes and counts its mark-compacts over the measured phase.
//   node --import tsx bench/index-churn.ts [ops=2000000] [live=200]
// With CHURN_SEED=1 the measured phase follows 100,000 operations at 20,000 live (a backlog, as after a stall).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TaskIndex } from '../orchestrator/task-index.ts';

const [first, ...rest] = process.argv.slice(2);
if (first === 'child') {
  const [kind, opsArg, liveArg] = rest;
  const m = kind === 'map' ? new Map<string, object>() : new TaskIndex<object>();
  const ring: (string | undefined)[] = new Array(32768).fill(undefined);
  let next = 0;
  let head = 0;
  let n = 0;
  let sink: unknown;
  const op = (live: number) => {
    const id = `task-${next++}-${(next * 2654435761) >>> 0}`;
    m.set(id, { id, a: [1, 2, 3], b: { x: next } });
    ring[(head + n++) & 32767] = id;
    while (n > live) {
      m.delete(ring[head]!);
      ring[head] = undefined;
      head = (head + 1) & 32767;
      n--;
    }
    sink = new Array(250).fill(next);
  };
  if (process.env.CHURN_SEED === '1') for (let i = 0; i < 100_000; i++) op(20_000);
  console.log('measure');
  for (let i = 0; i < Number(opsArg); i++) op(Number(liveArg));
  console.log('end', sink !== undefined);
} else {
  const ops = Number(first ?? 2_000_000);
  const live = Number(rest[0] ?? 200);
  if (!(ops > 0 && live > 0 && live <= 30_000)) throw new Error('usage: index-churn.ts [ops > 0] [live in 1..30000]');
  const self = fileURLToPath(import.meta.url);
  console.log(`index churn: ${ops} adds and deletes at ${live} live, ~2 KB of garbage each${process.env.CHURN_SEED === '1' ? ', after 100,000 at 20,000 live' : ''}:`);
  for (const kind of ['map', 'task-index']) {
    const out = execFileSync(process.execPath, ['--trace-gc-nvp', '--import', 'tsx', self, 'child', kind, String(ops), String(live)], { encoding: 'utf8', env: process.env, maxBuffer: 1 << 28 });
    const lines = out.split('\n');
    const from = lines.indexOf('measure');
    // the child's main isolate (tsx's loader thread has its own): the one with the most GCs
    const byIsolate = new Map<string, string[]>();
    for (const l of lines.slice(from)) if (l.includes(' gc=')) byIsolate.set(l.slice(0, l.indexOf(']')), [...(byIsolate.get(l.slice(0, l.indexOf(']'))) ?? []), l]);
    const main = [...byIsolate.values()].sort((a, b) => b.length - a.length)[0] ?? [];
    let promoted = 0;
    let scavenges = 0;
    let markCompacts = 0;
    for (const l of main) {
      promoted += Number(/ promoted=(\d+)/.exec(l)?.[1] ?? 0);
      if (/ gc=s /.test(l)) scavenges++;
      else markCompacts++;
    }
    console.log(`  ${kind.padEnd(10)} promoted ${(promoted / 2 ** 20).toFixed(1)} MiB = ${(promoted / ops).toFixed(1)} B per operation; ${scavenges} scavenges, ${markCompacts} mark-compacts`);
  }
}
