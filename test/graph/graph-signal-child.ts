// A child process that stops on SIGINT / SIGTERM as the roles do (lib/worker/stop-signals.ts), with a stop that never
// finishes, while `busy`: graphs run back to back in a worker thread (one always inside a run); `idle`: the thread
// holds its session and runs nothing. test/graph/graph-thread-exit.test.ts sends it two signals.
import { GraphSession } from '../../lib/graph/runtime.ts';
import { policyModel } from '../../lib/models/bundle.ts';
import { onStopSignals } from '../../lib/worker/stop-signals.ts';
import { policyCase } from '../helpers/policy-case.ts';

const { config, feeds } = policyCase(128, 16);
const session = await GraphSession.create(policyModel(config), { thread: 'on', intraOpThreads: 1 });
if (process.argv[2] === 'busy') {
  // two calls queued at all times: when one returns, the next is already inside onnxruntime
  const keep = (): void => void session.run(feeds).then(keep, () => undefined);
  keep();
  keep();
  await new Promise((r) => setTimeout(r, 30)); // inside the first run
}
onStopSignals((signal) => process.stdout.write(`stopping (${signal})\n`));
setInterval(() => undefined, 1000); // the stop never ends: only the second signal ends this process
process.stdout.write('running\n');
