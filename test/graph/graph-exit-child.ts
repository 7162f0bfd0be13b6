// A child process that ends while a graph runs in a worker thread (test/graph/graph-thread.test.ts): `plain` calls
// process.exit at once, `after` goes through the roles' exitAfterGraphs; `starting` calls exitAfterGraphs(7) while a
// graph thread is still creating its session; `now` calls exitNow(9, 'SIGTERM') mid-run (run as PID 1 of a PID
// namespace, where the process cannot signal itself).
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
const session = await GraphSession.create(policyModel(config), { thread: 'on', intraOpThreads: 1 });
void session.run(feeds).catch(() => undefined);
await new Promise((r) => setTimeout(r, 30)); // inside the run
if (process.argv[2] === 'after') await exitAfterGraphs(0);
if (process.argv[2] === 'now') exitNow(9, 'SIGTERM');
process.exit(0);
