// Checkpoint broadcast (issue #15): from the learner's put until 4 followers, each in its own process, hold the
// checkpoint (fetched, sha256-verified, decoded, shapes checked), against loopback TCP moving and hashing the
// same bytes to 4 receiver processes (the sender hashes once, each receiver hashes what it reads). Measured
// side by side in one run, interleaved, medians; the ratio is TCP time / broadcast time (target >= 0.5). Beside the
// wall times it prints the CPU time per round of each arm's processes (means over the rounds): the sender (this
// process: the learner's put, or the TCP writes), the 4 receivers together, and nats-server; and their minor page
// faults per round (first touches of fresh memory, the dominant cost of receiving on this kind of VM).
//   BENCH_BROADCAST_REPS (default 5), BENCH_BROADCAST_SIZES (MB, default "1.2,50"),
//   BENCH_BROADCAST_WARMUP (default 1): versions published to every arm (and frames sent to the TCP receivers) before
//   the measured rounds, not measured: the checkpoint a follower finds when it joins a run (a follower lives for
//   thousands of versions; 0 measures its very first ones, as before round 10),
//   BENCH_BROADCAST_BEFORE (a checkout of other code, e.g. a worktree of main with node_modules: a second broadcast
//   arm, "before", with its CheckpointStore and broadcast-child.ts, interleaved round by round with this one),
//   BENCH_BROADCAST_BEFORE_MAX_PAYLOAD (bytes: the "before" arm's nats-server max_payload; default nats-server's 1 MiB;
//   each arm has its own server, this checkout's at CHECKPOINT_MAX_PAYLOAD),
//   BENCH_TCP_HOLD=1 (the TCP receivers also copy each frame into a buffer of their own, as a follower holds what it
//   received: the same end event; default off, the baseline of the issue's target),
//   BENCH_CHILD_ARGS (extra node flags for the follower processes, e.g. "--cpu-prof --cpu-prof-dir=DIR"),
//   BENCH_BROADCAST_PER_ROUND=1 (each measured round's time, CPU and faults by process group as well),
//   BENCH_BROADCAST_RUN_VERSIONS=K (the run has K versions before the followers start: late joiners; below),
//   BENCH_CHILD_GC=1 (each follower prints its garbage collections per version),
//   RECOVERY_GRPO_TRACE=FILE (lib/log/trace.ts: the put's, the followers' and the watch's steps, one JSON line each),
//   BENCH_BROADCAST_STORAGE=memory (a probe, round 20: this checkout's checkpoint bucket and announcement stream in
//   JetStream memory storage instead of the product's file storage),
//   BENCH_BROADCAST_PRUNE=N (a probe, round 20: this checkout's arm prunes to 2 after every Nth round, 0: never,
//   instead of after each round as the learner does; "before" still prunes after each),
//   BENCH_BROADCAST_KEEP=K (a probe, round 21: this checkout's arm prunes to K instead of 2; the learner's default is 5),
//   BENCH_BROADCAST_PRUNE_MODE=sealed (a probe, round 21: this checkout's arm deletes an old version by its stream
//   sequences once 8 MiB of newer versions follow it, out of the file-store block being written; sealed-purge: the same,
//   its chunk and info subjects purged instead; seq: by its stream sequences as soon as it is not among the newest KEEP)
//   BENCH_BROADCAST_USERS=1 (round 23): a third arm, "users", this checkout's code on a nats-server started with the local
//   run's nats.conf (lib/local/nats-config.ts: one user per role with its permissions), the learner connected as the
//   learner and the followers as rollout workers, as in a run: what the NATS authorization costs the broadcast
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeCheckpoint, type TensorMap } from '../lib/checkpoint/index.ts';
import { trace, traceRole } from '../lib/log/trace.ts';
import { freePort } from '../lib/local/local-run.ts';
import { writeLocalNatsUsers, type LocalNatsUsers } from '../lib/local/nats-config.ts';
import { procRunMs } from './proc-cpu.ts';
import { readProcStat } from '../lib/local/proc-stat.ts';
import { CHECKPOINT_MAX_PAYLOAD, CheckpointStore, connectNats, spawnNatsServer } from '../lib/transport/index.ts';

const FOLLOWERS = 4;
const REPS = Number(process.env.BENCH_BROADCAST_REPS ?? 5);
const WARMUP = Number(process.env.BENCH_BROADCAST_WARMUP ?? 1);
// BENCH_BROADCAST_PER_ROUND=1: each measured round's time, CPU and faults by process group as well (the first rounds
// after a join are the slow ones: docs/performance-history/broadcast.md, round 14)
const PER_ROUND = process.env.BENCH_BROADCAST_PER_ROUND === '1';
// BENCH_BROADCAST_RUN_VERSIONS=K (default 0, the issue's figure): the run has published K versions (put, pruned to 2)
// before the followers start, so they join a run in progress, as a follower that is restarted or added does: each
// fetches version K from the store (a late joiner), then the WARMUP and measured versions follow (K+1, ...). K >= 6
// takes the measured rounds past nats-server's growth in a run's first ~6 versions at 1.2 MB (round 14)
const RUN_VERSIONS = Number(process.env.BENCH_BROADCAST_RUN_VERSIONS ?? 0);
// BENCH_BROADCAST_STORAGE=memory (a probe): this checkout's checkpoint bucket and announcement stream in that
// JetStream storage (default: the product's, file)
const STORAGE = process.env.BENCH_BROADCAST_STORAGE === 'memory' ? ('memory' as const) : undefined;
// BENCH_BROADCAST_PRUNE=N (a probe): this checkout's arm prunes to 2 after every Nth round only, 0: never (default 1,
// every round, as the learner does): the file store's cost of deleting (docs/performance-history/broadcast.md, "Round 20: broadcast20")
const PRUNE_EVERY = Number(process.env.BENCH_BROADCAST_PRUNE ?? 1);
// BENCH_BROADCAST_KEEP=K (a probe, round 21): this checkout's arm prunes to K versions instead of 2 ("before" keeps 2);
// the learner keeps max(nats.keepCheckpoints, grpo.maxStaleness + 1), 5 by default (learner/index.ts checkpointsToKeep)
const KEEP = Number(process.env.BENCH_BROADCAST_KEEP ?? 2);
if (!Number.isInteger(KEEP) || KEEP < 1) throw new Error(`BENCH_BROADCAST_KEEP=${process.env.BENCH_BROADCAST_KEEP}: a whole number of versions >= 1`);
// BENCH_BROADCAST_PRUNE_MODE=sealed (a probe, round 21): this checkout's arm deletes a version by its stream sequences
// (chunks and info) once 8 MiB + 64 KiB of newer stream bytes follow it (so it lies in a file-store block no longer
// written), never a version among the newest KEEP
const PRUNE_MODE = process.env.BENCH_BROADCAST_PRUNE_MODE ?? 'delete';
if (!['delete', 'sealed', 'sealed-purge', 'seq'].includes(PRUNE_MODE)) throw new Error(`BENCH_BROADCAST_PRUNE_MODE=${PRUNE_MODE}: delete, sealed, sealed-purge or seq`);
// BENCH_BROADCAST_USERS=1: the "users" arm (the product's NATS users and permissions) beside the open one(s)
const USERS = process.env.BENCH_BROADCAST_USERS === '1';
const SIZES_MB = (process.env.BENCH_BROADCAST_SIZES ?? '1.2,50').split(',').map(Number);
const CHILD = fileURLToPath(new URL('./broadcast-child.ts', import.meta.url));

interface Follower {
  proc: ChildProcess;
  /** Resolves when the follower reports `version`. */
  reached(version: number): Promise<string>;
  /** The follower's CPU time (ms) at its last report. */
  cpu(): number;
  /** Its minor page faults at its last report (NaN when its child does not report them: an older checkout's). */
  faults(): number;
}

/** `env`: extra environment for the follower (the "users" arm's rollout credentials, read by the child). */
function startFollower(child: string, args: string[], env: Record<string, string> = {}): Promise<Follower> {
  const extra = process.env.BENCH_CHILD_ARGS?.split(' ').filter(Boolean) ?? [];
  const proc = fork(child, args, { execArgv: ['--import', 'tsx', ...extra], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } });
  const seen = new Map<number, string>();
  const waiting = new Map<number, (d: string) => void>();
  let cpu = 0;
  let faults = NaN;
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`broadcast follower ${args[0]} exited with ${code}`)));
    proc.on('message', (m: { ready?: boolean; version?: number; digest?: string; cpu?: number; faults?: number; gc?: string }) => {
      if (m.gc !== undefined) console.log(`      follower ${proc.pid} v${m.version}: cpu ${m.cpu?.toFixed(0)} faults ${m.faults} gc [${m.gc}]`);
      if (m.cpu !== undefined) cpu = m.cpu;
      if (m.faults !== undefined) faults = m.faults;
      if (m.ready) resolve({ proc, cpu: () => cpu, faults: () => faults, reached: (v) => (seen.has(v) ? Promise.resolve(seen.get(v)!) : new Promise((r) => waiting.set(v, r))) });
      if (m.version !== undefined) {
        seen.set(m.version, m.digest!);
        waiting.get(m.version)?.(m.digest!);
      }
    });
  });
}

/** CPU time (ms) of this process so far. */
function ownCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Minor page faults of this process so far: first touches of memory, which cost ~1 µs each on this kind of VM. */
function ownFaults(): number {
  return process.resourceUsage().minorPageFault;
}

/**
 * CPU time (ms) of another process so far, NaN once it is gone: its threads' run time to the nanosecond (round 28;
 * before, /proc/<pid>/stat's clock ticks of 10 ms, meaningful only summed over rounds).
 */
function procCpu(pid: number): number {
  try {
    return procRunMs(pid);
  } catch {
    return NaN;
  }
}

/** Minor page faults of another process so far, from /proc. */
function procFaults(pid: number): number {
  return readProcStat(pid)?.minorFaults ?? NaN;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

function stopAll(fs: Follower[]): void {
  for (const f of fs) if (f.proc.exitCode === null) f.proc.kill('SIGTERM');
}

/** Parameters totalling about `mb` MB of float32, in tensors of at most 1 M values (like a network's layers). */
function syntheticParams(mb: number): TensorMap {
  const values = Math.round((mb * 1e6) / 4);
  const params: TensorMap = new Map();
  let seed = 1;
  for (let i = 0, left = values; left > 0; i++) {
    const n = Math.min(left, 1 << 20);
    const data = new Float32Array(n);
    for (let j = 0; j < n; j++) data[j] = ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
    params.set(`layer${i}.weight`, { shape: [n], data });
    left -= n;
  }
  return params;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One broadcast arm: a learner store and its followers, from this checkout or from BENCH_BROADCAST_BEFORE's. */
interface Arm {
  label: string;
  runId: string;
  store: { put(version: number, bytes: Uint8Array, digest: string): Promise<unknown>; prune(keepLast: number): Promise<unknown> };
  close(): Promise<void>;
  nc: import('nats').NatsConnection;
  /** BENCH_BROADCAST_PRUNE_MODE=sealed: each stored version's stream sequences and the stream's bytes written at its end. */
  seqs: Map<number, { first: number; last: number; end: number }>;
  deletedBytes: number;
  followers: Follower[];
  /** This arm's nats-server. */
  serverPid: number;
  ms: number[];
  /** CPU ms summed over the rounds: learner (this process), followers, nats-server. */
  cpu: number[];
  /** Minor page faults summed over the rounds, the same processes. */
  faults: number[];
  /** Per measured round (BENCH_BROADCAST_PER_ROUND=1): CPU ms and faults of learner, followers, nats-server. */
  rounds: string[];
}

export async function run(): Promise<void> {
  traceRole('learner');
  const dir = mkdtempSync(join(tmpdir(), 'bench-broadcast-'));
  // each broadcast arm has its own nats-server (so its CPU is the arm's): this checkout's with the max_payload the
  // project configures (CHECKPOINT_MAX_PAYLOAD), "before"'s with BENCH_BROADCAST_BEFORE_MAX_PAYLOAD (bytes; default
  // nats-server's own 1 MiB, what round 6 ran with)
  const beforeMax = Number(process.env.BENCH_BROADCAST_BEFORE_MAX_PAYLOAD ?? 0) || undefined;
  const servers = new Map<string, Awaited<ReturnType<typeof spawnNatsServer>>>();
  const serverFor = async (label: string, maxPayload: number | undefined, users: LocalNatsUsers | undefined) => {
    // BENCH_NATS_ENV_<LABEL>="K=V K=V" (probes): extra environment for that arm's nats-server, e.g. Go runtime settings
    const env = Object.fromEntries((process.env[`BENCH_NATS_ENV_${label.toUpperCase()}`] ?? '').split(' ').filter(Boolean).map((kv): [string, string] => {
      const i = kv.indexOf('=');
      if (i < 1) throw new Error(`BENCH_NATS_ENV_${label.toUpperCase()}: ${JSON.stringify(kv)} is not NAME=VALUE`);
      return [kv.slice(0, i), kv.slice(i + 1)]; // a value may hold '=' itself (GODEBUG=a=1)
    }));
    // BENCH_NATS_BINARY_<LABEL>=<path>: that arm's nats-server binary (e.g. the version a deployment runs)
    const binary = process.env[`BENCH_NATS_BINARY_${label.toUpperCase()}`];
    // the users arm's max_payload is in its nats.conf (the local run's, CHECKPOINT_MAX_PAYLOAD)
    const config = users ? { extraArgs: ['-c', users.configFile] } : maxPayload ? { maxPayload } : {};
    const s = await spawnNatsServer({ port: await freePort(), storeDir: join(dir, `nats-${label}`), env, ...(binary ? { binary } : {}), ...config });
    servers.set(label, s);
    return s;
  };
  const tcp = createServer();
  const sockets: Socket[] = [];
  tcp.on('connection', (s) => {
    s.setNoDelay(true);
    sockets.push(s);
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const tcpPort = (tcp.address() as { port: number }).port;
  let all: Follower[] = [];
  // BENCH_BROADCAST_USERS: the local run's nats.conf and credentials, made once for the users arm's server
  let usersConf: LocalNatsUsers | undefined;
  // BENCH_BROADCAST_BEFORE=<checkout>: a second broadcast arm with that checkout's CheckpointStore and
  // broadcast-child.ts (its own node_modules), interleaved with this one round by round
  const beforeDir = process.env.BENCH_BROADCAST_BEFORE;
  const before = beforeDir
    ? { store: (await import(join(beforeDir, 'lib/transport/index.ts'))) as { CheckpointStore: typeof CheckpointStore; connectNats: typeof connectNats }, child: join(beforeDir, 'bench/broadcast-child.ts') }
    : undefined;
  console.log(`checkpoint broadcast to ${FOLLOWERS} followers in separate processes, ${REPS} interleaved rounds after ${WARMUP} unmeasured (a follower's join), medians${before ? ` (arm "before": ${beforeDir})` : ''}:`);
  try {
    for (const mb of SIZES_MB) {
      const params = syntheticParams(mb);
      const shapesFile = join(dir, `bench-shapes-${mb}.json`);
      writeFileSync(shapesFile, JSON.stringify([...params].map(([k, t]) => [k, t.shape])));
      const arms: Arm[] = [];
      for (const [label, lib, child, maxPayload, users] of [
        ...(before ? [['before', before.store, before.child, beforeMax, undefined] as const] : []),
        [before ? 'after' : 'broadcast', { CheckpointStore, connectNats }, CHILD, CHECKPOINT_MAX_PAYLOAD, undefined] as const,
        ...(USERS ? [['users', { CheckpointStore, connectNats }, CHILD, CHECKPOINT_MAX_PAYLOAD, usersConf ??= writeLocalNatsUsers(dir)] as const] : []),
      ]) {
        const nats = servers.get(label) ?? (await serverFor(label, maxPayload, users));
        const runId = `bench-${label}-${String(mb).replace('.', '_')}`;
        const nc = await lib.connectNats({ url: nats.url, name: `bench-learner-${label}`, ...(users ? users.credentials('learner') : {}) });
        const store = await lib.CheckpointStore.open(nc, { runId, ...(label !== 'before' && STORAGE ? { storage: STORAGE } : {}) });
        // BENCH_BROADCAST_RUN_VERSIONS: the run's first versions, published (and pruned) before the followers start
        for (let v = 1; v <= RUN_VERSIONS; v++) {
          const enc = encodeCheckpoint({ meta: { runId, version: v, step: v, lastBatchId: null, configHash: 'bench' }, params });
          await store.put(v, enc.bytes, `sha256:${enc.digest}`);
          await store.prune(2);
        }
        const followers = await Promise.all(Array.from({ length: FOLLOWERS }, () => startFollower(child, ['nats', nats.url, runId, shapesFile], users?.env('rollout'))));
        // late joiners: each fetched the run's newest version from the store first
        if (RUN_VERSIONS > 0) await Promise.all(followers.map((f) => f.reached(RUN_VERSIONS)));
        all.push(...followers);
        arms.push({ label, runId, store, close: () => nc.close(), nc: nc as import('nats').NatsConnection, seqs: new Map(), deletedBytes: 0, followers, serverPid: nats.pid, ms: [], cpu: [0, 0, 0], faults: [0, 0, 0], rounds: [] });
      }
      const receivers = await Promise.all(Array.from({ length: FOLLOWERS }, () => startFollower(CHILD, ['tcp', String(tcpPort)])));
      all.push(...receivers);
      const tcpMs: number[] = [];
      const tcpCpu = [0, 0];
      const tcpFaults = [0, 0];
      const fCpu = (fs: Follower[]) => sum(fs.map((f) => f.cpu()));
      const fFaults = (fs: Follower[]) => sum(fs.map((f) => f.faults()));
      let bytes = 0;
      for (let i = 1; i <= WARMUP + REPS; i++) {
        // the first WARMUP versions are the followers' join: delivered and checked, not measured
        const measured = i > WARMUP;
        const v = RUN_VERSIONS + i;
        let enc = encodeCheckpoint({ meta: { runId: 'bench', version: v, step: v, lastBatchId: null, configHash: 'bench' }, params });
        // the arms take turns going first, so that neither always follows the TCP arm
        for (const arm of v % 2 === 0 ? [...arms].reverse() : arms) {
          enc = encodeCheckpoint({ meta: { runId: arm.runId, version: v, step: v, lastBatchId: null, configHash: 'bench' }, params });
          bytes = enc.bytes.length;
          const c0 = [ownCpu(), fCpu(arm.followers), procCpu(arm.serverPid)];
          const p0 = [ownFaults(), fFaults(arm.followers), procFaults(arm.serverPid)];
          const t0 = performance.now();
          trace('bench.put', { version: v, arm: arm.label });
          await arm.store.put(v, enc.bytes, `sha256:${enc.digest}`);
          const digests = await Promise.all(arm.followers.map((f) => f.reached(v)));
          const ms = performance.now() - t0;
          if (measured) arm.ms.push(ms);
          trace('bench.all_held', { version: v, arm: arm.label });
          const c1 = [ownCpu(), fCpu(arm.followers), procCpu(arm.serverPid)];
          const p1 = [ownFaults(), fFaults(arm.followers), procFaults(arm.serverPid)];
          for (let i = 0; measured && i < 3; i++) {
            arm.cpu[i]! += c1[i]! - c0[i]!;
            arm.faults[i]! += p1[i]! - p0[i]!;
          }
          if (measured) arm.rounds.push(`${ms.toFixed(0)} ms (CPU ${[0, 1, 2].map((i) => (c1[i]! - c0[i]!).toFixed(1)).join('/')}, faults ${[0, 1, 2].map((i) => p1[i]! - p0[i]!).join('/')})`);
          if (digests.some((d) => d !== enc.digest)) throw new Error(`${arm.label} v${v}: a follower holds another digest`);
          if (arm.label === 'before') await arm.store.prune(2);
          else if (PRUNE_MODE === 'sealed' || PRUNE_MODE === 'sealed-purge' || PRUNE_MODE === 'seq') {
            const stream = `OBJ_checkpoints-${arm.runId}`;
            const jsm = await arm.nc.jetstreamManager();
            const st = (await jsm.streams.info(stream)).state;
            const chunks = Math.ceil(bytes / (8 * 1024 * 1024 - 4096));
            // one writer: this version's chunks and info are the stream's last messages; `written`: bytes ever stored
            const written = st.bytes + arm.deletedBytes;
            arm.seqs.set(v, { first: st.last_seq - chunks, last: st.last_seq, end: written });
            for (const [old, r] of arm.seqs) {
              if (old > v - KEEP || (PRUNE_MODE !== 'seq' && written - r.end < 8 * 1024 * 1024 + 65536)) continue;
              if (PRUNE_MODE === 'sealed-purge') {
                // the info's subject and the chunks' id from the info message (in the old block), then both subjects
                // purged whole: no message deleted by sequence, no "deleted" info written
                const m = await jsm.streams.getMessage(stream, { seq: r.last });
                const nuid = (JSON.parse(new TextDecoder().decode(m.data)) as { nuid: string }).nuid;
                await jsm.streams.purge(stream, { filter: m.subject.replace(/\.M\..*$/, `.C.${nuid}`) });
                await jsm.streams.purge(stream, { filter: m.subject });
              } else for (let q = r.first; q <= r.last; q++) await jsm.streams.deleteMessage(stream, q, false);
              arm.seqs.delete(old);
            }
            arm.deletedBytes = written - (await jsm.streams.info(stream)).state.bytes;
          } else if (PRUNE_EVERY > 0 && v % PRUNE_EVERY === 0) await arm.store.prune(KEEP);
        }

        const c0 = [ownCpu(), fCpu(receivers)];
        const p0 = [ownFaults(), fFaults(receivers)];
        const t0 = performance.now();
        const digest = createHash('sha256').update(enc.bytes).digest('hex');
        const head = Buffer.alloc(8);
        head.writeBigUInt64LE(BigInt(enc.bytes.length));
        for (const s of sockets) {
          s.write(head);
          s.write(enc.bytes);
        }
        const tcpDigests = await Promise.all(receivers.map((f) => f.reached(i)));
        if (tcpDigests.some((d) => d !== digest)) throw new Error(`frame ${i}: a TCP receiver hashed other bytes`);
        if (!measured) continue;
        tcpMs.push(performance.now() - t0);
        tcpCpu[0]! += ownCpu() - c0[0]!;
        tcpCpu[1]! += fCpu(receivers) - c0[1]!;
        tcpFaults[0]! += ownFaults() - p0[0]!;
        tcpFaults[1]! += fFaults(receivers) - p0[1]!;
      }
      stopAll(all);
      all = [];
      sockets.length = 0;
      for (const arm of arms) await arm.close();
      const t = median(tcpMs);
      const moved = (bytes * FOLLOWERS) / 1e6;
      const per = (x: number) => (x / REPS).toFixed(1);
      const perN = (x: number) => (Number.isNaN(x) ? '-' : (x / REPS).toFixed(0));
      console.log(`  ${(bytes / 1e6).toFixed(2)} MB: loopback TCP + sha256${process.env.BENCH_TCP_HOLD === '1' ? ' + held' : ''} ${t.toFixed(1)} ms (${(moved / (t / 1000)).toFixed(0)} MB/s)  [tcp ms: ${tcpMs.map((x) => x.toFixed(0)).join(' ')}]; ` +
        `CPU ms per round: sender ${per(tcpCpu[0]!)}, receivers ${per(tcpCpu[1]!)}, all ${per(sum(tcpCpu))}; minor page faults per round: sender ${perN(tcpFaults[0]!)}, receivers ${perN(tcpFaults[1]!)}`);
      for (const arm of arms) {
        const n = median(arm.ms);
        console.log(
          `    ${arm.label}: broadcast ${n.toFixed(1)} ms (${(moved / (n / 1000)).toFixed(0)} MB/s delivered): ratio ${(t / n).toFixed(2)} (target >= 0.5)` +
            `  [broadcast ms: ${arm.ms.map((x) => x.toFixed(0)).join(' ')}]; CPU ms per round (means): learner ${per(arm.cpu[0]!)}, ` +
            `followers ${per(arm.cpu[1]!)}, nats-server ${per(arm.cpu[2]!)}, all ${per(sum(arm.cpu))}; minor page faults per round: learner ${perN(arm.faults[0]!)}, ` +
            `followers ${perN(arm.faults[1]!)}, nats-server ${perN(arm.faults[2]!)}`,
        );
        if (PER_ROUND) console.log(`      ${arm.label} by round, learner/followers/nats-server: ${arm.rounds.join('; ')}`);
      }
    }
  } finally {
    stopAll(all);
    tcp.close();
    for (const s of servers.values()) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
