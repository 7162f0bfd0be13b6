// A child process whose graph thread ends unasked (test/graph/graph-thread-exit.test.ts): the thread of 'doomed
// graph' is terminated from outside while another thread runs graphs back to back and a session on the main thread
// answers too. Prints what the doomed graph's next call says and whether the main thread's session still gives its
// values; the process must then end by itself.
import type { Worker } from 'node:worker_threads';
import { GraphThread } from '../../lib/graph/graph-thread.ts';
import { GraphSession, type Fetches } from '../../lib/graph/runtime.ts';
import { policyModel } from '../../lib/models/bundle.ts';
import { policyCase } from '../helpers/policy-case.ts';

const small = policyCase(32, 2);
const big = policyCase(128, 16);
const model = policyModel(small.config);
const main = await GraphSession.create(model, { thread: 'off' });
const doomed = await GraphThread.create(model, {}, 'doomed graph');
const busy = await GraphSession.create(policyModel(big.config), { thread: 'on', intraOpThreads: 1, name: 'busy graph' });
const digest = (f: Fetches) => Object.entries(f).map(([k, v]) => `${k}:${v.data.reduce((a, x) => a + x, 0)}`).join(' ');
const before = digest(await main.run(small.feeds));
const keep = (): void => void busy.run(big.feeds).then(keep, () => undefined);
keep();
keep();
await new Promise((r) => setTimeout(r, 30)); // the busy thread inside a run
// The thread ends unasked (as after a native fault): terminated from outside, idle, so the terminate itself is clean.
await (doomed as unknown as { worker: Worker }).worker.terminate();
const next = await doomed.run(small.feeds).then(() => 'ran', (e: Error) => e.message);
process.stdout.write(`doomed call: ${next}\n`);
process.stdout.write(`main thread: ${digest(await main.run(small.feeds)) === before ? 'same values' : 'VALUES CHANGED'}\n`);
setInterval(() => undefined, 1000); // only the thread's failure ends this process
