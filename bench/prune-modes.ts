// What deleting old checkpoints costs nats-server's file store, by the way they are deleted (docs/performance-history/broadcast.md,
// "Round 21: bcast21"). Each mode has its own nats-server (file storage) and CheckpointStore; versions of PRUNE_MB
// are put (no followers) in blocks of PRUNE_BLOCK versions, the modes taking turns block by block, and the store is
// pruned to PRUNE_KEEP after each put as the mode says. Per mode: nats-server's CPU per version (/proc, put + prune),
// its CPU in the put alone (what the deletes leave for the next version to pay), and the put's wall time.
// Modes:
//   delete     CheckpointStore.prune after every put (the learner's way)
//   none       never deleted (the bound)
//   everyN     CheckpointStore.prune after every Nth put (the store holds up to KEEP + N - 1 versions)
//   compact    the object stream purged below the first chunk of the oldest version kept (JetStream purge by sequence:
//              the file store drops whole blocks, but loads and rewrites the block the sequence falls in)
//   msgN       every Nth put, each old version's chunks and info deleted by stream sequence (no subject purge)
//   sealed     as msg1, but a version only once 8 MiB + 64 KiB of newer versions follow it (out of the file-store block
//              being written)
// The stream sequences are read from the stream's last_seq after each put (one writer).
//   nice -n 10 node --import tsx bench/prune-modes.ts
//   PRUNE_MODES=delete,none,every4,every8 PRUNE_BLOCKS=8 PRUNE_BLOCK=24 PRUNE_MB=1.2 PRUNE_KEEP=2 (the defaults)
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHECKPOINT_MAX_PAYLOAD, spawnNatsServer } from '../lib/transport/nats-server.ts';
import { freePort } from '../lib/local/ports.ts';
import { CheckpointStore, connectNats } from '../lib/transport/index.ts';
import { procCpuMs } from './proc-cpu.ts';

const MODES = (process.env.PRUNE_MODES ?? 'delete,none,every4,every8').split(',');
const BLOCKS = Number(process.env.PRUNE_BLOCKS ?? 8);
const BLOCK = Number(process.env.PRUNE_BLOCK ?? 24);
const BYTES = Math.round(Number(process.env.PRUNE_MB ?? 1.2) * 1e6);
const KEEP = Number(process.env.PRUNE_KEEP ?? 2);
for (const m of MODES) if (!/^(delete|none|compact|sealed|every[1-9]\d*|msg[1-9]\d*)$/.test(m)) throw new Error(`PRUNE_MODES: unknown mode ${JSON.stringify(m)} (delete, none, compact, sealed, everyN, msgN)`);
/** The object store's chunk size at the project's max_payload (object-chunks.ts chunkSize). */
const CHUNKS = Math.ceil(BYTES / (Math.min(8 * 1024 * 1024, CHECKPOINT_MAX_PAYLOAD - 4096)));
const STREAM = 'OBJ_checkpoints-prune';

const every = (mode: string) => Number(/\d+$/.exec(mode)?.[0] ?? 1);
const dir = mkdtempSync(join(tmpdir(), 'prune-modes-'));
const arms = await Promise.all(MODES.map(async (mode) => {
  const nats = await spawnNatsServer({ port: await freePort(), storeDir: join(dir, mode), maxPayload: CHECKPOINT_MAX_PAYLOAD });
  const nc = await connectNats({ url: nats.url, name: `prune-${mode}` });
  const store = await CheckpointStore.open(nc, { runId: 'prune' });
  return { mode, nats, nc, jsm: await nc.jetstreamManager(), store, v: 0, stored: new Set<number>(), infoSeq: new Map<number, number>(), serverMs: 0, putMs: 0, walls: [] as number[] };
}));
type Arm = (typeof arms)[number];

async function prune(arm: Arm, v: number): Promise<void> {
  if (arm.mode === 'none' || v % every(arm.mode) !== 0) return;
  if (arm.mode === 'compact') {
    const info = arm.infoSeq.get(v - KEEP + 1);
    // a purge below sequence 1 or 2 is a purge of everything (JetStream's purge request)
    if (info !== undefined && info - CHUNKS > 1) await arm.jsm.streams.purge(STREAM, { seq: info - CHUNKS });
  } else if (arm.mode.startsWith('msg') || arm.mode === 'sealed') {
    const behind = arm.mode === 'sealed' ? Math.ceil((8 * 1024 * 1024 + 65536) / BYTES) : 0;
    for (const [old, info] of arm.infoSeq) {
      if (old > v - Math.max(KEEP, behind)) continue;
      for (let s = info - CHUNKS; s <= info; s++) await arm.jsm.streams.deleteMessage(STREAM, s, false);
      arm.infoSeq.delete(old);
    }
  } else {
    for (const d of await arm.store.prune(KEEP, { stored: arm.stored })) arm.stored.delete(d);
  }
}

try {
  const bytes = new Uint8Array(BYTES).map((_, i) => (i * 2654435761) >>> 24);
  console.log(`${MODES.join(', ')}: ${BLOCKS} blocks of ${BLOCK} puts of ${(BYTES / 1e6).toFixed(1)} MB each, keep ${KEEP}; load ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  for (let b = 0; b < BLOCKS; b++) {
    for (const arm of b % 2 === 0 ? arms : [...arms].reverse()) {
      for (let i = 0; i < BLOCK; i++) {
        const v = ++arm.v;
        bytes[0] = v & 255;
        bytes[1] = v >> 8;
        const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
        const n0 = procCpuMs(arm.nats.pid);
        const t0 = performance.now();
        await arm.store.put(v, bytes, digest);
        arm.walls.push(performance.now() - t0);
        arm.putMs += procCpuMs(arm.nats.pid) - n0;
        arm.stored.add(v);
        if (arm.mode === 'compact' || arm.mode === 'sealed' || arm.mode.startsWith('msg')) arm.infoSeq.set(v, (await arm.jsm.streams.info(STREAM)).state.last_seq);
        await prune(arm, v);
        arm.serverMs += procCpuMs(arm.nats.pid) - n0;
      }
    }
  }
  for (const arm of arms) {
    const w = [...arm.walls].sort((a, b) => a - b);
    const n = arm.walls.length;
    console.log(`  ${arm.mode.padEnd(8)} nats-server CPU per version ${(arm.serverMs / n).toFixed(2)} ms (put + prune), ${(arm.putMs / n).toFixed(2)} ms in the put; put wall median ${w[n >> 1]!.toFixed(2)} ms, p90 ${w[Math.floor(n * 0.9)]!.toFixed(2)}`);
  }
} finally {
  for (const arm of arms) {
    await arm.nc.close();
    await arm.nats.stop();
  }
  rmSync(dir, { recursive: true, force: true });
}
