// The TaskBoard alone, no sockets: CPU per task of add + pump + complete for cheap tasks under spread (bundleMs 5),
// this tree's board against another tree's, interleaved (round 10: what the probes' bookkeeping costs when the
// floor is steady). 200 simulated sessions asking for 16 per message; 10 tasks added per pump; every result at once.
//   node --import tsx bench/board-cpu.ts [<other tree>]
import { validateHello, type OrchestratorMessage, type WorkerSession } from '../lib/transport/index.ts';
import { createMetrics } from '../lib/metrics/index.ts';
import * as mine from '../orchestrator/task-board.ts';
import { fakeSession } from '../test/helpers/fake-session.ts';

const other = process.argv[2];
const boards: [string, typeof mine][] = [['this', mine]];
if (other) boards.push([other, (await import(`${other}/orchestrator/task-board.ts`)) as typeof mine]);
const TASKS = 200_000;
const ROUNDS = 7;

function run(mod: typeof mine, label: string): number {
  let now = 0;
  const board = new mod.TaskBoard({ leaseMs: 600_000, maxAttempts: 3, metrics: createMetrics(`bc-${label}`, 'orchestrator'), onGiveUp: () => {}, dispatch: 'spread', bundleMs: 5, now: () => now });
  const out: { s: WorkerSession; ids: string[] }[] = [];
  const done = Promise.resolve();
  // the tests' fake session (a complete WorkerSession, credential none: the voter is the worker id), asking for 16
  // tasks per message, its sends recorded as task ids
  const sessions = Array.from({ length: 200 }, (_, i): WorkerSession => {
    const s: WorkerSession = {
      ...fakeSession('ROLLOUT', `w${i}`),
      hello: validateHello({ protocol_version: 1, role: 'ROLLOUT', worker_id: `w${i}`, software_version: '', capabilities: { device: 'cpu', max_batch: 1, max_in_flight: 16, max_tasks_per_message: 16, tensor_dtypes: [], labels: {} } }),
      send: (m: OrchestratorMessage) => {
        out.push({ s, ids: m.task_bundle?.rollout_tasks?.map((t) => t.task_id!) ?? [m.rollout_task!.task_id!] });
        return done;
      },
    };
    return s;
  });
  for (const s of sessions) board.attach(s);
  board.pump();
  let next = 0;
  const c0 = process.cpuUsage();
  while (next < TASKS) {
    now += 1;
    const tasks: mine.Task[] = [];
    for (let k = 0; k < 10; k++) {
      const id = `t${next++}`;
      tasks.push({ id, role: 'ROLLOUT', attempt: 0, message: (attempt) => ({ rollout_task: { task_id: id, attempt } }) });
    }
    board.add(...tasks);
    board.pump();
    now += 0.5; // every message's results half a ms later
    for (const o of out) for (const id of o.ids) board.complete(o.s, id);
    out.length = 0;
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / TASKS;
}

const us = new Map<string, number[]>(boards.map(([t]) => [t, []]));
for (let r = 0; r < ROUNDS; r++) for (const [t, mod] of boards) us.get(t)!.push(run(mod, `${t}-${r}`));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
for (const [t, xs] of us) console.log(`TaskBoard add + pump + complete, ${t}: ${median(xs).toFixed(3)} us CPU per task (median of ${ROUNDS} rounds of ${TASKS}; all: ${xs.map((x) => x.toFixed(2)).join(' ')})`);
process.exit(0);
