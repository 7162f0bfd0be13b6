// What writing a version's AdamW moments costs (docs/performance-history/pipeline.md, "Round 14: lrn14"): LearnerStateStore.putEncoded of
// this checkout against AB_BASE's, alternating round by round on one nats-server of its own, moments of the default
// run's size (2.4 MB), after the first prune's listing (as in a learner from its second version on). Per put:
// nats-server's CPU (/proc), this process's CPU and the wall time; each version is pruned after the next, as the learner
// does (KEEP 2), outside the figures.
//
//   AB_BASE=/work/main nice -n 10 node --import tsx bench/moments-store.ts     # STORE_ROUNDS=8 STORE_VERSIONS=30
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CHECKPOINT_MAX_PAYLOAD, spawnNatsServer } from '../lib/transport/nats-server.ts';
import { freePort } from '../lib/local/ports.ts';
import { connectNats } from '../lib/transport/index.ts';
import { LearnerStateStore } from '../lib/worker/learner-state.ts';
import { procCpuMs } from './proc-cpu.ts';

const ROUNDS = Number(process.env.STORE_ROUNDS ?? 8);
const VERSIONS = Number(process.env.STORE_VERSIONS ?? 30);
const BYTES = 2_400_000;

type Store = Pick<LearnerStateStore, 'putEncoded' | 'prune'>;
const arms: Array<[string, (nc: Parameters<typeof LearnerStateStore.open>[0], run: string) => Promise<Store>]> = [['this checkout', (nc, run) => LearnerStateStore.open(nc, run)]];
if (process.env.AB_BASE) {
  const base = (await import(resolve(process.env.AB_BASE, 'lib/worker/learner-state.ts'))) as { LearnerStateStore: typeof LearnerStateStore };
  arms.push([`base ${process.env.AB_BASE}`, (nc, run) => base.LearnerStateStore.open(nc, run)]);
}
const storeDir = mkdtempSync(join(tmpdir(), 'moments-store-'));
const nats = await spawnNatsServer({ port: await freePort(), storeDir, maxPayload: CHECKPOINT_MAX_PAYLOAD });
const nc = await connectNats({ url: nats.url, name: 'moments-store-bench' });
try {
  const bytes = new Uint8Array(BYTES).map((_, i) => (i * 2654435761) >>> 24);
  const digest = createHash('sha256').update(bytes).digest('hex');
  const sums = new Map(arms.map(([name]) => [name, { nats: 0, client: 0, wall: 0, n: 0 }]));
  console.log(`${VERSIONS} moments puts of ${(BYTES / 1e6).toFixed(1)} MB per round, ${ROUNDS} rounds, arms alternating; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, open] of round % 2 === 0 ? arms : [...arms].reverse()) {
      const store = await open(nc, `bench-${round}-${name.length}`);
      await store.putEncoded(1, { bytes, digest });
      await store.prune(1); // the first prune lists the bucket
      const s = sums.get(name)!;
      for (let v = 2; v <= VERSIONS + 1; v++) {
        const n0 = procCpuMs(nats.pid);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await store.putEncoded(v, { bytes, digest });
        const c = process.cpuUsage(c0);
        s.wall += performance.now() - t0;
        s.client += (c.user + c.system) / 1000;
        s.nats += procCpuMs(nats.pid) - n0;
        s.n++;
        await store.prune(v);
      }
    }
  }
  for (const [name, s] of sums) console.log(`${name.padEnd(24)} per put: nats-server CPU ${(s.nats / s.n).toFixed(2)} ms, client CPU ${(s.client / s.n).toFixed(2)} ms, wall ${(s.wall / s.n).toFixed(2)} ms (${s.n} puts); load ${loadavg()[0]!.toFixed(1)}`);
} finally {
  await nc.close();
  await nats.stop();
  rmSync(storeDir, { recursive: true, force: true });
}
