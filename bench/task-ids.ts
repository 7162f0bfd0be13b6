// newTaskId's CPU per id, this tree's against another tree's, interleaved (round 10: one randomBytes call per id
// against a pooled one). Prints the median of ROUNDS rounds of N ids each, per tree.
//   node --import tsx bench/task-ids.ts [<other tree>]
const other = process.argv[2];
const trees: [string, (p: string) => string][] = [['this', (await import('../orchestrator/task-board.ts')).newTaskId]];
if (other) trees.push([other, ((await import(`${other}/orchestrator/task-board.ts`)) as typeof import('../orchestrator/task-board.ts')).newTaskId]);
const N = 100_000;
const ROUNDS = 7;
const us = new Map<string, number[]>(trees.map(([t]) => [t, []]));
let sink = 0;
for (let r = 0; r < ROUNDS; r++) {
  for (const [t, f] of trees) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < N; i++) sink += f(`run-r${i}`).length;
    const c = process.cpuUsage(c0);
    us.get(t)!.push((c.user + c.system) / N);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
for (const [t, xs] of us) console.log(`newTaskId, ${t}: ${median(xs).toFixed(3)} us CPU per id (median of ${ROUNDS} rounds of ${N}; ${sink > 0 ? 'ok' : ''})`);
