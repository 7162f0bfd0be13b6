// A child process that ends while a graph runs in a worker thread (test/graph/graph-thread.test.ts): `plain` calls
// process.exit at once, `after` goes through the roles' exitAfterGraphs.
import { GraphSession } from '../../lib/graph/runtime.ts';
import { policyModel } from '../../lib/models/bundle.ts';
import { exitAfterGraphs } from '../../lib/graph/graph-thread.ts';
import { policyCase } from '../helpers/policy-case.ts';

const { config, feeds } = policyCase(128, 16);
const session = await GraphSession.create(policyModel(config), { thread: 'on', intraOpThreads: 1 });
void session.run(feeds).catch(() => undefined);
await new Promise((r) => setTimeout(r, 30)); // inside the run
if (process.argv[2] === 'after') await exitAfterGraphs(0);
process.exit(0);
