// One line of the load bench from the source tree given (for before/after runs: export an older commit, copy this
// file and bench/load.bench.ts into it, and run lines from each tree in turn). Prints the figures as one JSON line.
//   node --import tsx bench/load-one.ts <tree> <workers> <rate> <seconds> <perMessage> <pack|spread> [coalesceMs] [bundleMs]
// With LOAD_THREADS=1 the line's per-thread CPU goes to stderr. LOAD_WORKER_PROCS, LOAD_WORKER_SEMI_SPACE_MB (one number
// each here) and LOAD_WORKER_NODE_FLAGS as in bench/load.bench.ts; a tree whose runLoad predates them ignores them (one
// workers' process before round 11, node's default semi-space before round 12).
const [tree, workers, rate, seconds, perMessage, dispatch, coalesce, bundle] = process.argv.slice(2);
if (!tree || !dispatch) throw new Error('usage: load-one.ts <tree> <workers> <rate> <seconds> <perMessage> <pack|spread> [coalesceMs] [bundleMs]');
const { runLoad } = (await import(`${tree}/bench/load.bench.ts`)) as typeof import('./load.bench.ts');
const f = await runLoad({
  workers: Number(workers), rate: Number(rate), seconds: Number(seconds), inFlight: 16, perMessage: Number(perMessage),
  dispatch: dispatch as 'pack' | 'spread', coalesceMs: Number(coalesce ?? 0), bundleMs: Number(bundle ?? 5), stallMs: Number(process.env.LOAD_STALL_MS ?? 0), workerSpinUs: Number(process.env.LOAD_WORKER_SPIN_US ?? 0),
  ...(process.env.LOAD_WORKER_PROCS ? { workerProcs: Number(process.env.LOAD_WORKER_PROCS) } : {}),
  ...(process.env.LOAD_WORKER_SEMI_SPACE_MB ? { workerSemiSpaceMb: Number(process.env.LOAD_WORKER_SEMI_SPACE_MB) } : {}),
  // set and empty: node's defaults; unset: the tree's default (--single-threaded-gc since round 34)
  ...(process.env.LOAD_WORKER_NODE_FLAGS !== undefined ? { workerNodeFlags: process.env.LOAD_WORKER_NODE_FLAGS.split(' ').filter((f) => f !== '') } : {}),
  log: (l: string) => { if (l.includes('threads') || process.env.LOAD_TIMELINE === '1') console.error(l); },
});
console.log(JSON.stringify({ tree, ...f }));
process.exit(0);
