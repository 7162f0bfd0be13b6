// Graphs in worker threads (lib/graph/graph-thread.ts, the roles' --graph-thread): the same bits as on the calling
// thread, the event loop free while a graph runs (on the calling thread it is held for the whole call), errors
// carried back by name, and a release that waits for the runs queued before it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { GRAPH_THREAD_AFTER_MS, GRAPH_THREAD_ENV, GraphSession, graphThreads, setGraphThreads, type Feeds, type Fetches } from '../../lib/graph/runtime.ts';
import { grpoModel, policyModel } from '../../lib/models/bundle.ts';
import { standardNormal } from '../../lib/data/random.ts';
import { applyGraphThread } from '../../cli/worker-options.ts';
import { policyCase } from '../helpers/policy-case.ts';

function digest(f: Fetches): string {
  const h = createHash('sha256');
  for (const k of Object.keys(f).sort()) h.update(`${k}:${f[k]!.dims.join('x')}:`).update(f[k]!.data);
  return h.digest('hex');
}


test('a graph in a worker thread gives the same bits as on the calling thread (policy and GRPO graphs, all outputs and a chosen one)', async () => {
  const { config, feeds } = policyCase(32, 4);
  const here = await GraphSession.create(policyModel(config), { thread: 'off' });
  const there = await GraphSession.create(policyModel(config), { thread: 'on' });
  assert.equal(here.threaded, false);
  assert.equal(there.threaded, true);
  assert.deepEqual(there.inputNames, here.inputNames);
  assert.deepEqual(there.outputNames, here.outputNames);
  const a = await here.run(feeds);
  const b = await there.run(feeds);
  assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
  assert.equal(digest(b), digest(a));
  // twice more, the second reusing the input buffer the first brought back
  assert.equal(digest(await there.run(feeds)), digest(a));
  const only = await there.run(feeds, ['action']);
  assert.deepEqual(Object.keys(only), ['action']);
  assert.equal(digest(only), digest({ action: a.action! }));
  // the GRPO graph's forward and backward: the learner's call
  const grpoHere = await GraphSession.create(grpoModel(config), { thread: 'off' });
  const grpoThere = await GraphSession.create(grpoModel(config), { thread: 'on' });
  const n = 4;
  const dims = feeds.image!.dims;
  const step: Feeds = {
    ...feeds,
    action: a.action!,
    logp_old: { data: a.logp!.data, dims: [n] },
    advantage: { data: standardNormal(n, 4), dims: [n] },
    ref_mean: { data: a.mean!.data, dims },
    clip_low: { data: Float32Array.of(0.2), dims: [] },
    clip_high: { data: Float32Array.of(0.28), dims: [] },
    dual_clip: { data: Float32Array.of(3), dims: [] },
    beta: { data: Float32Array.of(0.01), dims: [] },
  };
  delete step.noise;
  assert.equal(digest(await grpoThere.run(step)), digest(await grpoHere.run(step)));
  for (const s of [here, there, grpoHere, grpoThere]) await s.release();
});

/** Turns of the event loop (setImmediate callbacks) while `work` runs. */
async function loopTurnsDuring(work: () => Promise<unknown>): Promise<number> {
  let turns = 0;
  let running = true;
  const spin = () => {
    if (!running) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  await work();
  running = false;
  return turns;
}

test('the event loop keeps turning while a graph runs in a worker thread; on the calling thread it is held for the call', async () => {
  const { config, feeds } = policyCase(96, 8); // a call of ~0.1-0.5 s here
  const here = await GraphSession.create(policyModel(config), { thread: 'off' });
  const there = await GraphSession.create(policyModel(config), { thread: 'on' });
  await here.run(feeds); // warm both (the first run sets up the arena)
  await there.run(feeds);
  const held = await loopTurnsDuring(() => here.run(feeds));
  const free = await loopTurnsDuring(() => there.run(feeds));
  // On the calling thread the run is one synchronous call: the loop turns once before it and at most once after.
  assert.ok(held <= 2, `calling thread: ${held} turns of the loop during the run`);
  assert.ok(free > 20, `worker thread: only ${free} turns of the loop during the run`);
  await here.release();
  await there.release();
});

test('a worker thread carries errors back: a refused model at creation, a missing input at a run (and runs on after it)', async () => {
  await assert.rejects(GraphSession.create(Uint8Array.of(1, 2, 3), { thread: 'on' }), /protobuf|parse|model/i);
  const { config, feeds } = policyCase(32, 2);
  const s = await GraphSession.create(policyModel(config), { thread: 'on' });
  const { image: _image, ...noImage } = feeds;
  await assert.rejects(s.run(noImage), /image/);
  await assert.rejects(s.run({ ...feeds, image: { data: new Float32Array(5), dims: [2, 3, 32, 32] } }), /input image: 5 values do not fill shape \[2,3,32,32\]/);
  assert.ok((await s.run(feeds)).action, 'the session runs on after a failed call');
  await s.release();
  await assert.rejects(s.run(feeds), /run after release/);
});

test('a release waits for the runs queued before it, which complete', async () => {
  const { config, feeds } = policyCase(32, 2);
  const s = await GraphSession.create(policyModel(config), { thread: 'on' });
  const runs = [s.run(feeds), s.run(feeds), s.run(feeds)];
  await s.release();
  const done = await Promise.all(runs);
  assert.equal(new Set(done.map(digest)).size, 1);
});

test('graph threads: the process setting wins over the environment; bad values are refused by name', () => {
  const saved = process.env[GRAPH_THREAD_ENV];
  try {
    delete process.env[GRAPH_THREAD_ENV];
    assert.equal(graphThreads(), 'off', 'off unless asked (library users, tests)');
    process.env[GRAPH_THREAD_ENV] = 'yes';
    assert.throws(() => graphThreads(), new RegExp(`${GRAPH_THREAD_ENV}: expected one of on, off, auto, got 'yes'`));
    process.env[GRAPH_THREAD_ENV] = 'on';
    assert.equal(graphThreads(), 'on');
    setGraphThreads('off');
    assert.equal(graphThreads(), 'off');
    assert.throws(() => setGraphThreads('always' as 'on'), /--graph-thread: expected one of on, off, auto, got 'always'/);
  } finally {
    setGraphThreads(undefined);
    if (saved === undefined) delete process.env[GRAPH_THREAD_ENV];
    else process.env[GRAPH_THREAD_ENV] = saved;
  }
});

test(`auto: a session runs on the calling thread until a call holds the event loop over its bound (${GRAPH_THREAD_AFTER_MS} ms by default), then in a worker thread, with the same bits`, { timeout: 300_000 }, async () => {
  const short = policyCase(32, 2);
  const quick = await GraphSession.create(policyModel(short.config), { thread: 'auto' });
  const reference = await GraphSession.create(policyModel(short.config), { thread: 'off' });
  for (let i = 0; i < 3; i++) await quick.run(short.feeds);
  assert.equal(quick.threaded, false, 'short calls stay on the calling thread');
  assert.equal(digest(await quick.run(short.feeds)), digest(await reference.run(short.feeds)));
  // one thread per operator at 160 px, batch 32: a call of several hundred ms here, against a bound of 20 ms
  const long = policyCase(160, 32);
  const afterMs = 20;
  const slow = await GraphSession.create(policyModel(long.config), { thread: 'auto', intraOpThreads: 1, threadAfterMs: afterMs });
  const t0 = performance.now();
  const first = await slow.run(long.feeds);
  const firstMs = performance.now() - t0;
  assert.ok(firstMs > afterMs, `the first call must hold the loop over ${afterMs} ms to test anything; it took ${firstMs.toFixed(0)} ms`);
  const second = await slow.run(long.feeds); // may still be on the calling thread while the worker thread starts
  for (const t0 = Date.now(); Date.now() - t0 < 30_000 && !slow.threaded; ) await new Promise((r) => setTimeout(r, 100));
  assert.equal(slow.threaded, true, 'moved to a worker thread');
  const free = await loopTurnsDuring(() => slow.run(long.feeds));
  assert.ok(free > 20, `in the worker thread the loop turns during the call (${free} turns)`);
  const third = await slow.run(long.feeds);
  assert.equal(digest(second), digest(first));
  assert.equal(digest(third), digest(first), 'the same bits in the worker thread');
  for (const s of [quick, reference, slow]) await s.release();
});

test('a process that exits while a graph runs in a worker thread: process.exit aborts it (134), exitAfterGraphs exits with its code, a thread still starting included', { timeout: 120_000 }, async () => {
  const child = fileURLToPath(new URL('./graph-exit-child.ts', import.meta.url));
  const run = (mode: string) => spawnSync(process.execPath, ['--import', 'tsx', child, mode], { encoding: 'utf8', timeout: 60_000 });
  const plain = run('plain');
  assert.ok(plain.status === 134 || plain.signal === 'SIGABRT', `process.exit mid-run: status ${plain.status}, signal ${plain.signal} (the hazard exitAfterGraphs exists for; if onnxruntime stops aborting, this documents nothing any more)`);
  const after = run('after');
  assert.equal(after.status, 0, `exitAfterGraphs: status ${after.status}, signal ${after.signal}, stderr ${after.stderr.slice(-400)}`);
  // a thread still creating its session is waited for and released too: its code, not a SIGKILL (137)
  const starting = run('starting');
  assert.equal(starting.status, 7, `exitAfterGraphs while a thread starts: status ${starting.status}, signal ${starting.signal}, stderr ${starting.stderr.slice(-400)}`);
  assert.match(starting.stdout, /too late: graph thread of too late: not started, the process is exiting/);
});

test('exitNow as PID 1 of a PID namespace (no init: it cannot signal itself) still ends the process, with its code', { timeout: 180_000 }, async (t) => {
  const child = fileURLToPath(new URL('./graph-exit-child.ts', import.meta.url));
  // --kill-child: should the process hang (the old code), the timeout's SIGKILL to unshare ends it too
  // --user --map-root-user: a user namespace, so that a user without CAP_SYS_ADMIN may make the PID namespace
  const ns = ['--user', '--map-root-user', '--pid', '--fork', '--kill-child'];
  const probe = spawnSync('unshare', [...ns, 'true'], { encoding: 'utf8' });
  if (probe.status !== 0) return t.skip(`unshare --pid is not available here: ${probe.error?.message ?? probe.stderr.trim()}`);
  const r = spawnSync('unshare', [...ns, process.execPath, '--import', 'tsx', child, 'now'], { encoding: 'utf8', timeout: 90_000, killSignal: 'SIGKILL' });
  assert.equal(r.status, 9, `status ${r.status}, signal ${r.signal} (SIGKILL: it hung), stderr ${r.stderr.slice(-400)}`);
  assert.match(r.stderr, /neither signal ended the process/);
});

test('a second release waits for the same end; the roles\' --graph-thread: the flag, else the variable, else auto; a bad variable refused by name', async () => {
  const { config, feeds } = policyCase(32, 2);
  const s = await GraphSession.create(policyModel(config), { thread: 'on' });
  const run = s.run(feeds);
  const [first, second] = [s.release(), s.release()];
  await second;
  assert.ok((await run).action, 'the run queued before the release completed');
  await first;
  const saved = process.env[GRAPH_THREAD_ENV];
  try {
    delete process.env[GRAPH_THREAD_ENV];
    applyGraphThread(undefined);
    assert.equal(graphThreads(), 'auto', 'auto by default in a role');
    applyGraphThread('on');
    assert.equal(graphThreads(), 'on');
    setGraphThreads(undefined);
    process.env[GRAPH_THREAD_ENV] = 'off';
    applyGraphThread(undefined);
    assert.equal(graphThreads(), 'off', 'the variable, when the flag is not given');
    process.env[GRAPH_THREAD_ENV] = '1';
    assert.throws(() => applyGraphThread(undefined), new RegExp(`${GRAPH_THREAD_ENV}: expected one of on, off, auto, got '1'`));
  } finally {
    setGraphThreads(undefined);
    if (saved === undefined) delete process.env[GRAPH_THREAD_ENV];
    else process.env[GRAPH_THREAD_ENV] = saved;
  }
});
