// A child process that ends while a graph runs in a worker thread (test/graph/graph-thread.test.ts): `plain` calls
// process.exit at once, `after` goes through the roles' exitAfterGraphs; `starting` calls exitAfterGraphs(7) while a
// graph thread is still creating its session; `now` calls exitNow(9, 'SIGTERM') with a run pending (run as PID 1 of a
// PID namespace, where the process cannot signal itself).
import { GraphSession } from '../../lib/graph/runtime.ts';
import { policyModel } from '../../lib/models/bundle.ts';
import { exitAfterGraphs, exitNow, GraphThread } from '../../lib/graph/graph-thread.ts';
import { policyCase } from '../helpers/policy-case.ts';

const { config, feeds } = policyCase(128, 16);
if (process.argv[2] === 'starting') {
  void GraphThread.create(policyModel(config), { intraOpNumThreads: 1 }, 'late graph').catch(() => undefined);
  await new Promise((r) => setTimeout(r, 20)); // the thread is loading onnxruntime and creating the session
  const exiting = exitAfterGraphs(7);
  // a thread asked for once the exit has begun is refused (it would only hold the exit up)
  await GraphThread.create(policyModel(config), { intraOpNumThreads: 1 }, 'too late').then(
    () => process.stdout.write('too late: started\n'),
    (e: Error) => process.stdout.write(`too late: ${e.message}\n`),
  );
  await exiting;
}
if (process.argv[2] === 'now') {
  // A run pending (the thread busy) sends exitNow down its signal path; as PID 1 it exits after 2 s of pauses. A
  // small graph, so that its run has ended by then: the large one below, still inside onnxruntime 2 s later on a
  // loaded machine, crashed the exit (SIGSEGV; round 30, three busy loops).
  const small = policyCase(32, 2);
  const s = await GraphSession.create(policyModel(small.config), { thread: 'on', intraOpThreads: 1 });
  void s.run(small.feeds).catch(() => undefined);
  exitNow(9, 'SIGTERM');
}
const session = await GraphSession.create(policyModel(config), { thread: 'on', intraOpThreads: 1 });
// Inside the run: the process has spent 50 ms of CPU since the call while this thread only polled, so the graph
// thread is computing (a run here takes ~0.2-0.5 s). A fixed 30 ms sleep could end before a loaded machine had
// scheduled the thread at all, and `plain` then exits cleanly instead of aborting.
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const before = cpuMs();
void session.run(feeds).catch(() => undefined);
for (const t0 = Date.now(); cpuMs() - before < 50; await new Promise((r) => setTimeout(r, 2))) {
  if (Date.now() - t0 > 30_000) throw new Error('the graph thread did not start its run within 30 s');
}
if (process.argv[2] === 'after') await exitAfterGraphs(0);
process.exit(0);
