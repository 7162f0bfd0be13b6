// Child processes of bench/broadcast.bench.ts, one follower each (started with fork, so they report over IPC):
//   nats <natsUrl> <runId> <shapes.json>   follows the run's announcements as a rollout worker does: fetch,
//                                          verify and decode each (tensors as views of the fetched bytes, as
//                                          the rollout worker's; BENCH_CHILD_COPY=1: copies); sends { version };
//                                          holds one version at a time and releases the one it replaces, as the
//                                          rollout worker's policy follower does (fetchCheckpoint `reuse`)
//   tcp <port>                             reads length-prefixed frames from a loopback TCP socket and hashes
//                                          each with Node's sha256; sends { version: frame index, digest };
//                                          BENCH_TCP_HOLD=1: also copies each frame into a buffer of its own, as
//                                          a follower holds the checkpoint it uses (same end event)
// Every report carries the process's CPU time so far (ms) and its minor page faults, so the bench can print both
// per round and arm.
import { createHash } from 'node:crypto';
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { connectNats, CheckpointStore, resolveNatsAuth } from '../lib/transport/index.ts';
import { fetchCheckpoint } from '../lib/worker/checkpoints.ts';
import { trace, traceRole } from '../lib/log/trace.ts';

const [mode, ...args] = process.argv.slice(2);
const send = (m: object) => process.send!(m);
/** This process's CPU time so far (user + system, every thread), ms: reported with each version. */
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
/** This process's minor page faults so far (first touches of memory): reported beside the CPU time. */
const faults = () => process.resourceUsage().minorPageFault;
traceRole(`follower-${mode}-${process.pid}`);
// BENCH_CHILD_GC=1: the garbage collections (kind, wall ms) since the previous version are reported with each, and
// printed by the bench (the observer's entries arrive asynchronously: one may be reported with the next version)
const gcs: string[] = [];
const GC_KINDS: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weak' };
if (process.env.BENCH_CHILD_GC === '1') {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push(`${GC_KINDS[(e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0] ?? '?'} ${e.duration.toFixed(1)}`);
  }).observe({ entryTypes: ['gc'] });
}
const gcSince = () => gcs.splice(0).join(', ');
// stopped with SIGTERM: exit normally, so that --cpu-prof (BENCH_CHILD_ARGS) writes its profile
process.once('SIGTERM', () => process.exit(0));

if (mode === 'nats') {
  const [url, runId, shapesFile] = args as [string, string, string];
  const shapes = new Map<string, number[]>(JSON.parse(readFileSync(shapesFile, 'utf8')));
  // the users arm's rollout credentials come through the environment, as a rollout worker's do (none: an open server)
  const nc = await connectNats({ url, name: 'bench-follower', ...resolveNatsAuth() });
  const store = await CheckpointStore.open(nc, { runId });
  const watch = await store.watch({});
  process.once('disconnect', () => void watch.stop());
  send({ ready: true, cpu: cpuMs(), faults: faults() });
  let held: { release(): void } | undefined;
  for await (const ann of watch) {
    const ck = await fetchCheckpoint(store, ann, { runId, shapes, views: process.env.BENCH_CHILD_COPY !== '1', reuse: true });
    // the policy follower's swap: the replaced version is released (no policy call reads it here)
    held?.release();
    held = ck;
    trace('decoded', { version: ann.version });
    send({ version: ann.version, digest: ck.digest, cpu: cpuMs(), faults: faults(), ...(process.env.BENCH_CHILD_GC === '1' ? { gc: gcSince() } : {}) });
  }
  await nc.close();
} else if (mode === 'tcp') {
  const port = Number(args[0]);
  const sock = connect(port, '127.0.0.1');
  process.once('disconnect', () => sock.destroy());
  sock.once('connect', () => send({ ready: true, cpu: cpuMs(), faults: faults() }));
  sock.setNoDelay(true);
  // frames: an 8-byte little-endian length, then that many bytes, hashed as they arrive
  let head = Buffer.alloc(0);
  let left = -1;
  let hash = createHash('sha256');
  let frame = 0;
  const hold = process.env.BENCH_TCP_HOLD === '1';
  let held = Buffer.alloc(0);
  let at = 0;
  sock.on('data', (chunk: Buffer) => {
    let d = chunk;
    while (d.length > 0) {
      if (left < 0) {
        const take = Math.min(8 - head.length, d.length);
        head = Buffer.concat([head, d.subarray(0, take)]);
        d = d.subarray(take);
        if (head.length < 8) return;
        left = Number(head.readBigUInt64LE(0));
        head = Buffer.alloc(0);
        hash = createHash('sha256');
        if (hold) {
          held = Buffer.allocUnsafeSlow(left);
          at = 0;
        }
      }
      const take = Math.min(left, d.length);
      hash.update(d.subarray(0, take));
      if (hold) at += d.copy(held, at, 0, take);
      d = d.subarray(take);
      left -= take;
      if (left === 0) {
        left = -1;
        send({ version: ++frame, digest: hash.digest('hex'), cpu: cpuMs(), faults: faults() });
      }
    }
  });
} else {
  throw new Error(`bench/broadcast-child.ts: unknown mode ${mode}`);
}
