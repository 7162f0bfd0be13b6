// A child process that ends while a graph runs in a worker thread (test/graph/graph-thread.test.ts): `plain` calls
// process.exit at once, `after` goes through the roles' exitAfterGraphs.
import { GraphSession } from '../../lib/graph/runtime.ts';
import { loadConfig } from '../../lib/config/index.ts';
import { policyModel, policySpecOf } from '../../lib/models/bundle.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { paramFeeds } from '../../lib/models/feeds.ts';
import { exitAfterGraphs } from '../../cli/worker-options.ts';

const size = 128;
const n = 16;
const config = loadConfig(undefined, [`data.size=${size}`]);
const dims = [n, 3, size, size];
const feeds = {
  ...paramFeeds(initPolicyParams(policySpecOf(config), 0)),
  image: { data: new Float32Array(n * 3 * size * size), dims },
  noise: { data: new Float32Array(n * 3 * size * size), dims },
};
const session = await GraphSession.create(policyModel(config), { thread: 'on', intraOpThreads: 1 });
void session.run(feeds).catch(() => undefined);
await new Promise((r) => setTimeout(r, 30)); // inside the run
if (process.argv[2] === 'after') await exitAfterGraphs(0);
process.exit(0);
