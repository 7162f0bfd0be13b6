// A real nats-server (JetStream on) on a free loopback port, for tests:
//
//   const nats = await startNatsServer();
//   after(() => nats.stop());
//   const nc = await connect({ servers: nats.url });
//
// or, for a whole test file: `const shared = natsForFile()` (a server) or `natsForFile('name')` (and one connection),
// then `shared.nats`, `shared.nc` inside its tests.
//
// stop() kills the server (SIGTERM, SIGKILL after 3 s) and removes its storage dir; restart() stops it and
// starts it again on the same port with the same storage (JetStream data survives), for reconnect tests;
// kill() is a crash (SIGKILL, as `kill -9`; restart() brings it back) and pause() freezes it (SIGSTOP: it reads and
// answers nothing until killed).
// A process-exit hook kills any server a test forgot to stop.
import { after, before } from 'node:test';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnNatsServer, type NatsServerProcess } from '../../lib/transport/nats-server.ts';
import { freePort } from '../../lib/local/ports.ts';
import { readProcStat } from '../../lib/local/proc-stat.ts';
import { waitFor } from './wait.ts';
import { AnnouncementSchema, connectNats, RunStateStore, sha256Digest, type Announcement, type CheckpointStore } from '../../lib/transport/nats.ts';
import { z } from 'zod';
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from 'nats';

export interface TestNatsServer {
  url: string;
  port: number;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** SIGKILL (as `kill -9`); resolves when the process is gone. restart() starts it again. */
  kill(): Promise<void>;
  /**
   * SIGSTOP: the server keeps its connections open and answers nothing (kill() or stop() it afterwards). The signal is
   * sent at once; the promise resolves when every thread of the server is stopped: a group stop is asynchronous, and on
   * a loaded machine a thread woken by data sent just after kill(2) could still answer it (round 29's CI: a drain's
   * PING got its PONG after pause()).
   */
  pause(): Promise<void>;
}

export { freePort };

/** `maxPayload`: the server's max_payload in bytes (default nats-server's 1 MiB). */
export async function startNatsServer(opts: { maxPayload?: number } = {}): Promise<TestNatsServer> {
  const storeDir = mkdtempSync(join(tmpdir(), 'nats-test-'));
  let port = await freePort();
  let proc: NatsServerProcess;
  try {
    proc = await spawnNatsServer({ port, storeDir, ...opts });
  } catch {
    port = await freePort(); // the free port was taken in between: one more try
    proc = await spawnNatsServer({ port, storeDir, ...opts });
  }
  let stopped = false;
  return {
    url: proc.url,
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      await proc.stop();
      rmSync(storeDir, { recursive: true, force: true });
    },
    async restart() {
      if (stopped) throw new Error('restart() after stop()');
      await proc.stop();
      proc = await spawnNatsServer({ port, storeDir, ...opts });
    },
    async kill() {
      process.kill(proc.pid, 'SIGKILL');
      await proc.exited;
    },
    pause() {
      process.kill(proc.pid, 'SIGSTOP');
      return untilStopped(proc.pid);
    },
  };
}

/** Resolves once every thread of `pid` is in the stopped state (Linux's /proc/<pid>/task/<tid>/stat: T). */
async function untilStopped(pid: number): Promise<void> {
  const threads = () => {
    try {
      return readdirSync(`/proc/${pid}/task`);
    } catch {
      return []; // gone (killed meanwhile): it answers nothing either
    }
  };
  // a thread that ended between the listing and the read counts as stopped: it answers nothing either
  const stopped = () => threads().every((tid) => /^[tT]$/.test(readProcStat(pid, Number(tid))?.state ?? 'T'));
  await waitFor(stopped, `nats-server ${pid}'s threads all stopped after SIGSTOP`, undefined, 10_000);
}

/**
 * A nats-server for a whole test file, and with `name` one connection to it: started in before(); the connection
 * closed and the server stopped in after() (registered here, so it runs before after() hooks the file registers
 * later: a file that must stop its own clients first keeps its own hooks). `nats` and `nc` are read inside the
 * file's tests, once before() has run.
 */
export function natsForFile(name?: string): { readonly nats: TestNatsServer; readonly nc: NatsConnection } {
  let nats: TestNatsServer | undefined;
  let nc: NatsConnection | undefined;
  before(async () => {
    nats = await startNatsServer();
    if (name !== undefined) nc = await connectNats({ url: nats.url, name });
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
  });
  const early = (what: string) => new Error(`natsForFile: ${what} read before before() ran (read it inside a test)`);
  return {
    get nats() {
      if (!nats) throw early('nats');
      return nats;
    },
    get nc() {
      if (!nc) throw name === undefined ? new Error('natsForFile: no connection was asked for (pass a name)') : early('nc');
      return nc;
    },
  };
}

/** A refusal by the server's permissions: nats.js rejects the request with a permissions violation (never a timeout). */
export const PERMISSION_REFUSED = /permission|Permissions Violation/i;

/** A checkpoint's bytes (random, 3000) and their digest, for the stores' permission tests. */
export function randomCheckpoint(): { bytes: Uint8Array; digest: string } {
  const bytes = randomBytes(3000);
  return { bytes, digest: sha256Digest(bytes) };
}

/** Stores a run's state as its orchestrator would have left it: an orchestrator started on the run resumes there. */
export async function storeRunState(nc: NatsConnection, runId: string, state: { ackedSeq: number; learnerVersion: number; configHash?: string }): Promise<void> {
  const store = await RunStateStore.open(nc, { runId, schema: z.object({ ackedSeq: z.number(), learnerVersion: z.number(), configHash: z.string().optional() }) });
  await store.create(state);
}

/**
 * Every announcement in a run's checkpoint stream, in stream order (deleted sequences skipped): what a store holds
 * announced, for the tests that audit a run's versions and digests.
 */
export async function storedAnnouncements(nc: NatsConnection, store: CheckpointStore): Promise<Announcement[]> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(store.stream);
  const out: Announcement[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(store.stream, { seq }).catch(() => null);
    if (m) out.push(AnnouncementSchema.parse(m.json()));
  }
  return out;
}
