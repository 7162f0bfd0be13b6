// Shared by the reliability tests: the orchestrator's event log, fault timing, and a look into a finished
// local run's JetStream store (nats-server started again on the run's store directory).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../lib/local/local-run.ts';
import { CheckpointStore, connectNats, spawnNatsServer, AnnouncementSchema, type Announcement } from '../../lib/transport/index.ts';
import type { RunEvent } from '../../orchestrator/run-state.ts';

export type Logged = RunEvent & { t: number };
export type Trained = Extract<Logged, { type: 'trained' }>;

export function events(dir: string): Logged[] {
  const f = join(dir, 'events.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Logged);
}

/** The highest batch seq the event log shows acknowledged (applied or not). */
export function lastTrainedSeq(dir: string): number {
  return events(dir).reduce((m, e) => (e.type === 'trained' && e.seq > m ? e.seq : m), 0);
}

/** A small seeded PRNG (mulberry32): the fault schedule is random but reproducible from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface StoreView {
  /** Every announcement in stream order (re-announcements included). */
  announcements: Announcement[];
  latest: Announcement | null;
  /** Versions still stored (not pruned), ascending. */
  versions: number[];
  /** sha256 digest of the latest checkpoint as fetched (verified by the store against its announcement). */
  latestFetchedDigest: string | null;
}

/** Opens the JetStream store a local run left in `<out>/nats` and reads its checkpoint records. */
export async function readRunStore(out: string, runId: string): Promise<StoreView> {
  const port = await freePort();
  const server = await spawnNatsServer({ port, storeDir: join(out, 'nats') });
  const nc = await connectNats({ url: server.url, name: 'reliability-audit' });
  try {
    const store = await CheckpointStore.open(nc, { runId });
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(store.stream);
    const announcements: Announcement[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(store.stream, { seq }).catch(() => null);
      if (m) announcements.push(AnnouncementSchema.parse(m.json()));
    }
    const latest = await store.latest();
    const latestFetchedDigest = latest ? (await store.get(latest.version, { expectDigest: latest.digest })).announcement.digest : null;
    return { announcements, latest, versions: await store.versions(), latestFetchedDigest };
  } finally {
    await nc.drain().catch(() => undefined);
    await server.stop();
  }
}
