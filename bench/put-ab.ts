// A/B of CheckpointStore.put's latency alone (no followers): this checkout's store and another checkout's
// (AB_BASE=<path with node_modules>, e.g. main), alternating put by put on one nats-server (max_payload 8 MiB), each
// arm its own connection and run. Prints each arm's median and quartiles per size, and (round 28) CPU per put: this
// process's (the arm's store: its median, microseconds from getrusage) and nats-server's (the mean of its threads' run time
// over the arm's puts; and the CPU of the prune to 2 that follows each put, given the versions stored as the learner
// gives them (this process's median, nats-server's mean)).
//   AB_BASE=/tmp/main PUT_AB_SIZES=1.2,50 PUT_AB_REPS=40 node --import tsx bench/put-ab.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { spawnNatsServer, CHECKPOINT_MAX_PAYLOAD } from '../lib/transport/nats-server.ts';
import { freePort } from '../lib/local/ports.ts';
import { procRunMs } from './proc-cpu.ts';
import * as here from '../lib/transport/nats.ts';

const base = process.env['AB_BASE'];
if (!base) throw new Error('AB_BASE: the checkout to compare with (a path holding lib/transport/nats.ts and node_modules)');
const there = (await import(resolve(base, 'lib/transport/nats.ts'))) as typeof here;
const sizes = (process.env['PUT_AB_SIZES'] ?? '1.2').split(',').map(Number);
const reps = Number(process.env['PUT_AB_REPS'] ?? 40);
const dir = mkdtempSync(join(tmpdir(), 'put-ab-'));
const server = await spawnNatsServer({ port: await freePort(), storeDir: dir, maxPayload: CHECKPOINT_MAX_PAYLOAD });
const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
try {
  for (const mb of sizes) {
    const arms = await Promise.all(
      [['base', there], ['this', here]].map(async ([label, lib]) => {
        const l = lib as typeof here;
        const nc = await l.connectNats({ url: server.url, name: `put-ab-${label as string}` });
        const store = await l.CheckpointStore.open(nc, { runId: `put-ab-${label as string}-${String(mb).replace('.', '_')}` });
        return { label: label as string, nc, store, ms: [] as number[], cpu: [] as number[], server: 0, prune: [] as number[], stored: [] as number[], pruneServer: 0 };
      }),
    );
    for (let v = 1; v <= reps + 2; v++) {
      const bytes = randomBytes(Math.round(mb * 1e6));
      const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
      for (const arm of v % 2 ? arms : [...arms].reverse()) {
        const s0 = procRunMs(server.pid);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await arm.store.put(v, bytes, digest);
        const c = process.cpuUsage(c0);
        if (v > 2) {
          arm.ms.push(performance.now() - t0);
          arm.cpu.push((c.user + c.system) / 1000);
          arm.server += procRunMs(server.pid) - s0;
        }
        // as the learner prunes: its own record of the versions stored (no listing)
        arm.stored.push(v);
        const q0 = procRunMs(server.pid);
        const p0 = process.cpuUsage();
        const gone = await arm.store.prune(2, { stored: arm.stored });
        if (v > 2) arm.pruneServer += procRunMs(server.pid) - q0;
        arm.stored = arm.stored.filter((x) => !gone.includes(x));
        const pc = process.cpuUsage(p0);
        if (v > 2) arm.prune.push((pc.user + pc.system) / 1000);
      }
    }
    for (const a of arms) console.log(`${mb} MB ${a.label}: put median ${q(a.ms, 0.5).toFixed(2)} ms (quartiles ${q(a.ms, 0.25).toFixed(2)}-${q(a.ms, 0.75).toFixed(2)}, n ${a.ms.length}); CPU per put: this process median ${q(a.cpu, 0.5).toFixed(2)} ms (quartiles ${q(a.cpu, 0.25).toFixed(2)}-${q(a.cpu, 0.75).toFixed(2)}), nats-server mean ${(a.server / a.ms.length).toFixed(2)} ms; prune(2) after it: this process median ${q(a.prune, 0.5).toFixed(2)} ms, nats-server mean ${(a.pruneServer / a.prune.length).toFixed(2)} ms`);
    for (const a of arms) await a.nc.close();
  }
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
