// Where a follower's CPU goes on this kind of machine (docs/performance.md "Checkpoint broadcast"): two probes
// behind the broadcast benchmark's figures, each printing CPU time (user + system) per megabyte.
//   node --import tsx bench/broadcast-probe.ts memory    in one process: a fresh 1 MiB buffer written once, the
//                                                        same buffer reused, sha256, decodeCheckpoint of 1.2 MB
//   node --import tsx bench/broadcast-probe.ts receive   4 receiver processes taking 1.2 MB per round: over core
//                                                        NATS (nats.js, 1 MiB and 64 KB messages, nothing done with
//                                                        the bytes; two receivers with nats-payload.ts's presizing)
//                                                        and over loopback TCP (nothing done, and sha256)
//   node --import tsx bench/broadcast-probe.ts server-allocs   nats-server's allocation sites (Go's pprof, `-profile`)
//                                                        over PROBE_REPS 1.2 MB versions put to 4 watching stores
//                                                        (in this process), pruned to 2 after each unless
//                                                        PROBE_NO_PRUNE=1 (docs/performance-history/broadcast.md, round 11)
//   node --import tsx bench/broadcast-probe.ts cold      in one process, one call every 40 ms as a follower makes
//                                                        them (one per checkpoint, so the code never gets hot): the
//                                                        CPU of parsing an announcement (JSON, then AnnouncementSchema
//                                                        or checkAnnouncement), decodeCheckpoint of 1.2 MB (views),
//                                                        sha256 of it; medians of PROBE_REPS after 5 (round 27)
// PROBE_REPS (default 10) rounds per contender.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as natsConnect } from 'nats';
import { decodeCheckpoint, encodeCheckpoint, type TensorMap } from '../lib/checkpoint/index.ts';
import { freePort } from '../lib/local/local-run.ts';
import { AnnouncementSchema, CHECKPOINT_MAX_PAYLOAD, CheckpointStore, checkAnnouncement, connectNats, sha256Digest, spawnNatsServer } from '../lib/transport/index.ts';
import { presizePayloads } from '../lib/transport/nats-payload.ts';

const REPS = Number(process.env.PROBE_REPS ?? 10);
/** glibc malloc settings that keep freed memory for reuse instead of returning it to the kernel. */
const MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=134217728:glibc.malloc.trim_threshold=1073741824';
const SIZE = 1.2e6;
const SELF = fileURLToPath(import.meta.url);
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function perMb(label: string, mb: number, f: () => void): void {
  const n = 100;
  f();
  const c0 = cpuMs();
  for (let i = 0; i < n; i++) f();
  console.log(`  ${label}: ${((cpuMs() - c0) / n / mb).toFixed(2)} ms CPU per MB`);
}

function memory(): void {
  const src = new Uint8Array(1 << 20).fill(3);
  const reused = new Uint8Array(1 << 20);
  const params: TensorMap = new Map([['w', { shape: [SIZE / 4], data: new Float32Array(SIZE / 4).fill(0.5) }]]);
  const enc = encodeCheckpoint({ meta: { runId: 'probe', version: 1, step: 1, lastBatchId: null, configHash: 'probe' }, params });
  const shapes = new Map([['w', [SIZE / 4]]]);
  console.log('memory (one process):');
  perMb('fresh 1 MiB Uint8Array, written once', 1.048576, () => new Uint8Array(1 << 20).set(src));
  perMb('the same 1 MiB buffer, written again', 1.048576, () => reused.set(src));
  perMb('sha256 (Node)', 1.048576, () => createHash('sha256').update(src).digest());
  perMb('decodeCheckpoint (digest given)', enc.bytes.length / 1e6, () => decodeCheckpoint(enc.bytes, { expectedShapes: shapes, computedDigest: enc.digest }));
}

/** A follower's per-checkpoint JavaScript, run as rarely as a follower runs it (cold), CPU per call. */
async function cold(): Promise<void> {
  const n = Math.round(SIZE / 4);
  const params: TensorMap = new Map([['layer0.weight', { shape: [n], data: new Float32Array(n).fill(0.5) }]]);
  const enc = encodeCheckpoint({ meta: { runId: 'probe', version: 3, step: 3, lastBatchId: null, configHash: 'probe' }, params });
  const shapes = new Map([['layer0.weight', [n]]]);
  const ann = { run_id: 'probe', version: 12, name: 'v0000000012', digest: `sha256:${enc.digest}`, size: enc.bytes.length, meta: { step: 12, last_batch_id: null, config_hash: 'probe' }, published_unix_ms: Date.now() };
  const raw = new TextEncoder().encode(JSON.stringify(ann));
  const steps: Array<[string, () => unknown]> = [
    ['JSON.parse of the announcement', () => JSON.parse(new TextDecoder().decode(raw))],
    ['AnnouncementSchema.safeParse (zod)', () => AnnouncementSchema.safeParse(JSON.parse(new TextDecoder().decode(raw)))],
    ['checkAnnouncement', () => checkAnnouncement(JSON.parse(new TextDecoder().decode(raw)))],
    ['decodeCheckpoint, 1.2 MB, views', () => decodeCheckpoint(enc.bytes, { expectedDigest: enc.digest, computedDigest: enc.digest, expectedShapes: shapes, views: true })],
    ['sha256 of 1.2 MB', () => createHash('sha256').update(enc.bytes).digest()],
  ];
  const ms = steps.map((): number[] => []);
  for (let i = 0; i < REPS + 5; i++) {
    await new Promise((r) => setTimeout(r, 40));
    steps.forEach(([, f], k) => {
      const c = cpuMs();
      f();
      if (i >= 5) ms[k]!.push(cpuMs() - c);
    });
  }
  console.log('cold (one call every 40 ms, CPU per call, median; the parses include JSON.parse):');
  steps.forEach(([label], k) => console.log(`  ${label}: ${[...ms[k]!].sort((a, b) => a - b)[ms[k]!.length >> 1]!.toFixed(3)} ms`));
}

interface Receiver {
  proc: ChildProcess;
  rounds: number;
  cpu: number;
  cpu0: number;
  wake?: () => void;
}

function startReceiver(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Receiver> {
  const proc = fork(SELF, ['child', ...args], { execArgv: ['--import', 'tsx'], env });
  return new Promise((resolve) => {
    const r: Receiver = { proc, rounds: 0, cpu: 0, cpu0: 0 };
    proc.on('message', (m: { ready?: boolean; rounds?: number; cpu: number }) => {
      r.cpu = m.cpu;
      if (m.ready) resolve(r);
      if (m.rounds !== undefined) {
        r.rounds = m.rounds;
        if (m.rounds === 1) r.cpu0 = m.cpu;
        r.wake?.();
      }
    });
  });
}

async function rounds(label: string, rs: Receiver[], send: () => void): Promise<void> {
  for (let k = 1; k <= REPS + 1; k++) {
    send();
    await Promise.all(rs.map((r) => new Promise<void>((res) => {
      const check = () => (r.rounds >= k ? res() : (r.wake = check));
      check();
    })));
  }
  // the first round is a warm-up
  const per = rs.map((r) => (r.cpu - r.cpu0) / REPS / (SIZE / 1e6));
  console.log(`  ${label}: ${per.map((x) => x.toFixed(1)).join(', ')} ms CPU per MB (each receiver)`);
  for (const r of rs) r.proc.kill();
}

async function receive(only?: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'probe-'));
  const nats = await spawnNatsServer({ port: await freePort(), storeDir: dir });
  const bytes = Buffer.alloc(SIZE, 7);
  console.log('receive (4 receiver processes, 1.2 MB per round):');
  try {
    for (const chunk of only === 'malloc' ? [] : [1 << 20, 65_000]) {
      // two receivers as nats.js is, two with the payload buffer sized once (lib/transport/nats-payload.ts), side by side
      const rs = await Promise.all(['none', 'none', 'presize', 'presize'].map((w) => startReceiver(['nats', nats.url, w])));
      const nc = await natsConnect({ servers: nats.url });
      await rounds(`core NATS, ${chunk} B messages, nothing done (2 as nats.js is, 2 presized)`, rs, () => {
        for (let o = 0; o < SIZE; o += chunk) nc.publish('probe', bytes.subarray(o, Math.min(SIZE, o + chunk)));
      });
      await nc.close();
    }
    if (only === 'malloc') {
      // the follower's own work on top (a fresh buffer per checkpoint, the chunks copied in and hashed), with and
      // without glibc's malloc keeping freed memory (no page faults on reuse), side by side
      const tunables = { ...process.env, GLIBC_TUNABLES: MALLOC_TUNABLES };
      const rs = await Promise.all([process.env, process.env, tunables, tunables].map((env) => startReceiver(['nats', nats.url, 'assemble'], env)));
      const nc = await natsConnect({ servers: nats.url });
      await rounds(`core NATS, 1 MiB messages, presized, assembled + sha256 (2 plain, 2 with GLIBC_TUNABLES=${MALLOC_TUNABLES})`, rs, () => {
        for (let o = 0; o < SIZE; o += 1 << 20) nc.publish('probe', bytes.subarray(o, Math.min(SIZE, o + (1 << 20))));
      });
      await nc.close();
    }
    for (const hash of only === 'nats' || only === 'malloc' ? [] : [false, true]) {
      const sockets: Socket[] = [];
      const server = createServer((s) => sockets.push(s.setNoDelay(true)));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = String((server.address() as { port: number }).port);
      const rs = await Promise.all([0, 1, 2, 3].map(() => startReceiver(['tcp', port, hash ? 'hash' : 'none'])));
      while (sockets.length < rs.length) await new Promise((r) => setTimeout(r, 10));
      await rounds(`loopback TCP, ${hash ? 'sha256' : 'nothing done'}`, rs, () => {
        for (const s of sockets) s.write(bytes);
      });
      server.close();
      for (const s of sockets) s.destroy();
    }
  } finally {
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function child(mode: string, target: string, what?: string): Promise<void> {
  let got = 0;
  let done = 0;
  const report = (ready = false) => process.send!({ ...(ready ? { ready } : { rounds: done }), cpu: cpuMs() });
  const take = (n: number) => {
    for (got += n; got >= SIZE; got -= SIZE) {
      done++;
      report();
    }
  };
  if (mode === 'nats') {
    const nc = await natsConnect({ servers: target });
    if ((what === 'presize' || what === 'assemble') && !presizePayloads(nc)) throw new Error('presizePayloads: nats.js internals not found');
    let buf = Buffer.alloc(0);
    let at = 0;
    let h = createHash('sha256');
    nc.subscribe('probe', {
      callback: (_e, m) => {
        if (what === 'assemble') {
          if (at === 0) {
            buf = Buffer.allocUnsafe(SIZE);
            h = createHash('sha256');
          }
          buf.set(m.data, at);
          h.update(m.data);
          at += m.data.length;
          if (at >= SIZE) {
            at = 0;
            h.digest();
          }
        }
        take(m.data.length);
      },
    });
    await nc.flush();
    report(true);
  } else {
    let h = createHash('sha256');
    const sock = tcpConnect(Number(target), '127.0.0.1');
    sock.on('data', (d: Buffer) => {
      if (what === 'hash') h.update(d);
      const before = done;
      take(d.length);
      if (what === 'hash' && done > before) {
        h.digest();
        h = createHash('sha256');
      }
    });
    sock.once('connect', () => report(true));
  }
}

/** nats-server's allocations (MB, by call stack) while 1.2 MB checkpoints are put to 4 watching stores. */
async function serverAllocs(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'probe-allocs-'));
  const prof = await freePort();
  const nats = await spawnNatsServer({ port: await freePort(), storeDir: dir, maxPayload: CHECKPOINT_MAX_PAYLOAD, extraArgs: ['-profile', String(prof)] });
  try {
    const nc = await connectNats({ url: nats.url, name: 'probe-learner' });
    const store = await CheckpointStore.open(nc, { runId: 'probe' });
    const followers = await Promise.all(Array.from({ length: 4 }, async (_, i) => {
      const c = await connectNats({ url: nats.url, name: `probe-follower-${i}` });
      const s = await CheckpointStore.open(c, { runId: 'probe' });
      const w = await s.watch({});
      return { c, s, w, it: w[Symbol.asyncIterator]() };
    }));
    for (let v = 1; v <= REPS; v++) {
      const bytes = new Uint8Array(SIZE).map(() => (Math.random() * 256) | 0);
      await store.put(v, bytes, sha256Digest(bytes));
      await Promise.all(followers.map(async (f) => {
        for (let a = (await f.it.next()).value; ; a = (await f.it.next()).value) {
          if (a.version < v) continue;
          (await f.s.get(a.version, { expectDigest: a.digest })).release?.();
          break;
        }
      }));
      if (process.env.PROBE_NO_PRUNE !== '1') await store.prune(2);
    }
    // debug=1: one record per call stack, "<live n>: <live bytes> [<allocated n>: <allocated bytes>] @ ...", then
    // its frames as "#\t<pc>\t<function>+<offset>\t<file:line>"; sampled about once per MiB allocated
    const text = await (await fetch(`http://127.0.0.1:${prof}/debug/pprof/allocs?debug=1`)).text();
    const rows = text.split(/\n(?=\d+: \d+ \[)/).slice(1).map((r) => ({
      mb: Number(/\[\d+: (\d+)\]/.exec(r)?.[1] ?? 0) / 1e6,
      stack: r.split('\n').filter((l) => l.startsWith('#')).map((l) => (l.split('\t')[2] ?? '').replace(/^.*\/server\./, '')).slice(0, 5).join(' < '),
    })).sort((a, b) => b.mb - a.mb);
    console.log(`nats-server allocations over ${REPS} versions of 1.2 MB, 4 followers${process.env.PROBE_NO_PRUNE === '1' ? '' : ', pruned to 2 after each'}: ${rows.reduce((t, r) => t + r.mb, 0).toFixed(1)} MB`);
    for (const r of rows.slice(0, 8)) console.log(`  ${r.mb.toFixed(1)} MB  ${r.stack}`);
    for (const f of followers) {
      await f.w.stop();
      await f.c.close();
    }
    await nc.close();
  } finally {
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'memory') memory();
else if (mode === 'cold') await cold();
else if (mode === 'server-allocs') await serverAllocs();
else if (mode === 'receive') await receive(process.env.PROBE_ONLY);
else if (mode === 'child') await child(rest[0]!, rest[1]!, rest[2]);
else throw new Error(`bench/broadcast-probe.ts: mode must be memory, receive, server-allocs or cold, got ${JSON.stringify(mode)}`);
