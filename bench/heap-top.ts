// Sums a sampling heap profile (.heapprofile, from bench/load.bench.ts LOAD_ALLOC_PROFILE or bench/load-workers.ts
// LOAD_WORKER_HEAP_PROFILE) by allocating frame, and by frame plus its caller chain, and prints the largest.
//   node --import tsx bench/heap-top.ts <file.heapprofile> [tasks] [rows] [depth]
// tasks: divide by this many (e.g. the window's completed tasks) to print bytes per task.
import { readFileSync } from 'node:fs';

interface Node { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: Node[] }
const [file, tasksArg, rowsArg, depthArg] = process.argv.slice(2);
if (!file) throw new Error('usage: heap-top.ts <file.heapprofile> [tasks] [rows] [depth]');
const tasks = Number(tasksArg ?? 1);
const rows = Number(rowsArg ?? 25);
const depth = Number(depthArg ?? 4);
const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: Node };
const name = (n: Node) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/.*\/(node_modules\/)?/, '')}:${n.callFrame.lineNumber + 1}`;
const self = new Map<string, number>();
const chains = new Map<string, number>();
let total = 0;
const walk = (n: Node, stack: string[]) => {
  const s = [...stack, name(n)];
  if (n.selfSize > 0) {
    total += n.selfSize;
    const k = name(n);
    self.set(k, (self.get(k) ?? 0) + n.selfSize);
    const c = s.slice(-depth).reverse().join(' <- ');
    chains.set(c, (chains.get(c) ?? 0) + n.selfSize);
  }
  for (const ch of n.children) walk(ch, s);
};
walk(head, []);
const fmt = (b: number) => `${(b / tasks).toFixed(tasks > 1 ? 1 : 0)} B${tasks > 1 ? '/task' : ''}`;
console.log(`total ${fmt(total)} (${(total / 2 ** 20).toFixed(1)} MiB sampled)`);
console.log('by allocating frame:');
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, rows)) console.log(`  ${fmt(v).padStart(14)}  ${k}`);
console.log(`by frame and ${depth - 1} callers:`);
for (const [k, v] of [...chains].sort((a, b) => b[1] - a[1]).slice(0, rows)) console.log(`  ${fmt(v).padStart(14)}  ${k}`);
