// Pipeline figures (issue: the distributed pipeline), each measured side by side in one run:
//  (a) the local pipeline's GRPO throughput (actions/s) against a single-process loop running the same
//      graphs back to back with no gRPC or NATS;
//  (b) checkpoint broadcast: from the learner's put until N followers have fetched and verified the
//      checkpoint, as MB/s, against a raw loopback TCP copy of the same bytes to N receivers.
// (The orchestrator's dispatch rate with simulated workers is bench/load.bench.ts.)
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadConfig } from '../lib/config/index.ts';
import { runSingleProcess } from '../lib/local/single-process.ts';
import { runLocal, freePort } from '../lib/local/local-run.ts';
import { CheckpointStore, connectNats, spawnNatsServer } from '../lib/transport/index.ts';
import { encodeCheckpoint } from '../lib/checkpoint/index.ts';
import { initPolicyParams } from '../lib/models/policy.ts';
import { policySpecOf, paramShapes } from '../lib/models/bundle.ts';
import { fetchCheckpoint, publishCheckpoint } from '../lib/worker/checkpoints.ts';

const SFT = Number(process.env.BENCH_SFT ?? 30);
const GRPO = Number(process.env.BENCH_GRPO ?? 40);

async function throughput(): Promise<void> {
  console.log(`(a) GRPO throughput, default model and group (G=8, 4 samples per batch), ${GRPO} steps after a ${SFT}-step warm start:`);
  const rows: Array<[string, number]> = [];
  for (const staleness of [0, 1]) {
    const overrides = [`grpo.maxStaleness=${staleness}`, 'eval.samples=8'];
    const config = loadConfig(undefined, [...overrides, `sft.steps=${SFT}`, `grpo.steps=${GRPO}`]);
    const single = await runSingleProcess(config);
    const dir = mkdtempSync(join(tmpdir(), 'bench-pipeline-'));
    try {
      const s = await runLocal({ out: dir, seed: 0, sftSteps: SFT, steps: GRPO, overrides, log: () => undefined });
      rows.push([`maxStaleness ${staleness}`, s.samples_per_second / single.actionsPerSecond]);
      console.log(
        `  maxStaleness ${staleness}: pipeline ${s.samples_per_second.toFixed(1)} actions/s, single process ${single.actionsPerSecond.toFixed(1)} actions/s: ratio ${(s.samples_per_second / single.actionsPerSecond).toFixed(2)} (target >= 0.9)`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

async function tcpCopy(bytes: Uint8Array, receivers: number): Promise<number> {
  const server = createServer((sock: Socket) => sock.end(bytes));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: receivers }, () =>
      new Promise<void>((resolve, reject) => {
        let got = 0;
        const c = connect(port, '127.0.0.1');
        c.on('data', (d: Buffer) => (got += d.length));
        c.on('end', () => (got === bytes.length ? resolve() : reject(new Error(`tcp copy: ${got} of ${bytes.length} bytes`))));
        c.on('error', reject);
      }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  server.close();
  return seconds;
}

async function broadcast(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-broadcast-'));
  const port = await freePort();
  const server = await spawnNatsServer({ port, storeDir: dir });
  const url = `nats://127.0.0.1:${port}`;
  try {
    for (const width of [16, 64]) {
      const config = loadConfig(undefined, [`model.width=${width}`, 'run.id=bench']);
      const spec = policySpecOf(config);
      const params = initPolicyParams(spec, 0);
      const shapes = paramShapes(spec);
      const { bytes } = encodeCheckpoint({ meta: { runId: 'bench', version: 1, step: 1, lastBatchId: null, configHash: 'x' }, params });
      for (const followers of [1, 4]) {
        const learnerNc = await connectNats({ url, name: 'bench-learner' });
        const runId = `bench-w${width}-n${followers}`;
        const store = await CheckpointStore.open(learnerNc, { runId });
        const conns = await Promise.all(Array.from({ length: followers }, (_, i) => connectNats({ url, name: `bench-follower-${i}` })));
        const stores = await Promise.all(conns.map((nc) => CheckpointStore.open(nc, { runId })));
        const reps = 5;
        let total = 0;
        for (let v = 1; v <= reps; v++) {
          const t0 = performance.now();
          const ann = await publishCheckpoint(store, { meta: { runId, version: v, step: v, lastBatchId: null, configHash: 'x' }, params });
          await Promise.all(stores.map((s) => fetchCheckpoint(s, ann, { runId, shapes })));
          total += (performance.now() - t0) / 1000;
        }
        const natsSeconds = total / reps;
        const tcpSeconds = (await tcpCopy(bytes, followers) + (await tcpCopy(bytes, followers))) / 2;
        const mb = (bytes.length * followers) / 1e6;
        console.log(
          `  ${(bytes.length / 1e6).toFixed(2)} MB checkpoint (width ${width}) to ${followers} follower(s): encode + put -> all fetched and verified ${(natsSeconds * 1000).toFixed(1)} ms = ${(mb / natsSeconds).toFixed(1)} MB/s; raw loopback TCP ${(tcpSeconds * 1000).toFixed(2)} ms = ${(mb / tcpSeconds).toFixed(0)} MB/s`,
        );
        for (const nc of [learnerNc, ...conns]) await nc.close();
      }
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<void> {
  const only = process.env.BENCH_ONLY;
  if (!only || only === 'broadcast') {
    console.log('(b) checkpoint broadcast over the NATS object store (fetch includes sha256 and shape verification):');
    await broadcast();
  }
  if (!only || only === 'throughput') await throughput();
}
